"""Violation record v2 (issue 18 item 4): every new field, good and bad input."""
import pytest
from marshmallow import ValidationError

from contracts.common import field_errors
from contracts.violation import PERSON_ROLES, ViolationSchema
from shared import identity
from tests.factories import violation


def _id_number(body17: str) -> str:
    from stdnum.cn import ric
    return body17 + ric.calc_check_digit(body17 + "0")


NUMBER = _id_number("11010119800101123")
OTHER = _id_number("35010219900505321")


def errors_of(body):
    with pytest.raises(ValidationError) as info:
        ViolationSchema().load(body)
    return {e["field"]: e["problem"] for e in field_errors(info.value.messages)}


def roundtrip(body):
    return ViolationSchema().dump(ViolationSchema().load(body))


# -- persons -------------------------------------------------------------------------------
def test_persons_are_protected_like_the_legal_representative():
    dumped = roundtrip(violation(persons=[
        {"role": "legal_representative", "name": "张三", "id_number": NUMBER,
         "personal_responsibility": True},
        {"role": "responsible_staff", "name": "李四", "document_type": "resident_id_card",
         "id_number": OTHER},
    ]))
    first, second = dumped["persons"]
    assert NUMBER not in str(dumped) and OTHER not in str(dumped)
    assert first == {"role": "legal_representative", "name": "张三",
                     "document_type": "resident_id_card",
                     "person_id": identity.person_id(identity.document("resident_id_card",
                                                                       NUMBER)),
                     "id_masked": NUMBER[0] + "*" * 16 + NUMBER[-1],
                     "personal_responsibility": True}
    assert second["personal_responsibility"] is False and second["role"] == "responsible_staff"
    # the stored form loads again unchanged (events, stores, an amendment resent from a GET)
    assert roundtrip(dumped) == dumped


def test_a_passport_keeps_its_issuing_country():
    person = roundtrip(violation(persons=[{"role": "director", "name": "John Smith",
                                           "document_type": "passport", "id_number": "E12345678",
                                           "issuing_country": "GBR"}]))["persons"][0]
    assert person["issuing_country"] == "GBR" and "E12345678" not in str(person)


def test_every_role_of_the_vocabulary_is_accepted():
    assert set(PERSON_ROLES) == {"legal_representative", "principal", "director", "supervisor",
                                 "senior_manager", "responsible_manager", "responsible_staff"}
    for role in PERSON_ROLES:
        roundtrip(violation(persons=[{"role": role, "name": "王五", "id_number": NUMBER}]))


@pytest.mark.parametrize("person, field, problem", [
    ({"name": "王五", "id_number": NUMBER}, "persons.0.role", "Missing data"),
    ({"role": "chairman", "name": "王五", "id_number": NUMBER}, "persons.0.role", "Must be one of"),
    ({"role": "director", "id_number": NUMBER}, "persons.0.name", "Missing data"),
    ({"role": "director", "name": "王五"}, "persons.0.id_number", "document number is required"),
    ({"role": "director", "name": "王五", "id_number": NUMBER[:17] + "Z"}, "persons.0.id_number",
     ""),
    ({"role": "director", "name": "王五", "id_number": NUMBER, "personal_responsibility": "maybe"},
     "persons.0.personal_responsibility", "Not a valid boolean"),
    ({"role": "director", "name": "王五", "id_number": NUMBER, "age": 40}, "persons.0.age",
     "Unknown field"),
])
def test_a_bad_person_is_refused_naming_the_field(person, field, problem):
    errors = errors_of(violation(persons=[person]))
    assert field in errors, errors
    assert problem in errors[field]
    assert NUMBER not in str(errors)


def test_at_most_twenty_persons():
    person = {"role": "responsible_staff", "name": "王五", "id_number": NUMBER}
    assert len(roundtrip(violation(persons=[person] * 20))["persons"]) == 20
    assert "at most 20" in errors_of(violation(persons=[person] * 21))["persons"]


def test_a_record_without_persons_has_none():
    assert "persons" not in roundtrip(violation())


# -- place_code ----------------------------------------------------------------------------
def test_place_code_is_kept_and_distinct_from_the_deciding_region():
    dumped = roundtrip(violation(agency_code="SXAMR-140100", region_code="140100",
                                 place_code="140105"))
    assert dumped["place_code"] == "140105" and dumped["region_code"] == "140100"


def test_a_record_without_place_code_happened_where_the_entity_is_registered():
    body = violation()
    assert "place_code" not in body
    assert roundtrip(body)["place_code"] == body["uscc"][2:8]


@pytest.mark.parametrize("value", ["14010", "1401050", "abcdef", "040100", 140105, ""])
def test_a_bad_place_code_is_refused_naming_the_field(value):
    errors = errors_of(violation(place_code=value))
    assert "place_code" in errors, errors


# -- procedure -----------------------------------------------------------------------------
def test_procedure_defaults_to_ordinary_and_takes_summary():
    assert roundtrip(violation())["procedure"] == "ordinary"
    assert roundtrip(violation(procedure="summary"))["procedure"] == "summary"
    assert "Must be one of" in errors_of(violation(procedure="on_the_spot"))["procedure"]


