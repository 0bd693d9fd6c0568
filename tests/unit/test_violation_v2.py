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
