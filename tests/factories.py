"""Test data builders (valid by default; override what a test is about)."""
from __future__ import annotations

import itertools
import random

from rules import uscc

_counter = itertools.count(1)


def make_uscc(region: str = "350100", rng: random.Random | None = None, authority: str = "9",
              kind: str = "1") -> str:
    rng = rng or random
    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    org = "".join(rng.choice(alphabet) for _ in range(9))
    return uscc.make(f"{authority}{kind}{region}{org}")


def violation(**overrides) -> dict:
    n = next(_counter)
    body = {
        "agency_code": "FJAMR-350100",
        "document_number": f"闽市监罚〔2026〕{n}号",
        "uscc": make_uscc("350100"),
        "entity_name": "福州示例食品有限公司",
        "category": "food_safety",
        "severity": "serious",
        "penalties": [{"type": "fine", "amount": "50000.00"}],
        "legal_basis": {"law": "Food Safety Law (食品安全法)", "article": "124"},
        "occurred_at": "2026-03-01T09:00:00+08:00",
        "decided_at": "2026-04-01T10:00:00+08:00",
        "first_offence": False,
        "corrected": False,
        "listing": {"list": "serious_violation", "listed_at": "2026-04-02T00:00:00+08:00"},
    }
    body.update(overrides)
    return body