# -- published_at --------------------------------------------------------------------------
def test_published_at_is_optional_and_an_instant():
    assert "published_at" not in roundtrip(violation())
    dumped = roundtrip(violation(published_at="2026-04-20T09:00:00"))
    assert dumped["published_at"] == "2026-04-20T09:00:00+08:00"


@pytest.mark.parametrize("value, problem", [
    ("2026-03-31T10:00:00+08:00", "before decided_at"),
    ("2099-01-01T00:00:00+08:00", "in the future"),
    ("soon", "Not a valid"),
])
def test_a_bad_published_at_is_refused_naming_the_field(value, problem):
    assert problem in errors_of(violation(published_at=value))["published_at"]


# -- penalty type none (不予行政处罚, 行政处罚法 第三十三条) ---------------------------------------
def test_a_decision_not_to_penalise_is_recorded():
    dumped = roundtrip(violation(penalties=[{"type": "none"}], listing=None))
    assert dumped["penalties"] == [{"type": "none"}]


@pytest.mark.parametrize("override, field, problem", [
    ({"penalties": [{"type": "none"}, {"type": "fine", "amount": "100"}]}, "penalties",
     "stands alone"),
    ({"penalties": [{"type": "warning"}, {"type": "none"}]}, "penalties", "stands alone"),
    ({"penalties": [{"type": "none", "amount": "100"}]}, "penalties.0.amount", "has no amount"),
    ({"penalties": [{"type": "none", "months": 3}]}, "penalties.0.months", "has no months"),
    ({"penalties": [{"type": "none"}]}, "listing", "较重行政处罚"),  # factory lists it
])
def test_none_with_anything_else_is_refused_naming_the_field(override, field, problem):
    errors = errors_of(violation(**override))
    assert problem in errors.get(field, ""), errors


def test_a_none_record_triggers_no_penalty_measure():
    from rules.measures import Catalog
    catalog = Catalog.load()
    revoked = ViolationSchema().load(violation(penalties=[{"type": "licence_revocation"}],
                                               listing=None))
    spared = ViolationSchema().load(violation(penalties=[{"type": "none"}], listing=None))
    assert catalog.decide(revoked).measures  # the same facts with a penalty do trigger
    assert catalog.decide(spared).measures == [] and catalog.decide(spared).rules == []


# -- fingerprints: a v1 record is the same record after v2 ---------------------------------
def test_v1_defaults_do_not_change_a_records_fingerprint():
    from services.violations.intake import fingerprint
    body = violation()
    v1 = {k: v for k, v in roundtrip(body).items() if k not in ("place_code", "procedure")}
    explicit = roundtrip({**body, "place_code": body["uscc"][2:8], "procedure": "ordinary"})
    assert fingerprint(roundtrip(body)) == fingerprint(v1) == fingerprint(explicit)
    assert fingerprint(roundtrip({**body, "procedure": "summary"})) != fingerprint(v1)
    assert fingerprint(roundtrip({**body, "place_code": "140105"})) != fingerprint(v1)


# -- events: v2 written, v1 still read (old dead letters replay) ----------------------------
def test_violation_events_are_written_at_v2_with_the_registration_region():
    from contracts.events import make_event, read_event
    record = ViolationSchema().load(violation(place_code="140105"))
    event = make_event("ViolationRecorded", {"violation_id": "A/1", "version": 1,
                                             "status": "active", "record": record},
                       producer="violations", correlation_id="c")
    assert event["schema_version"] == 2
    assert event["payload"]["registration_region"] == record["uscc"][2:8]
    assert read_event(event)[1]["record"]["place_code"] == "140105"


@pytest.mark.parametrize("kind", ["ViolationRecorded", "ViolationAmended", "ViolationRevoked"])
def test_a_v1_violation_event_reads_with_the_v1_defaults(kind):
    from contracts.events import read_event
    body = violation()
    v1_record = {**body, "penalties": [{"type": "fine", "amount": "50000.00"}]}
    envelope = {"event_id": "FJAMR-350100/1@v1", "type": kind, "schema_version": 1,
                "occurred_at": "2026-04-01T02:00:00+00:00", "producer": "violations",
                "correlation_id": "c", "payload": {"violation_id": "FJAMR-350100/1",
                                                   "version": 1, "status": "active",
                                                   "record": v1_record, "reason": None}}
    _, payload = read_event(envelope)
    assert payload["registration_region"] == body["uscc"][2:8]
    assert payload["record"]["place_code"] == body["uscc"][2:8]
    assert payload["record"]["procedure"] == "ordinary"
    assert "published_at" not in payload["record"] and "persons" not in payload["record"]


def test_a_redacted_dead_letter_with_persons_replays_as_the_same_persons():
    """A failed intake message's retry or dead-letter copy (``shared.identity.redact``)
    carries each person's protected form; replayed, it loads to the same record."""
    body = violation(persons=[{"role": "principal", "name": "张三", "id_number": NUMBER}])
    copy = identity.redact(body)
    assert NUMBER not in str(copy)
    assert roundtrip(copy) == roundtrip(body)
