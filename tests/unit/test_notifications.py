"""Notification domain pieces without a broker or a store: signatures, retry policy, who wants
what, notice identity and body, feedback rules, closure counts."""
from datetime import datetime, timedelta, timezone

import pytest
from marshmallow import ValidationError

from contracts.notifications import FeedbackSchema, RedeliverSchema, SubscriptionSchema
from services.notifications import notices
from services.notifications.delivery import Settings, backoff, classify
from services.notifications.feedback import closure, feedback_errors
from services.notifications.signing import InvalidSignature, sign, verify

SECRET = "s3cret-s3cret-s3cret"
NOW = datetime(2026, 5, 1, tzinfo=timezone.utc)


def restriction(**overrides):
    r = {"restriction_id": "FJAMR-350100/闽市监罚〔2026〕7号#PL-02", "uscc": "91350100M000100Y43",
         "entity_name": "福州示例食品有限公司", "sector": "platforms", "measure_id": "PL-02",
         "action": "Restrict onboarding", "legal_basis": "E-Commerce Law art. 29",
         "department": "Online platforms", "memorandum": "MOU-FOOD-DRUG-2016",
         "source": {"violation_id": "FJAMR-350100/闽市监罚〔2026〕7号", "agency_code": "FJAMR-350100",
                    "document_number": "闽市监罚〔2026〕7号", "category": "food_safety",
                    "severity": "serious"},
         "starts_at": NOW, "ends_at": NOW + timedelta(days=365), "rule": "T-FD-1",
         "reason": "serious food safety violation"}
    r.update(overrides)
    return r


# -- signatures -------------------------------------------------------------------------------

def test_a_signature_verifies_and_any_change_breaks_it():
    body = '{"notice_id":"ntc_1","merchant":"福州"}'.encode()
    header = sign(SECRET, body, 1_700_000_000)
    assert verify(SECRET, body, header, now=1_700_000_100) == 1_700_000_000
    with pytest.raises(InvalidSignature, match="does not match"):
        verify(SECRET, body.replace(b"ntc_1", b"ntc_2"), header, now=1_700_000_100)
    with pytest.raises(InvalidSignature, match="does not match"):
        verify("another-secret-000", body, header, now=1_700_000_100)
    forged_time = header.replace("t=1700000000", "t=1700000200")
    with pytest.raises(InvalidSignature, match="does not match"):
        verify(SECRET, body, forged_time, now=1_700_000_200)


@pytest.mark.parametrize("offset", [301, -301])
def test_a_timestamp_outside_the_replay_window_is_refused(offset):
    body = b"{}"
    header = sign(SECRET, body, 1_700_000_000)
    with pytest.raises(InvalidSignature, match="replay window"):
        verify(SECRET, body, header, now=1_700_000_000 + offset)


@pytest.mark.parametrize("header", [None, "", "v1=abc", "t=123", "t=abc,v1=00", "garbage"])
def test_a_missing_or_malformed_header_is_refused(header):
    with pytest.raises(InvalidSignature):
        verify(SECRET, b"{}", header, now=123)


def test_one_matching_v1_among_several_is_enough():
    header = sign(SECRET, b"{}", 100)
    assert verify(SECRET, b"{}", f"t=100,v1=deadbeef,{header.split(',')[1]}", now=100) == 100


# -- retry policy -----------------------------------------------------------------------------

def test_backoff_doubles_with_jitter_and_is_capped():
    settings = Settings(base_delay=1.0, max_delay=30.0)
    for attempt, nominal in ((1, 1), (2, 2), (3, 4), (4, 8)):
        delays = [backoff(attempt, settings) for _ in range(200)]
        assert all(0.5 * nominal <= d < 1.5 * nominal for d in delays)
        assert max(delays) - min(delays) > 0.1 * nominal  # jittered, not fixed
    assert all(backoff(20, settings) <= 30.0 for _ in range(100))
    assert backoff(1, settings, retry_after=12) >= 12
    assert backoff(1, settings, retry_after=999) == 30.0


