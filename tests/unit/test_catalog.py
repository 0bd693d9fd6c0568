import copy
import json
from datetime import datetime, timedelta, timezone

import pytest

from contracts.events import SECTORS
from contracts.violation import ViolationSchema
from rules.measures import DEFAULT_PATH, Catalog, InvalidCatalog
from rules.periods import add_months, is_active
from tests.factories import violation

DATA = json.loads(DEFAULT_PATH.read_text(encoding="utf-8"))


def load(**overrides):
    return ViolationSchema().load(violation(**overrides))


def test_default_catalog_is_valid_and_covers_every_sector_but_credit():
    catalog = Catalog.load()
    # credit: no verified basis (CR-01/CR-02 of format 1 cited texts not found, and food law
    # art. 113 only lets the authority notify banks: rules/law/FINDINGS.md), so no measure.
    assert {m.sector for m in catalog.measures.values()} == set(SECTORS) - {"credit"}
    assert catalog.legal_review.keys() >= {"reviewed_by", "reviewed_at", "reference"}
    assert catalog.effective_from.utcoffset() is not None


def test_serious_listing_gives_order_44_art_15_effects_not_prohibitions_of_access():
    decision = Catalog.load().decide(load())
    effects = {m["measure"].id: m["measure"].effect for m in decision.entity_measures}
    assert effects == {"SL-LIC": "consideration", "SL-PROC": "consideration",
                       "SL-SUP": "supervision", "SL-NCP": "stricter_review",
                       "SL-HON": "prohibit", "SL-HON-OTHER": "consideration",
                       "SL-TAX": "inform", "SL-PLAT": "inform"}
    assert decision.rules == ["T-SL-1", "T-SL-P"]
    # the entity's legal representative and 负责人 (企业信息公示暂行条例 第十八条): persons
    assert [m["measure"].id for m in decision.person_measures] == ["SL-LR", "SL-PR"]
    hon = Catalog.load().measures["SL-HON"]
    assert hon.bases[0]["article"] == "第十五条" and hon.bases[0]["item"] == "（四）"
    assert "不予授予市场监督管理部门荣誉称号等表彰奖励" in hon.legal_basis


def test_minor_first_offence_and_corrected_gets_soft_tools_only():
    decision = Catalog.load().decide(load(severity="minor", first_offence=True, corrected=True,
                                          listing=None, penalties=[{"type": "warning"}]))
    assert decision.measures == []
    assert decision.soft_tools == ["reminder", "administrative_guidance", "interview"]
    assert "soft tools only" in decision.reason and "第三十三条" in decision.reason


def test_first_offence_alone_is_not_softened():
    # 行政处罚法 art. 33 para. 1: 初次违法 *and* 危害后果轻微 *and* 及时改正 (cumulative)
    decision = Catalog.load().decide(load(severity="minor", first_offence=True, corrected=False,
                                          listing=None))
    assert decision.soft_tools == []


def test_minor_but_repeated_and_uncorrected_is_not_softened():
    decision = Catalog.load().decide(load(severity="minor", first_offence=False, corrected=False,
                                          listing=None))
    assert decision.soft_tools == []


def test_same_facts_same_outcome():
    record = load()
    a, b = Catalog.load().decide(record), Catalog.load().decide(record)
    assert [m["measure"].id for m in a.measures] == [m["measure"].id for m in b.measures]
    assert a.rules == b.rules


def test_risk_class_changes_nothing():
    record = load(listing=None, category="product_quality")
    catalog = Catalog.load()
    outcomes = {cls: [m["measure"].id for m in catalog.decide(record, cls).measures]
                for cls in (None, "A", "B", "C", "D")}
    assert len({tuple(v) for v in outcomes.values()}) == 1


def test_food_licence_revocation_prohibits_food_licences_for_five_years():
    catalog = Catalog.load()
    record = load(listing=None, penalties=[{"type": "licence_revocation"}])
    decision = catalog.decide(record)
    by_id = {m["measure"].id: m for m in decision.measures}
    assert set(by_id) == {"FL-ENT", "FL-LR", "FL-RM", "FL-RS", "GP-EXCL"}
    assert [m["measure"].id for m in decision.entity_measures] == ["FL-ENT", "GP-EXCL"]
    assert by_id["FL-ENT"]["ends_at"] == add_months(record["decided_at"], 60)
    assert by_id["FL-LR"]["measure"].subject == "legal_representative"


