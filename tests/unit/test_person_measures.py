"""Person measures in restrictions, without broker or store: which persons a record binds
after revocation and repair, and the answer a registrar gets at an instant."""
from datetime import datetime, timedelta, timezone

from contracts.violation import ViolationSchema
from rules.measures import Catalog
from rules.periods import add_months
from services.restrictions import persons
from tests.factories import violation

CATALOG = Catalog.load()
LR = {"role": "legal_representative", "name": "张伟", "id_number": "110101198001010010"}


def record(**overrides):
    return ViolationSchema().load(violation(persons=[LR], **overrides))


def measures(wanted):
    return sorted(key.partition("@")[0] for key in wanted)


def test_a_listing_binds_the_legal_representative_and_revocation_or_publicity_repair_frees():
    rec = record()
    assert measures(persons.desired(CATALOG, rec, {}, active=True)) == ["SL-LR"]
    assert persons.desired(CATALOG, rec, {}, active=False) == {}
    assert persons.desired(CATALOG, rec, {"publicity": {}}, active=True) == {}


def test_early_removal_from_the_list_keeps_the_bar_the_catalog_says_it_keeps():
    rec = record()
    kept = persons.desired(CATALOG, rec, {"serious_list": {}}, active=True)
    assert measures(kept) == ["SL-LR"]
    (item,) = kept.values()
    assert item["choice"]["starts_at"] == rec["listing"]["listed_at"]  # still from the listing


def test_the_entity_decision_never_holds_person_measures():
    decision = CATALOG.decide(record())
    assert {m["measure"].subject for m in decision.entity_measures} == {"entity"}
    assert {m["measure"].id for m in decision.person_measures} == {"SL-LR", "SL-PR"}


def _doc(**overrides):
    start = datetime(2026, 4, 1, 16, tzinfo=timezone.utc)
    doc = {"_id": "A/1#SL-LR@abc", "person_id": "p1_" + "a" * 64, "role": "legal_representative",
           "measure_id": "SL-LR", "action": "...", "bars": ["legal_representative", "principal"],
           "other_entities_only": True, "bases": [], "legal_basis": "...",
           "cause": {"uscc": "91350100M000100Y43", "violation_id": "A/1"},
           "starts_at": start, "ends_at": add_months(start, 36), "lifted_at": None}
    doc.update(overrides)
    return doc


def test_the_answer_is_computed_at_the_instant_asked_day_before_and_day_of_the_end():
    doc = _doc()
    who = {"person_id": doc["person_id"]}
    end = doc["ends_at"]
    before = persons.answer(who, [doc], ["legal_representative", "director"],
                            end - timedelta(seconds=1))
    assert before["positions"]["legal_representative"]["may_take"] is False
    assert before["positions"]["director"]["may_take"] is True
    assert persons.answer(who, [doc], None, end)["may_take_all"] is True
    assert persons.answer(who, [doc], None, doc["starts_at"] - timedelta(seconds=1))[
        "may_take_all"] is True


def test_other_enterprises_only_spares_the_cause_and_a_lift_ends_the_bar():
    doc = _doc()
    at = doc["starts_at"] + timedelta(days=1)
    who = {"person_id": doc["person_id"]}
    elsewhere = persons.answer(who, [doc], ["legal_representative"], at)
    assert elsewhere["positions"]["legal_representative"]["measures"][0]["except_at"] == \
        doc["cause"]["uscc"]
    at_cause = persons.answer(who, [doc], ["legal_representative"], at, doc["cause"]["uscc"])
    assert at_cause["may_take_all"] is True
    lifted = _doc(lifted_at=at)
    assert persons.answer(who, [lifted], None, at)["may_take_all"] is True
    assert persons.answer(who, [lifted], None, at - timedelta(seconds=1))["may_take_all"] is False


def test_restriction_ids_stay_within_the_event_id_bound():
    rid = persons.restriction_id("X" * 32 + "/" + "9" * 31, "SL-LR", "p1_" + "f" * 64, 12)
    assert len(f"{rid}:imposed") <= 128
