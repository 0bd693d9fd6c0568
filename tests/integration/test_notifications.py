"""Notices, signed webhook delivery, retries, dead letters and ordering against the real broker,
the real store and a real local HTTP receiver (tests.notify_support.py)."""
from __future__ import annotations

import itertools
import uuid
from datetime import datetime, timezone

import pytest
import requests
from nameko.standalone.events import event_dispatcher

from contracts.events import make_event
from services.notifications.delivery import outstanding
from services.notifications.service import NotificationsService
from services.notifications.signing import InvalidSignature, verify
from services.registry.service import RegistryService
from tests.factories import make_uscc
from tests.integration.conftest import wait_for
from tests.notify_support import Receiver
from tests.system import free_port

pytestmark = pytest.mark.integration

FAST = {"NOTIFY_RETRY_BASE_MS": 100, "NOTIFY_RETRY_MAX_MS": 800, "NOTIFY_MAX_ATTEMPTS": 4,
        "NOTIFY_TIMEOUT_MS": 700, "NOTIFY_CONNECT_TIMEOUT_MS": 500,
        "NOTIFY_SUBSCRIPTION_TTL_MS": 0}
_numbers = itertools.count(1)
MEASURES = {  # catalog format 2 measures a platform or a tax bureau hears about
    "AO-PLAT": ("platforms", "The abnormal operations listing is published; platforms are told"),
    "SL-PLAT": ("platforms", "The listing is published; platforms are told"),
    "SL-TAX": ("taxes", "The serious violation list is shared with the tax authorities"),
}
BASIS = {"document": "市场监督管理严重违法失信名单管理办法", "number": "国家市场监督管理总局令第44号",
         "article": "第十四条", "item": None, "quote": "通过国家企业信用信息公示系统进行公示",
         "law_file": "samr-order-44-serious-violation-list.2021.md"}


def restriction(code: str, measure: str = "SL-PLAT", document: int | None = None) -> dict:
    document = document or next(_numbers)
    vid = f"FJAMR-350100/闽市监罚〔2026〕{document}号"
    sector, action = MEASURES[measure]
    return {"restriction_id": f"{vid}#{measure}", "uscc": code, "entity_name": "福州示例食品有限公司",
            "sector": sector, "measure_id": measure, "action": action,
            "effect": "inform", "subject": "entity", "bases": [BASIS],
            "legal_basis": "市场监督管理严重违法失信名单管理办法 第十四条", "department": "Online platforms",
            "memorandum": "SAMR-ORDER-44",
            "source": {"violation_id": vid, "agency_code": "FJAMR-350100",
                       "document_number": f"闽市监罚〔2026〕{document}号",
                       "category": "food_safety", "severity": "serious"},
            "starts_at": datetime(2026, 4, 1, 2, tzinfo=timezone.utc),
            "ends_at": datetime(2027, 4, 1, 2, tzinfo=timezone.utc),
            "rule": "T-SL-1", "reason": "T-SL-1 (Entity placed on the serious violation list)"}