def test_windows_follow_the_rule():
    catalog = Catalog.load()
    record = load()
    fixed = catalog.window(catalog.measures["GP-EXCL"], record)
    assert fixed == (record["decided_at"], add_months(record["decided_at"], 36))
    listed = catalog.window(catalog.measures["SL-LIC"], record)
    assert listed[0] == record["listing"]["listed_at"]
    assert listed[1] == add_months(record["listing"]["listed_at"], 36)
    abnormal = load(listing={"list": "abnormal_operations", "listed_at": "2026-04-02T00:00:00+08:00"})
    assert catalog.window(catalog.measures["AO-PLAT"], abnormal)[1] is None


def test_a_fine_threshold_trigger_fires_at_the_threshold_only():
    # The engine can key a trigger on a fine amount; the shipped catalog has none (the
    # 200万元 of 财库〔2022〕3号 is not stored verbatim: rules/law/UNVERIFIED.md).
    data = copy.deepcopy(DATA)
    data["memoranda"][3]["triggers"][0]["when"] = {"min_fine_yuan": 2000000}
    catalog = Catalog.from_data(data)
    fired = lambda amount: "T-GP-1" in catalog.decide(load(  # noqa: E731
        listing=None, penalties=[{"type": "fine", "amount": amount}])).rules
    assert fired("2000000.00") and fired("2500000.00")
    assert not fired("1999999.99")


def test_add_months_clamps_the_day():
    assert add_months(datetime(2026, 1, 31), 1) == datetime(2026, 2, 28)


def test_active_window_boundaries():
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    end = datetime(2027, 1, 1, tzinfo=timezone.utc)
    tick = timedelta(microseconds=1)
    assert not is_active(start, end, None, start - tick)
    assert is_active(start, end, None, start)
    assert is_active(start, end, None, end - tick)
    assert not is_active(start, end, None, end)
    assert is_active(start, None, None, end + timedelta(days=9999))
    assert not is_active(start, end, start + tick, start + tick)


@pytest.mark.parametrize("mutate,problem", [
    (lambda d: d["measures"][0].update(sector="space"), "unknown sector 'space'"),
    (lambda d: d["measures"][0].update(bases=[]), "no bases"),
    (lambda d: d["measures"][0]["bases"][0].update(quote="不予授予荣誉称号"), "not found verbatim"),
    (lambda d: d["measures"][0]["bases"][0].update(article="第二十条"), "not found verbatim"),
    (lambda d: d["measures"][0]["bases"][0].update(law_file="nowhere.md"), "no law file"),
    (lambda d: d["measures"][0]["bases"][0].update(document="优化营商环境条例"), "is not the title"),
    (lambda d: d["measures"][0].update(effect="punish"), "effect must be one of"),
    (lambda d: d["measures"][0].update(subject="family"), "subject must be one of"),
    (lambda d: d["measures"][0].update(legal_basis="x"), "format 1"),
    (lambda d: d["measures"][0].pop("basic_list_item"), "no basic_list_item"),
    (lambda d: d.pop("legal_review"), "法制审核"),
    (lambda d: d.update(effective_from="2026-12-02"), "effective_from"),
    (lambda d: d["memoranda"][0]["triggers"][0].update(when={"risk_classes": ["D"]}),
     "credit risk class triggers no measure"),
    (lambda d: d["memoranda"][0]["triggers"][0].update(when={"severities": ["serious"]}),
     "severity label"),
    (lambda d: d["memoranda"][0]["triggers"][0].update(when={"min_fine_yuan": "lots"}),
     "positive number"),
    (lambda d: d["memoranda"][0]["triggers"][0]["measures"].append("XX-99"), "unknown measure 'XX-99'"),
    (lambda d: d["memoranda"][0]["triggers"][0].update(when={"categories": ["jaywalking"]}), "can never match"),
    (lambda d: d["memoranda"][0]["triggers"][0].update(when={"penalty_types": ["none"]}),
     "decision not to penalise"),
    (lambda d: d["memoranda"][0]["triggers"][0].update(when={}), "no conditions"),
    (lambda d: d["memoranda"][0]["triggers"][0].update(when={"colour": ["red"]}), "unknown condition"),
    (lambda d: d["measures"][0].update(duration={"kind": "fixed_months", "months": 0}), "positive whole"),
    (lambda d: d["measures"].append(dict(d["measures"][0])), "duplicate id"),
])
def test_invalid_catalog_is_refused_with_the_problem_named(mutate, problem):
    data = copy.deepcopy(DATA)
    mutate(data)
    with pytest.raises(InvalidCatalog) as info:
        Catalog.from_data(data)
    assert any(problem in p for p in info.value.problems), info.value.problems


