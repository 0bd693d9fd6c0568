"""The legal test book's publicity and early-stop cases (``book.json`` ``publicity_cases``,
``early_stop_cases``, written by hand from Order 45 as amended in 2025) against
``rules.periods`` and ``rules.repair``. Every rule named has a positive and a negative case."""
import json
from datetime import datetime
from pathlib import Path

import pytest

from contracts.violation import ViolationSchema
from rules.repair import RecordState, Rules
from tests.factories import violation

BOOK = json.loads((Path(__file__).parent / "book.json").read_text(encoding="utf-8"))
PUBLICITY = BOOK["publicity_cases"]
EARLY_STOP = BOOK["early_stop_cases"]
RULES = Rules.load()
DECLARED = {"penalty_performed": True, "harm_removed": True,
            "commitment_letter": {"signed_by": "王经理", "signed_at": "2026-10-01"}}
AS_OF = datetime.fromisoformat("2026-11-01T00:00:00+08:00")
V2_FIELDS = ("procedure", "published_at", "place_code")  # violation record v2 (issue 18)


def instant(value):
    return None if value is None else datetime.fromisoformat(value)


def record(facts: dict) -> dict:
    """A loaded record; the v2 fields are set on it (the contract of this branch may not know
    them yet), ``penalties`` too when the vocabulary has no ``none`` yet."""
    facts = dict(facts)
    extra = {key: facts.pop(key) for key in V2_FIELDS if key in facts}
    penalties = facts.pop("penalties")
    listing = facts.pop("listing", None)
    loaded = ViolationSchema().load(violation(
        listing=None, occurred_at="2025-12-01T00:00:00+08:00",
        penalties=[{"type": "fine", "amount": "1.00"}], **facts))
    loaded["penalties"] = [{**p, "amount": p.get("amount")} for p in penalties]
    if listing:
        loaded["listing"] = {"list": listing["list"], "listed_at": instant(listing["listed_at"])}
    for key, value in extra.items():
        loaded[key] = instant(value) if key == "published_at" else value
    return loaded


def test_rules_have_a_positive_and_a_negative_case():
    cases = PUBLICITY + EARLY_STOP
    rules = {c["rule"] for c in cases if "rule" in c}
    positive = {c["rule"] for c in cases if "rule" in c and not c.get("negative")}
    negative = {c["rule"] for c in cases if c.get("negative")} | {
        rule for c in cases for rule in c.get("negative_for", ())}
    assert rules - positive == set(), "rules without a positive case"
    assert rules - negative == set(), "rules without a negative case"
    assert len(rules) == 11  # arts. 2 (3), 9, 13 (2), 14 (5)


@pytest.mark.parametrize("case", PUBLICITY, ids=lambda c: c["id"])
def test_publicity_case(case):
    assert case["cites"].strip()
    window = RULES.publicity_window(record(case["facts"]))
    want = case["window"]
    assert window == (None if want is None else (instant(want[0]), instant(want[1]))), case["id"]


@pytest.mark.parametrize("case", EARLY_STOP, ids=lambda c: c["id"])
def test_early_stop_case(case):
    assert case["cites"].strip()
    state = RecordState("FJAMR-350100/1", record(case["facts"]))
    others = [RecordState(f"X/{i}", record(facts)) for i, facts in enumerate(case["others"])]
    declarations = {**DECLARED, **case.get("declarations", {})}
    result = RULES.check(state, [state] + others, declarations, AS_OF)
    assert [b.rule for b in result.blocks] == case["blocks"], [b.detail for b in result.blocks]
    assert result.scope == "publicity"
