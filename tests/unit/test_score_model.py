"""The score model: rules, explanation, fading at its boundaries, repairs, validation at load."""
import copy
import json
import os
import random
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from contracts.violation import ViolationSchema
from rules.periods import add_months
from services.scoring import facts
from rules.score_model import (CST, DEFAULT_PATH, InvalidScoreModel, ScoreModel, day_of,
                                    violation_facts)
from tests.factories import make_uscc, violation

MODEL = ScoreModel.load()
DATA = json.loads(DEFAULT_PATH.read_text(encoding="utf-8"))
ROOT = Path(__file__).resolve().parents[2]


def fact(vid=None, **kw):
    record = ViolationSchema().load(violation(**kw))
    return violation_facts(vid or f"{record['agency_code']}/{record['document_number']}", record)


def adds_up(result) -> bool:
    """base + every contribution's points == score, in exact decimal arithmetic."""
    total = Decimal(str(result.base)) + sum(
        (Decimal(str(c["points"])) for c in result.contributions), Decimal(0))
    return total == Decimal(str(result.score))


def at(instant: str) -> date:
    return day_of(datetime.fromisoformat(instant))


# -- rules ---------------------------------------------------------------------------------------

def test_clean_entity_scores_base_and_class_a():
    result = MODEL.score([], date(2026, 11, 28))
    assert (result.score, result.risk_class, result.contributions) == (100, "A", [])
    assert "class A" in result.class_reason


def test_deduction_is_severity_times_weight_plus_penalties_and_listing():
    f = fact(severity="serious", category="food_safety", listing=None,
             penalties=[{"type": "fine", "amount": "50000"}, {"type": "confiscation", "amount": "100"}])
    result = MODEL.score([f], day_of(f["decided_at"]))
    (c,) = result.contributions
    assert [p["points"] for p in c["parts"]] == [-30.0, -3.0]  # 20 x 1.5, confiscation 3
    assert c["points"] == -33.0 and c["fade_factor"] == 1.0 and c["state"] == "fading"
    assert result.score == 67.0 and result.risk_class == "C"


def test_serious_violation_list_forces_class_d_regardless_of_score():
    f = fact(severity="minor", category="product_quality",
             penalties=[{"type": "warning"}])  # listed on the serious violation list
    result = MODEL.score([f], day_of(f["decided_at"]) + timedelta(days=30))
    assert result.score >= 60  # the score alone would not make it D
    assert result.risk_class == "D"
    assert "serious violation list" in result.class_reason and f["document_number"] in result.class_reason
    assert adds_up(result)


def test_serious_listing_forces_d_for_36_months_from_listing():
    f = fact(severity="minor", category="product_quality", penalties=[{"type": "warning"}])
    ends = day_of(add_months(f["listing"]["listed_at"], 36))
    assert MODEL.score([f], ends - timedelta(days=1)).risk_class == "D"
    assert MODEL.score([f], ends).risk_class != "D"
    assert MODEL.score([f], ends + timedelta(days=1)).risk_class != "D"
    assert MODEL.score([f], day_of(f["listing"]["listed_at"]) - timedelta(days=1)).risk_class != "D"


def test_small_fine_has_short_publicity_and_long_occupational_ban_extends_it():
    # From the publication day (Order 45 art. 13): the reported one, else the deadline.
    small = fact(listing=None, penalties=[{"type": "fine", "amount": "2000"}])
    small["published_at"] = small["decided_at"]
    assert MODEL.publicity_end(small) == add_months(small["decided_at"], 3)
    big = fact(listing=None, penalties=[{"type": "fine", "amount": "20000"}])
    big["published_at"] = big["decided_at"]
    assert MODEL.publicity_end(big) == add_months(big["decided_at"], 36)
    ban = fact(listing=None, penalties=[{"type": "occupational_ban", "months": 60}])
    ban["published_at"] = ban["decided_at"]
    assert MODEL.publicity_end(ban) == add_months(ban["decided_at"], 60)
    unreported = fact(listing=None, penalties=[{"type": "fine", "amount": "20000"}])
    assert unreported.get("published_at") is None
    assert MODEL.publicity_end(unreported) == add_months(
        MODEL.periods.publication_deadline(unreported["decided_at"]), 36)
    assert MODEL.publicity_end(unreported) > MODEL.publicity_end(big)