@pytest.mark.parametrize("status,ok,retryable", [
    (200, True, True), (204, True, True), (500, False, True), (503, False, True),
    (429, False, True), (408, False, True), (400, False, False), (401, False, False),
    (404, False, False), (410, False, False), (301, False, False)])
def test_responses_are_classified(status, ok, retryable):
    outcome = classify(status)
    assert outcome.ok is ok
    if not ok:
        assert outcome.retryable is retryable and str(status) in outcome.reason


def test_retry_after_in_seconds_is_read():
    assert classify(503, "7").retry_after == 7.0
    assert classify(503, "soon").retry_after is None


# -- who wants what; notice identity -----------------------------------------------------------

def test_platforms_hear_only_about_their_own_merchants_in_their_sectors():
    platform = {"_id": "mall", "kind": "platform", "platform_id": "mall"}
    assert notices.wants(platform, restriction(), {"mall"})
    assert not notices.wants(platform, restriction(), {"other"})
    assert not notices.wants(platform, restriction(sector="taxes", measure_id="TX-01"), {"mall"})
    assert not notices.wants({**platform, "measures": ["PL-01"]}, restriction(), {"mall"})
    assert not notices.wants({**platform, "merchants": ["91350100M000100Y44"]}, restriction(),
                             {"mall"})
    department = {"_id": "tax", "kind": "department", "sectors": ["taxes"]}
    assert notices.wants(department, restriction(sector="taxes", measure_id="TX-01"), set())
    assert not notices.wants(department, restriction(), set())


def test_the_same_notice_has_the_same_id_and_body_and_another_subscriber_another():
    sub = {"_id": "mall", "kind": "platform", "platform_id": "mall", "webhook_url": "http://x",
           "webhook_secret": SECRET}
    first = notices.build("imposed", sub, restriction(), shop_id="s-1", issued_at=NOW,
                          act_within=timedelta(days=3), correlation_id="c")
    again = notices.build("imposed", sub, restriction(), shop_id="s-1", issued_at=NOW,
                          act_within=timedelta(days=3), correlation_id="c")
    other = notices.build("imposed", {**sub, "_id": "mall-2"}, restriction(), shop_id="s-1",
                          issued_at=NOW, act_within=timedelta(days=3), correlation_id="c")
    assert first == again and first["_id"] != other["_id"]
    assert first["_id"].startswith("ntc_") and first["_id"].isascii()
    assert SECRET not in first["body"] and first["delivery"]["mode"] == "webhook"
    lift = notices.build("lifted", sub, restriction(), shop_id="s-1", issued_at=NOW,
                         act_within=timedelta(days=3), correlation_id="c", reason="revoked")
    assert lift["imposition_id"] == first["_id"]
    pull = notices.build("imposed", {"_id": "m", "kind": "platform", "platform_id": "m"},
                         restriction(), shop_id=None, issued_at=NOW,
                         act_within=timedelta(days=3), correlation_id="c")
    assert pull["delivery"] == {"mode": "pull", "state": "available", "attempts": 0,
                                "next_attempt_at": None, "last_error": None}


# -- contracts --------------------------------------------------------------------------------

@pytest.mark.parametrize("body,field", [
    ({"kind": "platform"}, "platform_id"),
    ({"kind": "department"}, "subscriber_id"),
    ({"kind": "platform", "platform_id": "m1", "webhook_url": "http://127.0.0.1:1/h",
      "webhook_secret": "short"}, "webhook_secret"),
    ({"kind": "platform", "platform_id": "m1", "webhook_url": "http://127.0.0.1:1/h",
      "webhook_secret": SECRET, "amqp_queue": "notices.m1"}, "amqp_queue"),
    ({"kind": "platform", "platform_id": "m1", "amqp_queue": "violations.intake"}, "amqp_queue"),
    ({"kind": "platform", "platform_id": "m1", "amqp_queue": "notices.other"}, "amqp_queue"),
    ({"kind": "platform", "platform_id": "m1", "merchants": ["91350100M000100Y44x"]}, "merchants"),
    ({"kind": "platform", "platform_id": "m1", "sectors": ["space"]}, "sectors"),
    ({"kind": "platform", "platform_id": "M 1"}, "platform_id"),
    ({"kind": "platform", "platform_id": "m1", "$where": 1}, "$where"),
])
def test_bad_subscriptions_name_the_field(body, field):
    with pytest.raises(ValidationError) as exc:
        SubscriptionSchema().load(body)
    assert any(key.startswith(field) for key in exc.value.messages), exc.value.messages