class World:
    """Registry + notifications containers, a receiver, and helpers to drive them."""

    def __init__(self, config, registry_port, make_session, receiver, db):
        self.config = config
        self.registry_url = f"http://127.0.0.1:{registry_port}"
        self.make_session = make_session
        self.receiver = receiver
        self.db = db("notifications")
        self.admin = make_session()
        self._sessions = {}

    def session(self, role: str, subject: str):
        if (role, subject) not in self._sessions:
            self._sessions[role, subject] = self.make_session(role, subject)
        return self._sessions[role, subject]

    def member(self, code: str, *platforms: str) -> None:
        admin = requests.Session()
        admin.headers.update(self.admin.headers)
        assert admin.put(f"{self.registry_url}/v1/registry/entities/{code}",
                         json={"name": "福州示例食品有限公司"}).status_code in (200, 201)
        for platform in platforms:
            assert admin.post(f"{self.registry_url}/v1/registry/entities/{code}/memberships",
                              json={"platform_id": platform, "shop_id": f"shop-{platform}"}).ok

    def subscribe(self, platform: str, webhook: bool = True, **extra) -> dict:
        body = {"kind": "platform", "platform_id": platform, **extra}
        if webhook:
            path = f"/hooks/{platform}"
            secret = f"secret-of-{platform}-0123456789"
            self.receiver.secrets[path] = secret
            body.update(webhook_url=self.receiver.url(path), webhook_secret=secret)
        response = self.session("platform", platform).post("/v1/subscriptions", json=body)
        assert response.status_code in (200, 201), response.text
        return response.json()

    def impose(self, r: dict) -> None:
        event_dispatcher(self.config)("restrictions", "RestrictionImposed", make_event(
            "RestrictionImposed", r, producer="restrictions", correlation_id="it-corr",
            event_id=f"{r['restriction_id']}:imposed"))

    def impose_many(self, *rs: dict) -> None:
        """One decision's restrictions in one event (RestrictionsImposed)."""
        vid = rs[0]["source"]["violation_id"]
        event_dispatcher(self.config)("restrictions", "RestrictionsImposed", make_event(
            "RestrictionsImposed", {"uscc": rs[0]["uscc"], "violation_id": vid,
                                    "restrictions": list(rs)},
            producer="restrictions", correlation_id="it-corr", event_id=f"{vid}:imposed:t"))

    def lift(self, r: dict, reason: str = "violation revoked: overturned on appeal") -> None:
        event_dispatcher(self.config)("restrictions", "RestrictionLifted", make_event(
            "RestrictionLifted", {"restriction": r, "lifted_at": datetime.now(timezone.utc),
                                  "lift_reason": reason},
            producer="restrictions", correlation_id="it-corr",
            event_id=f"{r['restriction_id']}:lifted"))

    def status(self, platform: str) -> str | None:
        """The delivery status of the platform's first notice (None before there is one)."""
        found = self.notices(platform)
        return found[0]["status"] if found else None

    def notices(self, platform: str, **params) -> list[dict]:
        response = self.session("platform", platform).get(
            "/v1/notices", params={"subscriber": platform, **params})
        assert response.status_code == 200, response.text
        return response.json()["notices"]


@pytest.fixture
def db_prefix(mongo_client):
    """This test's databases, dropped by name afterwards (FerretDB 1.24's listDatabases has
    been seen to stall for good while single databases kept answering)."""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    yield prefix
    for service in ("notifications", "registry", "auth"):
        mongo_client.drop_database(f"{prefix}_{service}")


@pytest.fixture
def world(container_factory, config, make_session, db):
    port = free_port()
    registry = container_factory(RegistryService,
                                 {**config, "WEB_SERVER_ADDRESS": f"127.0.0.1:{port}"})
    registry.start()
    notifications_config = {**config, **FAST}
    notifications = container_factory(NotificationsService, notifications_config)
    notifications.start()
    receiver = Receiver().start()
    world = World(notifications_config, port, make_session, receiver, db)
    world.container = notifications
    world.registry = registry
    yield world
    receiver.stop()


def test_a_notice_reaches_each_member_platform_signed_and_once(world):
    code = make_uscc()
    world.member(code, "mall-a", "mall-b")
    world.subscribe("mall-a")
    world.subscribe("mall-b")
    r = restriction(code)
    world.impose(r)
    wait_for(lambda: all(world.receiver.unique(f"/hooks/{p}") for p in ("mall-a", "mall-b")),
             message="a notice at each platform")
    world.impose(r)  # the same event again records and sends nothing new
    wait_for(lambda: all(n["status"] == "delivered" for n in world.notices("mall-a")),
             message="the notice marked delivered")
    for platform in ("mall-a", "mall-b"):
        got = world.receiver.accepted(f"/hooks/{platform}")
        assert len(got) == 1
        body = got[0].json()
        assert body["merchant"] == {"uscc": code, "name": "福州示例食品有限公司",
                                    "shop_id": f"shop-{platform}"}
        assert body["measure"]["id"] == "SL-PLAT" and body["kind"] == "imposed"
        assert body["notice_id"] == got[0].notice_id and body["act_by"]
        assert body["restriction"]["source"]["document_number"].startswith("闽市监罚")
    assert world.receiver.all("/hooks/mall-a")[0].headers["X-Correlation-Id"] == "it-corr"
    assert len(world.notices("mall-a")) == 1 and world.db.notices.count_documents({}) == 2
    from shared.ledger import verify as verify_ledger
    wait_for(lambda: world.db.ledger.count_documents({"kind": "NoticeDelivered"}) == 2,
             message="both deliveries in the decision ledger")
    assert verify_ledger(world.db).ok