# -- fading at the boundaries ---------------------------------------------------------------------

def test_fading_is_linear_and_ends_exactly_on_the_day_the_publicity_window_ends():
    f = fact(listing=None, severity="general", category="product_quality",
             penalties=[{"type": "fine", "amount": "20000"}])
    start, end = day_of(f["decided_at"]), day_of(MODEL.publicity_end(f))
    span = (end - start).days

    def points(day):
        return MODEL.score([f], day).contributions

    assert points(start - timedelta(days=1)) == []  # not decided yet: nothing
    assert points(start)[0]["points"] == -8.0  # the decision day: the full deduction
    day_before = points(end - timedelta(days=1))[0]
    assert day_before["state"] == "fading" and day_before["fade_factor"] == round(1 / span, 4)
    assert day_before["points"] == float((Decimal(-8) / span).quantize(Decimal("0.1")))
    on_the_day = points(end)[0]
    assert on_the_day["state"] == "faded" and on_the_day["points"] == 0
    day_after = points(end + timedelta(days=1))[0]
    assert day_after["state"] == "faded" and day_after["points"] == 0
    middle = MODEL.score([f], start + timedelta(days=span // 2))
    assert middle.score == pytest.approx(96.0, abs=0.1) and adds_up(middle)
    assert MODEL.score([f], end).score == 100


def test_a_record_decided_late_in_the_evening_counts_from_its_china_day():
    f = fact(listing=None, severity="general", decided_at="2026-04-01T23:30:00+08:00",
             occurred_at="2026-03-01T09:00:00+08:00")
    assert day_of(f["decided_at"]) == date(2026, 4, 1)
    assert MODEL.score([f], date(2026, 3, 31)).contributions == []
    assert MODEL.score([f], date(2026, 4, 1)).contributions[0]["fade_factor"] == 1.0


def test_the_score_day_is_the_china_calendar_day():
    assert day_of(datetime(2026, 11, 27, 16, 30, tzinfo=timezone.utc)) == date(2026, 11, 28)
    assert day_of(datetime(2026, 11, 28, 0, 0, tzinfo=CST)) == date(2026, 11, 28)


# -- repairs, positive records, bounds --------------------------------------------------------------

def test_publicity_repair_stops_the_record_deducting_from_the_repair_day():
    f = fact(listing=None, severity="serious", category="food_safety")
    repaired_at = f["decided_at"] + timedelta(days=200)
    repair = {"violation_id": f["violation_id"], "scope": "publicity", "decided_at": repaired_at,
              "application_id": "app-1"}
    before = MODEL.score([f], day_of(repaired_at) - timedelta(days=1), [repair])
    assert before.contributions[0]["points"] < 0 and before.contributions[0]["state"] == "fading"
    after = MODEL.score([f], day_of(repaired_at), [repair])
    (c,) = after.contributions
    assert c["state"] == "repaired" and c["points"] == 0 and all(p["repaired"] for p in c["parts"])
    assert c["repaired_on"] == {"publicity": day_of(repaired_at).isoformat()}
    assert after.score == 100 and after.risk_class == "A" and adds_up(after)


def test_serious_list_repair_ends_the_forced_class_and_the_listing_deduction_only():
    f = fact(severity="general", category="product_quality",
             penalties=[{"type": "fine", "amount": "20000"}])
    day = day_of(f["decided_at"]) + timedelta(days=400)
    listed = MODEL.score([f], day)
    assert listed.risk_class == "D"
    repair = {"violation_id": f["violation_id"], "scope": "serious_list",
              "decided_at": f["decided_at"] + timedelta(days=380), "application_id": "app-2"}
    result = MODEL.score([f], day, [repair])
    (c,) = result.contributions
    assert result.risk_class != "D" and c["state"] == "partly_repaired"
    assert [p["repaired"] for p in c["parts"]] == [False, True]  # severity stays, listing repaired
    assert result.score > listed.score and adds_up(result)


def test_positive_records_add_bounded_credit_while_valid():
    awarded = datetime(2026, 1, 10, 9, 0, tzinfo=CST)
    honours = [{"record_id": f"GOV/h{i}", "kind": "honour", "awarded_at": awarded,
                "title": "award"} for i in range(5)]  # 5 x 3 = 15 > max 10
    result = MODEL.score([], date(2026, 6, 1), positives=honours)
    assert result.score == 110 and result.risk_class == "A" and adds_up(result)
    assert any(c["kind"] == "adjustment" and c["points"] == -5 for c in result.contributions)
    one = MODEL.score([], date(2026, 6, 1), positives=honours[:1])
    assert one.score == 103
    expired = MODEL.score([], date(2029, 1, 10), positives=honours[:1])  # 36 months later
    assert expired.score == 100 and expired.contributions[0]["state"] == "expired"
    assert MODEL.score([], date(2026, 1, 9), positives=honours[:1]).contributions == []


def test_score_never_falls_below_the_floor_and_still_adds_up():
    heavy = [fact(listing=None, severity="especially_serious", category="food_safety",
                  penalties=[{"type": "licence_revocation"}]) for _ in range(3)]
    result = MODEL.score(heavy, day_of(heavy[0]["decided_at"]))
    assert result.score == 0 and result.risk_class == "D" and adds_up(result)
    assert result.contributions[-1]["kind"] == "adjustment"


def test_explanations_add_up_exactly_over_many_random_histories():
    rng = random.Random(7)
    categories = ["food_safety", "tax_violation", "product_quality", "price_fraud"]
    for _ in range(300):
        records = []
        for _ in range(rng.randint(0, 5)):
            decided = datetime(2024, 1, 1, tzinfo=CST) + timedelta(days=rng.randint(0, 900),
                                                                     minutes=rng.randint(0, 1439))
            listing = rng.choice([None, None, {"list": "serious_violation", "listed_at": decided.isoformat()},
                                  {"list": "abnormal_operations", "listed_at": decided.isoformat()}])
            penalties = rng.choice([[{"type": "fine", "amount": str(rng.randint(100, 90000))}],
                                    [{"type": "warning"}],
                                    [{"type": "suspension", "months": rng.randint(1, 48)},
                                     {"type": "confiscation", "amount": "10"}]])
            records.append(fact(severity=rng.choice(["minor", "general", "serious", "especially_serious"]),
                                category=rng.choice(categories), listing=listing, penalties=penalties,
                                decided_at=decided.isoformat(),
                                occurred_at=(decided - timedelta(days=3)).isoformat()))
        repairs = [{"violation_id": r["violation_id"], "scope": rng.choice(["publicity", "serious_list"]),
                    "decided_at": r["decided_at"] + timedelta(days=rng.randint(100, 700)),
                    "application_id": f"a{i}"} for i, r in enumerate(records) if rng.random() < 0.3]
        positives = [{"record_id": f"p{i}", "kind": rng.choice(list(MODEL.positive_kinds)),
                      "awarded_at": datetime(2025, 1, 1, tzinfo=CST) + timedelta(days=rng.randint(0, 600)),
                      "title": "t"} for i in range(rng.randint(0, 5))]
        day = date(2024, 1, 1) + timedelta(days=rng.randint(0, 1500))
        result = MODEL.score(records, day, repairs, positives)
        assert adds_up(result), result
        assert 0 <= result.score <= 110


# -- the facts: amendments, revocations, redeliveries ---------------------------------------------

def test_score_follows_amendment_and_revocation_and_ignores_redelivery():
    body = violation(listing=None, severity="serious", category="food_safety")
    record = ViolationSchema().load(body)
    vid = f"{record['agency_code']}/{record['document_number']}"
    doc = facts.new_entity(record["uscc"])
    day = day_of(record["decided_at"])

    def score():
        return MODEL.score(*facts.score_inputs(doc)[:1], day, *facts.score_inputs(doc)[1:])

    assert facts.apply_violation(doc, vid, 1, "active", record)
    assert score().score == 70.0
    assert not facts.apply_violation(doc, vid, 1, "active", record)  # redelivered
    amended = ViolationSchema().load({**body, "severity": "general"})
    assert facts.apply_violation(doc, vid, 2, "active", amended)
    assert score().score == 88.0 and score().risk_class == "B"
    assert not facts.apply_violation(doc, vid, 1, "active", record)  # stale after newer
    assert facts.apply_violation(doc, vid, 3, "revoked", amended)
    assert score().score == 100 and score().contributions == []


def test_records_merge_by_version_and_ignore_stale_ones():
    v1 = {"violation_id": "a", "version": 1, "status": "active", "record": {}}
    v2 = {**v1, "version": 2, "status": "revoked"}
    records = facts.merge_version([], v1)
    assert facts.merge_version(records, v1) is None  # redelivered
    assert facts.merge_version(facts.merge_version(records, v2), v1) is None  # stale after newer
    assert facts.merge_version(records, v2) == [v2]


def test_repairs_and_positives_are_kept_once():
    doc = facts.new_entity(make_uscc())
    repair = {"application_id": "r1", "violation_id": "v", "scope": "publicity",
              "decided_at": datetime.now(timezone.utc), "decided_by": "FJAMR", "reason": "ok"}
    assert facts.apply_repair(doc, repair) and not facts.apply_repair(doc, dict(repair))
    assert facts.apply_repair(doc, {**repair, "scope": "serious_list"})
    positive = {"record_id": "GOV/1", "kind": "honour", "awarded_at": datetime.now(timezone.utc)}
    assert facts.apply_positive(doc, positive) and not facts.apply_positive(doc, dict(positive))


# -- the model as data, validated at load -------------------------------------------------------------

def problems_of(**changes):
    data = copy.deepcopy(DATA)
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    with pytest.raises(InvalidScoreModel) as info:
        ScoreModel.from_data(data)
    return "\n".join(info.value.problems)


def test_the_shipped_model_is_valid():
    assert ScoreModel.from_data(DATA).version == DATA["version"]


def test_overlapping_thresholds_are_refused():
    text = problems_of(thresholds=[{"class": "A", "min": 85, "below": None},
                                   {"class": "B", "min": 75, "below": 90},
                                   {"class": "C", "min": 60, "below": 75},
                                   {"class": "D", "min": 0, "below": 60}])
    assert "classes B and A overlap on [85, 90)" in text


def test_a_gap_between_thresholds_is_refused():
    text = problems_of(thresholds=[{"class": "A", "min": 90, "below": None},
                                   {"class": "B", "min": 80, "below": 90},
                                   {"class": "C", "min": 60, "below": 75},
                                   {"class": "D", "min": 0, "below": 60}])
    assert "missing class for scores [75, 80)" in text


def test_a_missing_class_and_an_uncovered_floor_are_refused():
    text = problems_of(thresholds=[{"class": "A", "min": 90, "below": None},
                                   {"class": "B", "min": 75, "below": 90},
                                   {"class": "C", "min": 60, "below": 75}])
    assert "class D is missing" in text and "missing class for scores [0, 60)" in text


def test_a_range_that_stops_below_the_ceiling_is_refused():
    text = problems_of(thresholds=[{"class": "A", "min": 90, "below": 100},
                                   {"class": "B", "min": 75, "below": 90},
                                   {"class": "C", "min": 60, "below": 75},
                                   {"class": "D", "min": 0, "below": 60}])
    assert "missing class for scores [100, 110]" in text


def test_classes_in_the_wrong_order_are_refused():
    text = problems_of(thresholds=[{"class": "D", "min": 90, "below": None},
                                   {"class": "B", "min": 75, "below": 90},
                                   {"class": "C", "min": 60, "below": 75},
                                   {"class": "A", "min": 0, "below": 60}])
    assert "classes must go A, B, C, D" in text


def test_negative_weights_are_refused():
    text = problems_of(category_weight={**DATA["category_weight"], "food_safety": -1.5},
                       penalty_deduction={"licence_revocation": -15})
    assert "category_weight.food_safety: negative weight -1.5 is not allowed" in text
    assert "penalty_deduction.licence_revocation: negative weight -15" in text
    kinds = {**DATA["positive_records"]["kinds"], "honour": {"points": -3, "months": 12}}
    assert "positive_records.kinds.honour.points: must be a positive number" in problems_of(
        positive_records={"max_total": 10, "kinds": kinds})


def test_unknown_categories_penalties_lists_and_keys_are_refused():
    text = problems_of(category_weight={"food_safty": 1.5},
                       penalty_deduction={"flogging": 5},
                       listing_forces_class={"blacklist": "D"},
                       severity_deduction={"minor": 2, "general": 8, "serious": 20},
                       surprise=1)
    assert "category_weight: unknown category 'food_safty'" in text
    assert "penalty_deduction: unknown penalty type 'flogging'" in text
    assert "listing_forces_class: unknown list 'blacklist'" in text
    assert "severity_deduction: no value for severity 'especially_serious'" in text
    assert "unknown key 'surprise'" in text


def test_load_names_the_file_and_every_problem(tmp_path):
    bad = tmp_path / "model.json"
    bad.write_text(json.dumps({**DATA, "category_weight": {"nonsense": 1}}), encoding="utf-8")
    with pytest.raises(InvalidScoreModel) as info:
        ScoreModel.load(bad)
    assert str(bad) in str(info.value) and "unknown category 'nonsense'" in str(info.value)
    broken = tmp_path / "broken.json"
    broken.write_text("{not json", encoding="utf-8")
    with pytest.raises(InvalidScoreModel, match="not valid JSON"):
        ScoreModel.load(broken)


def test_the_service_refuses_to_start_on_an_invalid_model(tmp_path):
    bad = tmp_path / "model.json"
    thresholds = [{"class": "A", "min": 80, "below": None}, {"class": "B", "min": 75, "below": 90},
                  {"class": "C", "min": 60, "below": 75}, {"class": "D", "min": 0, "below": 60}]
    bad.write_text(json.dumps({**DATA, "thresholds": thresholds}), encoding="utf-8")
    run = subprocess.run([sys.executable, "-c", "import services.scoring.service"], cwd=ROOT,
                         env={**os.environ, "SCORE_MODEL_PATH": str(bad)},
                         capture_output=True, text=True, timeout=60)
    assert run.returncode != 0
    assert "InvalidScoreModel" in run.stderr and "overlap" in run.stderr


def test_publicity_repair_of_a_listed_record_ends_every_part_and_the_forced_class():
    f = fact(severity="general", category="product_quality",
             penalties=[{"type": "fine", "amount": "20000"}])
    day = day_of(f["decided_at"]) + timedelta(days=400)
    repair = {"violation_id": f["violation_id"], "scope": "publicity",
              "decided_at": f["decided_at"] + timedelta(days=380), "application_id": "app-3"}
    result = MODEL.score([f], day, [repair])
    (c,) = result.contributions
    assert c["state"] == "repaired" and all(p["repaired"] for p in c["parts"])
    assert (result.score, result.risk_class) == (100, "A")


def test_the_public_records_are_those_in_publicity_and_not_warnings_alone():
    from services.scoring.scores import public_records
    warning = fact(listing=None, severity="minor", penalties=[{"type": "warning"}])
    fine = fact(listing=None, severity="general", penalties=[{"type": "fine", "amount": "20000"}])
    old = fact(listing=None, severity="general", penalties=[{"type": "fine", "amount": "200"}],
               decided_at="2025-01-02T10:00:00+08:00", occurred_at="2025-01-01T10:00:00+08:00")
    result = MODEL.score([warning, fine, old], day_of(fine["decided_at"]) + timedelta(days=1))
    shown = public_records(result.contributions)
    assert [c["violation_id"] for c in shown] == [fine["violation_id"]]
