"""Subscriptions and who may do what, feedback and closure, mutual recognition (互认), AMQP and
pull subscribers: the notifications service against the real broker and store."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from services.notifications.signing import verify
from tests.factories import make_uscc
from tests.integration.conftest import wait_for
from tests.integration.test_notifications import (db_prefix, restriction,  # noqa: F401
                                                  world)

pytestmark = pytest.mark.integration


def applied(actions=("listings_blocked",), reference="case-1", **extra) -> dict:
    return {"status": "applied", "actions": list(actions),
            "applied_at": datetime.now(timezone.utc).isoformat(), "reference": reference, **extra}


def test_subscriptions_belong_to_their_platform_and_never_show_the_secret(world):
    mine = world.session("platform", "mall-a")
    other = world.session("platform", "mall-b")
    saved = world.subscribe("mall-a")
    assert saved["has_webhook_secret"] is True and "webhook_secret" not in saved
    secret = world.receiver.secrets["/hooks/mall-a"]
    for response in (mine.get("/v1/subscriptions"), mine.get("/v1/subscriptions/mall-a"),
                     world.admin.get("/v1/subscriptions")):
        assert response.status_code == 200 and secret not in response.text
    stored = world.db.subscriptions.find_one({"_id": "mall-a"})
    assert stored["webhook_secret"] == secret  # kept as given: it is the HMAC key

    refused = other.post("/v1/subscriptions", json={"kind": "platform", "platform_id": "mall-a"})
    assert refused.status_code == 403 and "own subscriptions" in refused.json()["error"]
    hijack = other.post("/v1/subscriptions", json={"subscriber_id": "mall-a", "kind": "platform",
                                                   "platform_id": "mall-b"})
    assert hijack.status_code == 403 and "another platform" in hijack.json()["error"]
    assert other.get("/v1/subscriptions/mall-a").status_code == 403
    assert other.get("/v1/subscriptions").json()["subscriptions"] == []
    assert other.delete("/v1/subscriptions/mall-a").status_code == 403
    assert other.post("/v1/subscriptions", json={"subscriber_id": "tax", "kind": "department",
                                                 "sectors": ["taxes"]}).status_code == 403
    regulator = world.session("regulator", "samr")
    created = regulator.post("/v1/subscriptions", json={
        "subscriber_id": "tax-bureau", "kind": "department", "department": "Tax bureau",
        "sectors": ["taxes"]})
    assert created.status_code == 201 and created.json()["delivery"] == "pull"
    assert len(world.admin.get("/v1/subscriptions").json()["subscriptions"]) == 2
    gatekeeper = world.session("gatekeeper", "bank")
    assert gatekeeper.get("/v1/notices", params={"subscriber": "mall-a"}).status_code == 403


def test_bad_subscriptions_are_400_naming_the_field(world):
    mine = world.session("platform", "mall-a")
    cases = [
        ({"kind": "platform", "platform_id": "mall-a", "webhook_url": "http://127.0.0.1:9/h",
          "webhook_secret": "short"}, "webhook_secret"),
        ({"kind": "platform", "platform_id": "mall-a", "webhook_url": "not a url",
          "webhook_secret": "x" * 20}, "webhook_url"),
        ({"kind": "platform", "platform_id": "mall-a", "measures": ["PL-99"]}, "measures[0]"),
        ({"kind": "platform", "platform_id": "mall-a", "amqp_queue": "violations.intake"},
         "amqp_queue"),
        ({"kind": "shop", "platform_id": "mall-a"}, "kind"),
    ]
    for body, field in cases:
        response = mine.post("/v1/subscriptions", json=body)
        assert response.status_code == 400, (body, response.text)
        assert field in [e["field"] for e in response.json()["errors"]], response.json()
    assert mine.post("/v1/subscriptions", data="{nope").status_code == 400


def test_feedback_updates_closure_and_is_refused_for_unknown_or_foreign_notices(world):
    code = make_uscc()
    world.member(code, "mall-a", "mall-b")
    world.subscribe("mall-a")
    world.subscribe("mall-b", webhook=False)  # pull
    first, second = restriction(code), restriction(code)
    world.impose(first)
    world.impose(second)
    wait_for(lambda: len(world.receiver.unique("/hooks/mall-a")) == 2, message="two notices")
    wait_for(lambda: all(n["status"] == "delivered" for n in world.notices("mall-a")),
             message="receipts")
    a_notices = world.notices("mall-a")
    b_notices = world.notices("mall-b")
    assert [n["status"] for n in b_notices] == ["available", "available"]
    mall_a, mall_b = world.session("platform", "mall-a"), world.session("platform", "mall-b")

    def closure(platform, **params):
        response = world.session("platform", platform).get("/v1/closure", params=params)
        assert response.status_code == 200, response.text
        rows = response.json()["subscribers"]
        assert [r["subscriber_id"] for r in rows] == [platform]
        return rows[0]

    assert {k: closure("mall-a")[k] for k in ("notices", "sent", "acknowledged", "applied")} == \
        {"notices": 2, "sent": 2, "acknowledged": 0, "applied": 0}

    one, two = a_notices[0]["notice_id"], a_notices[1]["notice_id"]
    url = f"/v1/notices/{one}/feedback"
    assert mall_a.post(url, json={"status": "acknowledged"}).status_code == 201
    assert mall_a.post(url, json=applied()).status_code == 201
    again = mall_a.post(url, json={"status": "acknowledged"})
    assert again.status_code == 200 and again.json()["duplicate"] is True
    conflict = mall_a.post(url, json=applied(reference="case-2"))
    assert conflict.status_code == 409 and "other content" in conflict.json()["error"]

    unknown = mall_a.post("/v1/notices/ntc_doesnotexist/feedback", json={"status": "acknowledged"})
    assert unknown.status_code == 404 and "no notice ntc_doesnotexist" in unknown.json()["error"]
    foreign = mall_b.post(url, json={"status": "acknowledged"})
    assert foreign.status_code == 403 and "another platform" in foreign.json()["error"]
    assert mall_b.get(f"/v1/notices/{one}").status_code == 403
    assert mall_b.get("/v1/notices", params={"subscriber": "mall-a"}).status_code == 403
    bad = mall_a.post(f"/v1/notices/{two}/feedback", json={"status": "applied"})
    assert bad.status_code == 400
    assert {e["field"] for e in bad.json()["errors"]} == {"actions", "applied_at"}
    restored = mall_a.post(f"/v1/notices/{two}/feedback", json=applied(actions=["restored"]))
    assert restored.status_code == 400 and restored.json()["errors"][0]["field"] == "actions"
    b_one = b_notices[0]["notice_id"]
    assert mall_b.post(f"/v1/notices/{b_one}/feedback", json={
        "status": "not_applicable", "note": "merchant left the platform"}).status_code == 201

    row = closure("mall-a")
    assert {k: row[k] for k in ("notices", "sent", "acknowledged", "applied", "overdue")} == \
        {"notices": 2, "sent": 2, "acknowledged": 1, "applied": 1, "overdue": 0}
    later = (datetime.now(timezone.utc) + timedelta(days=4)).isoformat()
    assert closure("mall-a", as_of=later)["overdue"] == 1  # the one never applied
    assert {k: closure("mall-b", as_of=later)[k] for k in
            ("sent", "acknowledged", "not_applicable", "overdue")} == \
        {"sent": 2, "acknowledged": 1, "not_applicable": 1, "overdue": 1}
    everyone = world.session("regulator", "samr").get("/v1/closure").json()
    assert [r["subscriber_id"] for r in everyone["subscribers"]] == ["mall-a", "mall-b"]
    assert everyone["totals"]["applied"] == 1
    shown = world.notices("mall-a")[0]["feedback"]
    assert [f["status"] for f in shown] == ["acknowledged", "applied"]
    assert world.session("platform", "mall-a").get(
        "/v1/closure", params={"as_of": "yesterday"}).status_code == 400


def test_a_clearance_is_recognised_by_the_merchants_other_platforms(world):
    code = make_uscc()
    world.member(code, "mall-a", "mall-b", "mall-c")
    for platform in ("mall-a", "mall-b", "mall-c"):
        world.subscribe(platform)
    world.impose(restriction(code, "AO-PLAT"))
    wait_for(lambda: all(world.receiver.unique(f"/hooks/{p}") for p in ("mall-a", "mall-b",
                                                                         "mall-c")),
             message="the clearance notice at every platform")
    notice = next(iter(world.receiver.unique("/hooks/mall-a").values())).json()
    response = world.session("platform", "mall-a").post(
        f"/v1/notices/{notice['notice_id']}/feedback",
        json=applied(actions=["cleared", "shop_closed"], reference="A-CLR-7"))
    assert response.status_code == 201, response.text

    def recognised(platform):
        return [r for r in world.receiver.unique(f"/hooks/{platform}").values()
                if r.kind == "mutual_recognition"]

    for platform in ("mall-b", "mall-c"):
        got = wait_for(lambda: recognised(platform), message=f"互认 notice at {platform}")
        body = got[0].json()
        assert body["cleared_by"]["platform_id"] == "mall-a"
        assert body["cleared_by"]["reference"] == "A-CLR-7"
        assert body["merchant"]["shop_id"] == f"shop-{platform}" and body["act_by"] is None
        assert body["measure"]["id"] == "AO-PLAT"
    assert recognised("mall-a") == []
    # posting the same clearance again tells nobody twice
    world.session("platform", "mall-a").post(
        f"/v1/notices/{notice['notice_id']}/feedback",
        json=applied(actions=["cleared", "shop_closed"], reference="A-CLR-7"))
    wait_for(lambda: world.db.outbox.count_documents({}) == 0, message="outbox drained")
    assert world.db.notices.count_documents({"kind": "mutual_recognition"}) == 2
    row = world.session("platform", "mall-b").get("/v1/closure").json()["subscribers"][0]
    assert row["informational"] == 1 and row["notices"] == 1


def test_a_department_receives_its_sector_on_its_own_amqp_queue(world, queue_reader):
    regulator = world.session("regulator", "samr")
    secret = "tax-bureau-secret-0123"
    response = regulator.post("/v1/subscriptions", json={
        "subscriber_id": "tax-bureau", "kind": "department", "department": "Tax bureau",
        "sectors": ["taxes"], "amqp_queue": "notices.tax-bureau", "webhook_secret": secret})
    assert response.status_code == 201, response.text
    assert response.json()["delivery"] == "amqp"
    code = make_uscc()
    world.impose(restriction(code, "SL-TAX"))
    world.impose(restriction(code, "SL-PLAT"))  # not its sector
    [(properties, body)] = queue_reader.get_all("notices.tax-bureau", expect=1)
    notice = json.loads(body)
    assert notice["measure"]["id"] == "SL-TAX" and notice["subscriber_id"] == "tax-bureau"
    assert properties.message_id == notice["notice_id"]
    verify(secret, body, properties.headers["X-Lianchen-Signature"])
    wait_for(lambda: regulator.get("/v1/notices", params={"subscriber": "tax-bureau"}).json()
             ["notices"][0]["status"] == "delivered", message="the AMQP receipt")
