import pytest
from marshmallow import ValidationError

from contracts.common import field_errors
from contracts.events import make_event, read_event
from contracts.violation import ViolationSchema
from tests.factories import violation


def errors_of(body):
    with pytest.raises(ValidationError) as info:
        ViolationSchema().load(body)
    return {e["field"]: e["problem"] for e in field_errors(info.value.messages)}


def test_a_valid_record_loads_and_keeps_its_facts():
    record = ViolationSchema().load(violation(penalties=[{"type": "fine", "amount": "1200.5"}]))
    assert str(record["penalties"][0]["amount"]) == "1200.50"
    assert record["decided_at"].utcoffset().total_seconds() == 8 * 3600


def test_naive_times_are_read_as_china_time():
    record = ViolationSchema().load(violation(occurred_at="2026-03-01T09:00:00"))
    assert record["occurred_at"].isoformat() == "2026-03-01T09:00:00+08:00"


@pytest.mark.parametrize("override,field,problem", [
    ({"uscc": "91350100M000100Y44"}, "uscc", "wrong check character"),
    ({"category": "jaywalking"}, "category", "Must be one of"),
    ({"penalties": [{"type": "fine", "amount": "-1"}]}, "penalties.0.amount", "must not be negative"),
    ({"penalties": [{"type": "fine"}]}, "penalties.0.amount", "needs an amount"),
    ({"penalties": [{"type": "suspension"}]}, "penalties.0.months", "needs a duration"),
    ({"penalties": []}, "penalties", "at least one penalty"),
    ({"decided_at": "2026-02-01T00:00:00+08:00"}, "decided_at", "before occurred_at"),
    ({"decided_at": "2099-01-01T00:00:00+08:00"}, "decided_at", "in the future"),
    ({"occurred_at": "yesterday"}, "occurred_at", "Not a valid"),
    ({"agency_code": "samr 1"}, "agency_code", "A-Z"),
    ({"severity": "mild"}, "severity", "Must be one of"),
])
def test_each_field_error_is_named(override, field, problem):
    errors = errors_of(violation(**override))
    assert field in errors, errors
    assert problem in errors[field]


def test_missing_fields_are_each_named():
    errors = errors_of({"agency_code": "SAMR"})
    for name in ("document_number", "uscc", "entity_name", "category", "severity", "penalties",
                 "legal_basis", "occurred_at", "decided_at"):
        assert errors[name] == "Missing data for required field."


def test_dollar_prefixed_and_dotted_keys_are_refused_by_path():
    body = violation()
    body["$where"] = "1"
    body["legal_basis"] = {"law": "x" * 3, "article": "1", "$gt": ""}
    errors = errors_of(body)
    assert "$where" in errors and "legal_basis.$gt" in errors
    assert "not allowed" in errors["$where"]


def test_unknown_fields_are_refused():
    errors = errors_of(violation(colour="red"))
    assert errors["colour"] == "Unknown field."


def test_event_roundtrip_validates_payload():
    record = ViolationSchema().load(violation())
    event = make_event("ViolationRecorded", {"violation_id": "A/1", "version": 1,
                                             "status": "active", "record": record},
                       producer="test", correlation_id="c1")
    envelope, payload = read_event(event)
    assert envelope["correlation_id"] == "c1"
    assert payload["record"]["uscc"] == record["uscc"]
    event["payload"]["version"] = 0
    with pytest.raises(ValidationError):
        read_event(event)


def _id_number(body17: str) -> str:
    """``body17`` completed with its GB 11643 (MOD 11-2) check character."""
    from stdnum.cn import ric
    return body17 + ric.calc_check_digit(body17 + "0")


def test_a_legal_representatives_id_number_becomes_a_person_id_and_a_mask_on_load():
    from contracts.violation import ViolationSchema
    from shared import identity
    number = _id_number("11010119800101123")
    body = violation(legal_representative={"name": "张三", "id_number": number})
    loaded = ViolationSchema().load(body)
    dumped = ViolationSchema().dump(loaded)
    rep = dumped["legal_representative"]
    assert number not in str(dumped) and "id_number" not in rep
    assert rep["id_masked"] == number[0] + "*" * 16 + number[-1]
    assert rep["document_type"] == "resident_id_card"
    assert rep["person_id"] == identity.person_id(identity.document("resident_id_card", number))
    # the protected form loads again unchanged (events, stored records)
    assert ViolationSchema().dump(ViolationSchema().load(dumped)) == dumped


def test_a_bad_id_number_is_refused_naming_the_field():
    from contracts.violation import ViolationSchema
    number = _id_number("11010119800101123")
    wrong = number[:17] + ("0" if number[17] != "0" else "1")
    with pytest.raises(ValidationError) as err:
        ViolationSchema().load(violation(legal_representative={"name": "李四",
                                                               "id_number": wrong}))
    assert "check character" in str(err.value.messages["legal_representative"]["id_number"])


def test_a_mainland_number_with_an_impossible_birth_date_is_refused_naming_the_field():
    from contracts.violation import ViolationSchema
    number = _id_number("11010119800231123")  # 31 February
    with pytest.raises(ValidationError) as err:
        ViolationSchema().load(violation(legal_representative={"name": "李四",
                                                               "id_number": number}))
    assert "birth date" in str(err.value.messages["legal_representative"]["id_number"])


def test_the_form_before_issue_19_is_remasked_and_loses_its_hash_on_load():
    from contracts.violation import ViolationSchema
    old = {"name": "张三", "id_number_masked": "110101********123X", "id_number_hash": "a" * 64}
    rep = ViolationSchema().dump(ViolationSchema().load(
        violation(legal_representative=old)))["legal_representative"]
    assert rep == {"name": "张三", "id_masked": "1****************X", "person_id": None,
                   "unmigrated": True}


@pytest.mark.parametrize("extra, field", [
    ({"entity_name": "福州\x00食品"}, "entity_name"),
    ({"\x00": None}, "\\u0000"),
    ({"legal_basis": {"law": "x\x00", "article": "1"}}, "legal_basis.law"),
])
def test_nul_characters_are_refused_by_name(extra, field):
    """PostgreSQL (under FerretDB) cannot store a NUL: refused with the field, written out."""
    with pytest.raises(ValidationError) as caught:
        ViolationSchema().load({**violation(), **extra})
    assert caught.value.messages[field] == ["must not contain the NUL character (U+0000)"]
    assert "\x00" not in repr(caught.value.messages)
