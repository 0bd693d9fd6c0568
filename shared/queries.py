"""Query parameters every HTTP API parses alike: a bad one is a ``BadQuery`` naming its field."""
from __future__ import annotations

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
