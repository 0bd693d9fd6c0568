from datetime import datetime, timedelta, timezone

from contracts.violation import ViolationSchema
from services.scoring.model import ScoreModel
from tests.factories import violation

MODEL = ScoreModel.load()


def rec(**kw):
    return ViolationSchema().load(violation(**kw))


def test_clean_entity_scores_base_and_class_a():
    result = MODEL.score([], datetime.now(timezone.utc))
    assert result.score == 100 and result.risk_class == "A" and result.contributions == []


def test_serious_violation_list_forces_class_d():
    record = rec(severity="general", category="product_quality")
    result = MODEL.score([record], record["decided_at"] + timedelta(days=1))
    assert result.risk_class == "D"
    assert any("serious violation list" in c.get("rule", "") for c in result.contributions)


def test_deductions_fade_over_the_publicity_window():
    record = rec(listing=None, severity="general", category="product_quality")
    start = record["decided_at"]
    early = MODEL.score([record], start + timedelta(days=1)).score
    late = MODEL.score([record], start + timedelta(days=900)).score
    after = MODEL.score([record], start + timedelta(days=365 * 3 + 2)).score
    assert early < late < after == 100


def test_small_fine_has_short_publicity():
    record = rec(listing=None, penalties=[{"type": "fine", "amount": "2000"}])
    assert MODEL.publicity_end(record) < record["decided_at"] + timedelta(days=100)


def test_every_score_is_explained():
    record = rec(listing=None, severity="serious", category="food_safety")
    result = MODEL.score([record], record["decided_at"] + timedelta(days=10))
    assert round(100 - sum(c["deduction"] for c in result.contributions), 2) == result.score


def test_records_merge_by_version_and_ignore_stale_ones():
    from services.scoring.service import merge_version
    v1 = {"violation_id": "a", "version": 1, "status": "active", "record": {}}
    v2 = {**v1, "version": 2, "status": "revoked"}
    records = merge_version([], v1)
    assert merge_version(records, v1) is None  # redelivered
    assert merge_version(merge_version(records, v2), v1) is None  # stale after newer
    assert merge_version(records, v2) == [v2]
