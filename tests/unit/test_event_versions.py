"""Restriction events at schema version 2 (effect, subject, bases); version 1 still read, so
old dead letters replay (issue 18 item 5)."""
from datetime import datetime, timezone

import pytest
from marshmallow import ValidationError

from contracts.events import UnsupportedSchemaVersion, make_event, read_event

AT = datetime(2026, 4, 1, 2, tzinfo=timezone.utc)
V1 = {"restriction_id": "FJAMR-350100/1#PL-01", "uscc": "91350100M000100Y43",
      "entity_name": "福州示例食品有限公司", "sector": "platforms", "measure_id": "PL-01",
      "action": "Clear the merchant", "legal_basis": "E-Commerce Law art. 29",
      "department": "Online platforms", "memorandum": "MOU-SERIOUS-2018",
      "source": {"violation_id": "FJAMR-350100/1", "agency_code": "FJAMR-350100",
                 "document_number": "1", "category": "food_safety", "severity": "serious"},
      "starts_at": "2026-04-01T02:00:00+00:00", "ends_at": None, "rule": "T-SV-1",
      "reason": "listed"}
BASIS = {"document": "市场监督管理严重违法失信名单管理办法", "number": "国家市场监督管理总局令第44号",
         "article": "第十四条", "item": None, "quote": "通过国家企业信用信息公示系统进行公示",
         "law_file": "samr-order-44-serious-violation-list.2021.md"}


def envelope(kind, payload, version):
    return {"event_id": "e-12345678", "type": kind, "schema_version": version,
            "occurred_at": "2026-04-01T02:00:00+00:00", "producer": "restrictions",
            "correlation_id": "c", "payload": payload}


def test_a_v1_imposition_is_read_as_a_prohibition_of_the_entity():
    _, payload = read_event(envelope("RestrictionImposed", V1, 1))
    assert (payload["effect"], payload["subject"], payload["bases"]) == ("prohibit", "entity", [])
    assert payload["legal_basis"] == "E-Commerce Law art. 29"


def test_a_v1_lift_is_read_too():
    body = {"restriction": V1, "lifted_at": "2026-05-01T00:00:00+00:00", "lift_reason": "x"}
    _, payload = read_event(envelope("RestrictionLifted", body, 1))
    assert payload["restriction"]["effect"] == "prohibit"


def test_producers_write_v2_and_v2_needs_the_effect():
    loaded = read_event(envelope("RestrictionImposed", V1, 1))[1]
    event = make_event("RestrictionImposed", {**loaded, "effect": "inform", "bases": [BASIS]},
                       producer="restrictions", correlation_id="c")
    assert event["schema_version"] == 2 and event["payload"]["effect"] == "inform"
    assert read_event(event)[1]["bases"][0]["article"] == "第十四条"
    with pytest.raises(ValidationError, match="effect"):
        read_event(envelope("RestrictionImposed", V1, 2))
    other = make_event("SupervisionActionRecorded", {"uscc": V1["uscc"], "violation_id": "v",
                                                     "actions": ["reminder"], "rule": "P-1",
                                                     "reason": "r"},
                       producer="restrictions", correlation_id="c")
    assert other["schema_version"] == 1


def test_an_unknown_version_is_refused_naming_it():
    with pytest.raises(UnsupportedSchemaVersion, match="schema_version 3"):
        read_event(envelope("RestrictionImposed", V1, 3))
    with pytest.raises(UnsupportedSchemaVersion, match="schema_version 2"):
        read_event(envelope("CreditChanged", {}, 2))