def test_platforms_come_from_the_memberships_read_model_without_asking_the_registry(world):
    """The registry's MembershipsChanged feeds notifications' read model; once bootstrapped,
    a notice needs no RPC: with the registry stopped, a decision's restrictions (one
    RestrictionsImposed) still reach the member platform, a notice per restriction, once."""
    code = make_uscc()
    world.member(code, "mall-a", "mall-b")
    world.subscribe("mall-a")
    wait_for(lambda: world.db.meta.find_one({"_id": "memberships"}), message="bootstrapped")
    wait_for(lambda: (world.db.memberships.find_one({"_id": code}) or {}).get("version") == 2,
             message="both memberships in the read model")
    assert world.db.memberships.find_one({"_id": code})["memberships"] == [
        {"platform_id": "mall-a", "shop_id": "shop-mall-a"},
        {"platform_id": "mall-b", "shop_id": "shop-mall-b"}]
    world.registry.stop()
    document = next(_numbers)
    first, second = restriction(code, "SL-PLAT", document), restriction(code, "AO-PLAT", document)
    world.impose_many(first, second)
    wait_for(lambda: len(world.receiver.unique("/hooks/mall-a")) == 2,
             message="a notice per restriction at the member platform")
    world.impose_many(first, second)  # the same decision again: nothing new
    wait_for(lambda: all(n["status"] == "delivered" for n in world.notices("mall-a")),
             message="both delivered")
    got = world.receiver.accepted("/hooks/mall-a")
    assert len(got) == 2 and {g.json()["merchant"]["shop_id"] for g in got} == {"shop-mall-a"}
    assert {g.json()["restriction"]["restriction_id"] for g in got} == {
        first["restriction_id"], second["restriction_id"]}
    assert world.db.notices.count_documents({}) == 2


def test_the_memberships_read_model_is_bootstrapped_from_the_registry(
        container_factory, config, db, keys):
    """Memberships set before the read model existed (no version, no event) are loaded from
    the registry's pages at start; a later change (version 1) supersedes them."""
    port = free_port()
    registry = container_factory(RegistryService,
                                 {**config, "WEB_SERVER_ADDRESS": f"127.0.0.1:{port}"})
    registry.start()
    codes = sorted(make_uscc() for _ in range(3))
    db("registry").entities.insert_many(
        [{"_id": c, "name": "旧店", "memberships": [{"platform_id": "mall-old", "shop_id": c[-4:]}]}
         for c in codes[:2]] + [{"_id": codes[2], "name": "无店"}])
    notifications = container_factory(NotificationsService, {**config, **FAST})
    notifications.start()
    store = db("notifications")
    wait_for(lambda: store.meta.find_one({"_id": "memberships"}), message="bootstrapped")
    assert {d["_id"]: (d["version"], d["memberships"]) for d in store.memberships.find({})} == {
        c: (0, [{"platform_id": "mall-old", "shop_id": c[-4:]}]) for c in codes[:2]}
    admin = requests.Session()
    admin.headers.update({"Authorization": f"Bearer {keys()}"})
    assert admin.post(f"http://127.0.0.1:{port}/v1/registry/entities/{codes[0]}/memberships",
                      json={"platform_id": "mall-new", "shop_id": "n-1"}).ok
    wait_for(lambda: store.memberships.find_one({"_id": codes[0]})["version"] == 1,
             message="the change applied")
    assert [m["platform_id"] for m in store.memberships.find_one({"_id": codes[0]})[
        "memberships"]] == ["mall-new", "mall-old"]


