"""Query parameters every HTTP API parses alike: a bad one is a ``BadQuery`` naming its field."""
from __future__ import annotations

import base64
from datetime import datetime, timezone
from functools import lru_cache

from marshmallow import ValidationError

from contracts.common import USCC


class BadQuery(ValueError):
    def __init__(self, errors: list[dict]):
        super().__init__("; ".join(f"{e['field']}: {e['problem']}" for e in errors))
        self.errors = errors


@lru_cache(maxsize=100_000)
def _checked(value: str) -> str:
    return USCC().deserialize(value)


def parse_code(value: str, field: str = "uscc") -> str:
    """A valid code, or BadQuery naming ``field``. Valid codes are remembered (gate-keepers
    ask about the same entities again and again; a batch of 1,000 spent 20 ms validating)."""
    try:
        return _checked(value)
    except ValidationError as exc:
        raise BadQuery([{"field": field, "problem": "; ".join(exc.messages)}]) from exc


def encode_cursor(at: datetime, key: str) -> str:
    """A feed's opaque ``next`` cursor: the last item's change instant and id (a naive
    instant, as the store gives it, is UTC)."""
    at = at if at.tzinfo else at.replace(tzinfo=timezone.utc)
    raw = f"{at.isoformat()}|{key}".encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """``(instant, id)`` of a cursor ``encode_cursor`` made; ValueError for anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("utf-8")
        at, _, key = raw.partition("|")
        parsed = datetime.fromisoformat(at)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError("bad cursor") from exc
    if parsed.tzinfo is None or not key:
        raise ValueError("bad cursor")
    return parsed, key