def test_applied_feedback_needs_actions_and_a_time_not_in_the_future():
    with pytest.raises(ValidationError) as exc:
        FeedbackSchema().load({"status": "applied"})
    assert set(exc.value.messages) == {"actions", "applied_at"}
    future = (datetime.now(timezone.utc) + timedelta(days=1)).isoformat()
    with pytest.raises(ValidationError) as exc:
        FeedbackSchema().load({"status": "applied", "actions": ["cleared"], "applied_at": future})
    assert "applied_at" in exc.value.messages
    with pytest.raises(ValidationError):
        FeedbackSchema().load({"status": "not_applicable"})
    assert FeedbackSchema().load({"status": "acknowledged"})["status"] == "acknowledged"
    with pytest.raises(ValidationError):
        RedeliverSchema().load({"all": True, "subscriber_id": "mall"})


def test_cleared_answers_an_imposition_and_restored_a_lift():
    assert feedback_errors("lifted", {"actions": ["cleared"]})
    assert feedback_errors("imposed", {"actions": ["restored"]})
    assert not feedback_errors("imposed", {"actions": ["cleared", "shop_closed"]})
    assert not feedback_errors("lifted", {"actions": ["restored"]})


# -- closure ----------------------------------------------------------------------------------

def test_closure_counts_sent_acknowledged_applied_and_overdue():
    def notice(nid, kind="imposed", mode="webhook", act_by=NOW):
        return {"_id": nid, "subscriber_id": "mall", "kind": kind, "act_by": act_by,
                "delivery": {"mode": mode}}
    docs = [notice("a"), notice("b"), notice("c"), notice("d"), notice("e"),
            notice("f", kind="mutual_recognition", act_by=None)]
    report = closure(docs, {"mall": {"kind": "platform", "platform_id": "mall"}},
                     delivered={"a", "b", "c"}, dead={"d"},
                     feedback={"a": {"acknowledged", "applied"}, "b": {"acknowledged"},
                               "e": {"not_applicable"}},
                     as_of=NOW + timedelta(seconds=1))
    row = report["subscribers"][0]
    assert {k: row[k] for k in ("notices", "sent", "acknowledged", "applied", "not_applicable",
                                "overdue", "pending", "dead", "informational")} == {
        "notices": 5, "sent": 3, "acknowledged": 3, "applied": 1, "not_applicable": 1,
        "overdue": 3, "pending": 1, "dead": 1, "informational": 1}
    before = closure(docs, {}, {"a"}, set(), {}, as_of=NOW - timedelta(days=1))
    assert before["totals"]["overdue"] == 0


def test_the_verification_snippet_in_the_docs_works_as_documented():
    import re
    from pathlib import Path
    text = (Path(__file__).resolve().parents[2] / "docs" / "notifications.md").read_text("utf-8")
    snippet = next(block for block in re.findall(r"```python\n(.*?)```", text, re.S)
                   if "def verify" in block)
    scope: dict = {}
    exec(snippet, scope)
    body = '{"notice_id":"ntc_1"}'.encode()
    header = sign(SECRET, body, 1_700_000_000)
    assert scope["verify"](SECRET, body, header, now=1_700_000_010) == 1_700_000_000
    for bad_body, now in ((body + b" ", 1_700_000_010), (body, 1_700_000_301)):
        with pytest.raises(scope["InvalidSignature"]):
            scope["verify"](SECRET, bad_body, header, now=now)


def test_a_webhook_without_a_secret_is_valid_the_server_generates_one():
    from contracts.notifications import SubscriptionSchema
    data = SubscriptionSchema().load({"kind": "platform", "platform_id": "m1",
                                      "webhook_url": "https://m1.example/h"})
    assert data["webhook_secret"] is None  # services.notifications generates whsec_...