def test_a_failing_receiver_gets_the_same_notice_again_with_the_same_body(world):
    code = make_uscc()
    world.member(code, "mall-a")
    world.subscribe("mall-a")
    answers = iter([500, "close", 503])
    world.receiver.behave["/hooks/mall-a"] = lambda request: next(answers, "ok")
    world.impose(restriction(code))
    wait_for(lambda: world.receiver.unique("/hooks/mall-a"), message="delivery after failures")
    tries = world.receiver.all("/hooks/mall-a")
    assert [t.answer for t in tries] == [500, "closed", 503, 200]
    assert len({t.notice_id for t in tries}) == 1 and len({t.body for t in tries}) == 1
    assert [t.headers["X-Lianchen-Attempt"] for t in tries] == ["1", "2", "3", "4"]
    notice = world.notices("mall-a")[0]
    wait_for(lambda: world.status("mall-a") == "delivered", message="receipt")
    assert notice["notice_id"] == tries[0].notice_id


def test_a_slow_receiver_times_out_is_retried_and_applies_the_notice_once(world):
    code = make_uscc()
    world.member(code, "mall-a")
    world.subscribe("mall-a")
    answers = iter([("slow", 1.5)])
    world.receiver.behave["/hooks/mall-a"] = lambda request: next(answers, "ok")
    world.impose(restriction(code))
    wait_for(lambda: world.status("mall-a") == "delivered",
             message="delivery after a timeout")
    assert len(world.receiver.unique("/hooks/mall-a")) == 1
    assert world.notices("mall-a")[0]["delivery"]["attempts"] == 2


def test_a_hanging_receiver_does_not_hold_back_other_subscribers(world):
    codes = [make_uscc() for _ in range(4)]
    for code in codes:
        world.member(code, "mall-slow", "mall-fast")
    world.subscribe("mall-slow")
    world.subscribe("mall-fast")
    world.receiver.behave["/hooks/mall-slow"] = "hang"
    for code in codes:
        world.impose(restriction(code))
    wait_for(lambda: len(world.receiver.unique("/hooks/mall-fast")) == 4,
             message="every notice at the healthy platform")
    assert world.receiver.unique("/hooks/mall-slow") == {}  # still hanging meanwhile
    world.receiver.behave["/hooks/mall-slow"] = "ok"
    world.receiver.release()
    wait_for(lambda: len(world.receiver.unique("/hooks/mall-slow")) == 4, timeout=30,
             message="every notice at the slow platform once it answers")


