"""Record ids are bounded at intake so every id derived from them fits an event envelope."""
import json
from pathlib import Path

import pytest
from marshmallow import ValidationError

from contracts.events import EVENT_ID_MAX, EnvelopeSchema
from contracts.violation import (VIOLATION_ID_MAX, RevocationSchema, ViolationSchema,
                                 violation_key)
from tests.factories import violation

ROOT = Path(__file__).resolve().parents[2]


def _measure_ids():
    found = []

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "id" and isinstance(value, str):
                    found.append(value)
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
    walk(json.loads((ROOT / "catalog/measures.json").read_text(encoding="utf-8")))
    return found


def test_a_record_id_over_the_bound_is_refused_naming_the_field():
    body = violation(agency_code="FJAMR-350100-XYZ", document_number="闽" * 60)
    with pytest.raises(ValidationError) as refused:
        ViolationSchema().load(body)
    assert "at most 64" in refused.value.messages["document_number"][0]
    with pytest.raises(ValidationError) as revocation:
        RevocationSchema().load({"agency_code": "FJAMR-350100-XYZ",
                                 "document_number": "9" * 60, "reason": "overturned"})
    assert "document_number" in revocation.value.messages


def test_every_id_derived_from_the_longest_record_id_fits_an_envelope():
    longest = violation_key("A" * 20, "x" * (VIOLATION_ID_MAX - 21))
    assert len(longest) == VIOLATION_ID_MAX
    measure = max(_measure_ids(), key=len)
    derived = [f"{longest}@v9999", f"{longest}#{measure}~999:imposed",
               f"{longest}#{measure}~999:lifted", f"{longest}:supervision"]
    for event_id in derived:
        assert len(event_id) <= EVENT_ID_MAX, event_id
        assert "event_id" not in EnvelopeSchema().validate(
            {"event_id": event_id, "type": "X", "schema_version": 1,
             "occurred_at": "2026-01-01T00:00:00Z", "producer": "p", "correlation_id": "c",
             "payload": {}})
