"""Jurisdiction by the place of the violation (行政处罚法 第二十二条; SAMR Order 45 art. 10)."""
import pytest

from contracts.violation import ViolationSchema
from rules.jurisdiction import Jurisdictions
from tests.factories import make_uscc, violation

RULES = Jurisdictions.load()


def refusal(**overrides):
    return {e["field"]: e["problem"]
            for e in RULES.refusal(ViolationSchema().load(violation(**overrides)))}


def test_shanxi_records_a_shanxi_violation_by_a_zhejiang_entity():
    assert refusal(agency_code="SXAMR-140100", uscc=make_uscc("330100"),
                   place_code="140105") == {}


def test_shanxi_may_not_record_a_fujian_violation_by_a_fujian_entity():
    problems = refusal(agency_code="SXAMR-140100", uscc=make_uscc("350100"), place_code="350102")
    assert "350102 is outside SXAMR" in problems["place_code"]
    assert "行政处罚法 第二十二条" in problems["place_code"]
    assert "uscc" not in problems  # the registration place is not what is judged


def test_shanxi_may_not_record_a_fujian_violation_by_a_shanxi_entity():
    problems = refusal(agency_code="SXAMR-140100", uscc=make_uscc("140100"), place_code="350102")
    assert set(problems) == {"place_code"}


@pytest.mark.parametrize("agency, region, allowed", [
    ("SXAMR-140100", "140100", True), ("SXAMR-140100", "350100", False),
    ("FJAMR-350100", "350100", True), ("FJAMR-350100", "140100", False),
    ("SAMR", "650100", True),
])
def test_a_record_without_place_code_is_judged_by_the_registration_as_before(agency, region,
                                                                              allowed):
    problems = refusal(agency_code=agency, uscc=make_uscc(region))
    assert (problems == {}) is allowed
    if not allowed:  # the old field is still named, with the place it defaulted to
        assert set(problems) == {"place_code", "uscc"}
        assert f"entity region {region} is outside" in problems["uscc"]


def test_the_national_administration_records_anywhere():
    assert refusal(agency_code="SAMR", uscc=make_uscc("350100"), place_code="140105") == {}


def test_category_is_still_checked_with_the_place():
    problems = refusal(agency_code="SXAMR-140100", uscc=make_uscc("330100"), place_code="140105",
                       category="tax_violation")
    assert set(problems) == {"category"}
