"""Every contract, driven with generated bad input: it either loads or raises a
ValidationError whose every error names a field and a problem. Nothing else, ever."""
import pytest
from hypothesis import given, settings
from marshmallow import ValidationError

from contracts.common import field_errors
from contracts.events import PAYLOADS, EnvelopeSchema
from contracts.violation import AmendmentSchema, RevocationSchema, ViolationSchema
from tests.fuzz.strategies import BODIES, JSON, mutated_records

pytestmark = pytest.mark.fuzz
SCHEMAS = {"ViolationSchema": ViolationSchema, "AmendmentSchema": AmendmentSchema,
           "RevocationSchema": RevocationSchema, "EnvelopeSchema": EnvelopeSchema,
           **{f"payload:{name}": schema for name, schema in PAYLOADS.items()}}


def load_or_explain(schema, body):
    try:
        loaded = schema().load(body)
    except ValidationError as exc:
        errors = field_errors(exc.messages)
        assert errors, exc.messages
        assert all(e["field"] and e["problem"] for e in errors), errors
        return None
    # what loads dumps and loads again to the same thing: no hidden junk survives
    assert schema().load(schema().dump(loaded)) == loaded
    return loaded


@settings(max_examples=3000)
@given(mutated_records())
def test_violation_schema_with_mutated_records(body):
    loaded = load_or_explain(ViolationSchema, body)
    if loaded is not None:
        assert not any(str(k).startswith("$") or "." in str(k) for k in loaded)


@settings(max_examples=1000)
@given(JSON)
def test_violation_schema_with_arbitrary_json(body):
    load_or_explain(ViolationSchema, body)


@settings(max_examples=1000)
@given(BODIES, BODIES)
def test_amendment_schema(violation_part, reason):
    load_or_explain(AmendmentSchema, {"violation": violation_part, "reason": reason})


@settings(max_examples=500)
@given(JSON)
def test_revocation_schema(body):
    load_or_explain(RevocationSchema, body)


@pytest.mark.parametrize("name", sorted(SCHEMAS))
@settings(max_examples=150)
@given(body=JSON)
def test_every_event_payload_schema(name, body):
    load_or_explain(SCHEMAS[name], body)