def test_after_the_limit_a_notice_is_dead_lettered_and_an_operator_redelivers_it(
        world, monkeypatch, capsys, keys):
    code = make_uscc()
    world.member(code, "mall-a")
    world.subscribe("mall-a")
    world.receiver.behave["/hooks/mall-a"] = 500
    world.impose(restriction(code))
    dead = wait_for(lambda: world.admin.get("/v1/dead-notices").json()["dead_notices"],
                    message="the notice in the dead-letter store")
    assert dead[0]["attempts"] == 4 and "500" in dead[0]["reason"]
    assert dead[0]["subscriber_id"] == "mall-a"
    assert world.notices("mall-a")[0]["status"] == "dead"
    platform = world.session("platform", "mall-a")
    assert platform.get("/v1/dead-notices").status_code == 403

    from shared.cli import main
    port = world.config["WEB_SERVER_ADDRESS"].split(":")[1]
    monkeypatch.setenv("LIANCHEN_NOTIFICATIONS_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("LIANCHEN_KEY", keys("administrator", "ops"))
    assert main(["notices", "dead"]) == 0
    assert dead[0]["notice_id"] in capsys.readouterr().out

    world.receiver.behave["/hooks/mall-a"] = "ok"
    assert main(["notices", "redeliver", "--subscriber", "mall-a"]) == 0
    assert "redelivering 1" in capsys.readouterr().out
    wait_for(lambda: world.receiver.unique("/hooks/mall-a"), message="the redelivered notice")
    wait_for(lambda: world.status("mall-a") == "delivered", message="receipt")
    assert world.admin.get("/v1/dead-notices").json()["dead_notices"] == []
    assert world.receiver.duplicates("/hooks/mall-a") == 0
    again = world.admin.post("/v1/dead-notices:redeliver",
                             json={"notice_ids": [dead[0]["notice_id"]]})
    assert again.json()["results"][0]["result"] == "not dead-lettered"


def test_a_refusal_is_dead_lettered_at_once_with_the_reason(world):
    code = make_uscc()
    world.member(code, "mall-a")
    world.subscribe("mall-a")
    world.receiver.behave["/hooks/mall-a"] = 410
    world.impose(restriction(code))
    dead = wait_for(lambda: world.admin.get("/v1/dead-notices",
                                            params={"subscriber": "mall-a"}).json()["dead_notices"],
                    message="the refused notice dead-lettered")
    assert dead[0]["attempts"] == 1 and "410" in dead[0]["reason"]


def test_a_lift_waits_for_its_imposition(world):
    code = make_uscc()
    world.member(code, "mall-a")
    world.subscribe("mall-a")
    failures = {"imposed": 2}

    def impositions_fail_twice(request):
        if request.kind == "imposed" and failures["imposed"]:
            failures["imposed"] -= 1
            return 500
        return "ok"

    world.receiver.behave["/hooks/mall-a"] = impositions_fail_twice
    r = restriction(code)
    world.impose(r)
    wait_for(lambda: world.receiver.all("/hooks/mall-a"), message="a first attempt")
    world.lift(r)
    wait_for(lambda: len(world.receiver.unique("/hooks/mall-a")) == 2, message="both notices")
    tries = world.receiver.all("/hooks/mall-a")
    assert [t.kind for t in tries] == ["imposed", "imposed", "imposed", "lifted"]
    assert [t.answer for t in tries] == [500, 500, 200, 200]
    lifted = tries[-1].json()
    assert lifted["kind"] == "lifted" and lifted["reason"].startswith("violation revoked")


def test_a_lift_handled_before_its_imposition_still_arrives_second(world):
    code = make_uscc()
    world.member(code, "mall-a")
    world.subscribe("mall-a")
    r = restriction(code)
    world.lift(r)  # its imposition's event is late (a retry upstream, say)
    wait_for(lambda: len(world.receiver.unique("/hooks/mall-a")) == 2, message="both notices")
    world.impose(r)
    wait_for(lambda: world.db.notices.count_documents({}) == 2, message="notices stored")
    kinds = [t.kind for t in world.receiver.accepted("/hooks/mall-a")]
    assert kinds == ["imposed", "lifted"]
    imposed = world.receiver.accepted("/hooks/mall-a")[0].json()
    assert imposed["act_by"] is None  # already lifted: nothing to act on
    assert world.receiver.duplicates("/hooks/mall-a") == 0


def test_a_dead_imposition_takes_its_lift_along_and_redelivery_restores_the_order(world):
    code = make_uscc()
    world.member(code, "mall-a")
    world.subscribe("mall-a")
    world.receiver.behave["/hooks/mall-a"] = (
        lambda request: 500 if request.kind == "imposed" else "ok")
    r = restriction(code)
    world.impose(r)
    world.lift(r)
    dead = wait_for(lambda: len(world.admin.get("/v1/dead-notices").json()["dead_notices"]) == 2
                    and world.admin.get("/v1/dead-notices").json()["dead_notices"],
                    message="imposition and lift dead-lettered")
    lift = next(d for d in dead if d["kind"] == "lifted")
    assert "imposition" in lift["reason"]
    assert world.receiver.accepted("/hooks/mall-a") == []  # the lift never went first
    world.receiver.behave["/hooks/mall-a"] = "ok"
    result = world.admin.post("/v1/dead-notices:redeliver",
                              json={"notice_ids": [lift["notice_id"]]})
    assert result.status_code == 200
    wait_for(lambda: len(world.receiver.unique("/hooks/mall-a")) == 2, message="both, in order")
    assert [t.kind for t in world.receiver.accepted("/hooks/mall-a")] == ["imposed", "lifted"]


def test_a_tampered_or_replayed_body_fails_verification(world):
    code = make_uscc()
    world.member(code, "mall-a")
    world.subscribe("mall-a")
    world.impose(restriction(code))
    got = wait_for(lambda: world.receiver.accepted("/hooks/mall-a"), message="a notice")[0]
    secret = world.receiver.secrets["/hooks/mall-a"]
    header = got.headers["X-Lianchen-Signature"]
    verify(secret, got.body, header)
    tampered = got.body.replace(b'"SL-PLAT"', b'"SL-PLAX"')
    with pytest.raises(InvalidSignature, match="does not match"):
        verify(secret, tampered, header)
    with pytest.raises(InvalidSignature, match="replay window"):
        verify(secret, got.body, header, now=int(header.split(",")[0][2:]) + 301)
    with pytest.raises(InvalidSignature):
        verify("another-secret-0123456789", got.body, header)
    posted = requests.post(world.receiver.url("/hooks/mall-a"), data=tampered,
                           headers={"X-Lianchen-Signature": header,
                                    "X-Lianchen-Notice-Id": got.notice_id})
    assert posted.status_code == 401 and len(world.receiver.unique("/hooks/mall-a")) == 1


def test_a_notice_pending_when_the_service_stops_is_delivered_after_a_restart(
        world, container_factory):
    code = make_uscc()
    world.member(code, "mall-a")
    world.subscribe("mall-a")
    world.container.stop()
    patient = {**world.config, "NOTIFY_RETRY_BASE_MS": 2000, "NOTIFY_RETRY_MAX_MS": 5000,
               "NOTIFY_MAX_ATTEMPTS": 10}
    first = container_factory(NotificationsService, patient)
    first.start()
    world.receiver.stop()  # down: connection refused
    world.impose(restriction(code))
    wait_for(lambda: (world.db.notices.find_one({}) or {}).get("delivery", {}).get("attempts"),
             message="a failed attempt")
    first.stop()  # with the notice waiting for its next attempt
    back = Receiver(port=world.receiver.port)
    back.secrets = world.receiver.secrets
    back.start()
    try:
        container_factory(NotificationsService, world.config).start()
        wait_for(lambda: back.unique("/hooks/mall-a"), message="the pending notice, after restart")
        assert back.duplicates("/hooks/mall-a") == 0
        # the attempt count carried on from the store: not a fresh budget
        assert int(back.all("/hooks/mall-a")[0].headers["X-Lianchen-Attempt"]) >= 2
    finally:
        back.stop()


def test_a_delivered_notice_stays_pending_in_the_store_but_is_not_outstanding(
        world, container_factory):
    """What the fault suite mistook for lanes stuck after a SIGKILL: a notice delivered on its
    first attempt is stored ``pending`` with 0 attempts for good (the success path only inserts
    a receipt). Outstanding is ``outstanding()``: pending without a receipt. A killed and
    restarted service re-sends nothing delivered and delivers what comes next."""
    code = make_uscc()
    world.member(code, "mall-a")
    world.subscribe("mall-a")
    world.impose(restriction(code))
    wait_for(lambda: world.receiver.unique("/hooks/mall-a"), message="the first notice")
    wait_for(lambda: world.db.deliveries.count_documents({}) == 1, message="its receipt")
    stored = world.db.notices.find_one({})
    assert stored["delivery"]["state"] == "pending" and stored["delivery"]["attempts"] == 0
    assert world.status("mall-a") == "delivered"
    assert outstanding(world.db) == []

    world.container.kill()  # no orderly stop: what it held in memory is gone
    container_factory(NotificationsService, world.config).start()
    world.impose(restriction(code))
    wait_for(lambda: len(world.receiver.unique("/hooks/mall-a")) == 2,
             message="a notice made after the restart")
    wait_for(lambda: not outstanding(world.db), message="nothing outstanding")
    assert world.receiver.duplicates("/hooks/mall-a") == 0
    assert [n["status"] for n in world.notices("mall-a")] == ["delivered", "delivered"]