# -- person measures (issue 21) ---------------------------------------------------------------

def _person(role, person_id, responsible=False):
    return {"role": role, "name": "某人", "document_type": "resident_id_card",
            "person_id": "p1_" + person_id * 64, "id_masked": "1****************0",
            "personal_responsibility": responsible}


def test_person_measures_name_what_they_bar_and_keep_a_verified_basis():
    catalog = Catalog.load()
    persons = {mid: m for mid, m in catalog.measures.items() if m.binds_persons}
    assert set(persons) == {"FL-LR", "FL-RM", "FL-RS", "SL-LR", "SL-PR", "CL-LR"}
    assert persons["SL-LR"].bars == ("legal_representative", "principal")
    assert persons["SL-LR"].other_entities_only
    assert persons["CL-LR"].bars == ("director", "supervisor", "senior_manager")
    assert persons["CL-LR"].requires_personal_responsibility
    assert all(m.bars and m.bases for m in persons.values())
    # the early-removal rule is data with its reasoning and checked bases, not code
    early = persons["SL-LR"].on_early_removal
    assert early["ends"] is False and "第十六条" in early["reasoning"]
    assert not persons["SL-LR"].ends_with_early_removal
    assert all(b["quote"] for b in early["bases"])


def test_a_person_measure_without_verified_basis_or_bars_is_refused():
    data = copy.deepcopy(DATA)
    measure = next(m for m in data["measures"] if m["id"] == "SL-LR")
    measure["bases"][0]["quote"] = "法定代表人终身不得担任其他企业的法定代表人"
    measure.pop("on_early_removal")
    measure["bars"] = ["mayor"]
    with pytest.raises(InvalidCatalog) as caught:
        Catalog.from_data(data)
    problems = " ".join(caught.value.problems)
    assert "measure SL-LR basis 1" in problems
    assert "on_early_removal" in problems and "'bars'" in problems


def test_an_entity_measure_may_not_carry_person_fields():
    data = copy.deepcopy(DATA)
    next(m for m in data["measures"] if m["id"] == "FL-ENT")["bars"] = ["director"]
    with pytest.raises(InvalidCatalog, match="FL-ENT.*person measures only"):
        Catalog.from_data(data)


def test_listing_bar_counts_from_the_listing_and_binds_by_role_and_id():
    catalog = Catalog.load()
    record = load()
    record["persons"] = [_person("legal_representative", "a"), _person("director", "b"),
                         {**_person("principal", "c"), "person_id": None}]
    by_id = {m["measure"].id: m for m in catalog.decide(record).measures}
    assert by_id["SL-LR"]["starts_at"] == record["listing"]["listed_at"]
    assert by_id["SL-LR"]["ends_at"] == add_months(record["listing"]["listed_at"], 36)
    assert [p["person_id"] for p in by_id["SL-LR"]["persons"]] == ["p1_" + "a" * 64]
    assert by_id["SL-PR"]["persons"] == []  # an unidentified person binds nobody


def test_company_law_bar_needs_personal_responsibility():
    catalog = Catalog.load()
    record = load(listing=None, category="product_quality",
                  penalties=[{"type": "business_licence_revocation"}])
    record["persons"] = [_person("legal_representative", "a", responsible=True),
                         _person("legal_representative", "b", responsible=False)]
    by_id = {m["measure"].id: m for m in catalog.decide(record).measures}
    assert [p["person_id"] for p in by_id["CL-LR"]["persons"]] == ["p1_" + "a" * 64]
    assert by_id["CL-LR"]["ends_at"] == add_months(record["decided_at"], 36)
    assert "FL-LR" not in by_id  # a business licence is not a food licence
