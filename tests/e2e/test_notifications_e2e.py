"""Merchant clearance notices end to end: all services as processes, an agency publishing with
plain pika, one platform served by a receiver in this process (verifies signatures, counts
duplicates, misbehaves on demand), the other by examples/platform_receiver.py (verifies,
applies once, posts feedback)."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from urllib.parse import quote

import pytest
import requests

from services.notifications.signing import standard_headers
from shared.agency_client import AgencyPublisher
from tests.factories import violation
from tests.notify_support import NotifySystem, Receiver
from tests.system import ROOT, free_port

pytestmark = pytest.mark.e2e

FAST = {"NOTIFY_RETRY_BASE_MS": "300", "NOTIFY_RETRY_MAX_MS": "2000", "NOTIFY_MAX_ATTEMPTS": "10",
        "NOTIFY_TIMEOUT_MS": "3000", "NOTIFY_SUBSCRIPTION_TTL_MS": "0"}
SECRET_B = "mall-b-webhook-secret-0123"


@pytest.fixture(scope="module")
def world():
    system = NotifySystem(extra_env=FAST).start()
    receiver = Receiver().start()
    example = {"port": free_port(), "process": None}
    try:
        yield system, receiver, example
    finally:
        if example["process"] is not None:
            example["process"].terminate()
            example["process"].wait(timeout=10)
        receiver.stop()
        system.stop()


def start_example(system, example) -> None:
    env = {**os.environ, "LIANCHEN_KEY": system.key("platform", "mall-b"),
           "LIANCHEN_WEBHOOK_SECRET": SECRET_B}
    example["process"] = subprocess.Popen(
        [sys.executable, "examples/platform_receiver.py", str(example["port"]),
         "--notifications", system.url("notifications")],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    system.wait_for(lambda: _counters(example) is not None, message="the example receiver up")


def _counters(example):
    try:
        return requests.get(f"http://127.0.0.1:{example['port']}/", timeout=1).json()
    except requests.RequestException:
        return None


def closure(system, platform):
    rows = system.session("platform", platform).get(
        system.url("notifications", "/v1/closure")).json()["subscribers"]
    return rows[0] if rows else {}


def test_serious_violation_reaches_both_platforms_once_even_with_one_receiver_down(world):
    system, receiver, example = world
    body = violation(listing={"list": "abnormal_operations",  # one platform measure: AO-PLAT
                              "listed_at": "2026-04-02T00:00:00+08:00"})
    code = body["uscc"]
    regulator = system.session("regulator", "samr")
    assert regulator.put(system.url("registry", f"/v1/registry/entities/{code}"),
                         json={"name": body["entity_name"]}).status_code in (200, 201)
    receiver.secrets["/hooks/mall-a"] = "mall-a-webhook-secret-0123"
    hooks = {"mall-a": receiver.url("/hooks/mall-a"),
             "mall-b": f"http://127.0.0.1:{example['port']}/lianchen/notices"}  # down for now
    secrets = {"mall-a": receiver.secrets["/hooks/mall-a"], "mall-b": SECRET_B}
    for platform in ("mall-a", "mall-b"):
        session = system.session("platform", platform)
        assert session.post(system.url("registry", f"/v1/registry/entities/{code}/memberships"),
                            json={"platform_id": platform, "shop_id": f"s-{platform}"}).ok
        assert session.post(system.url("notifications", "/v1/subscriptions"), json={
            "kind": "platform", "platform_id": platform, "webhook_url": hooks[platform],
            "webhook_secret": secrets[platform]}).status_code == 201

    with AgencyPublisher(system.agency_uri("FJAMR"), system.key("agency", "FJAMR")) as agency:
        agency.publish(body, correlation_id="notify-e2e")

    got = system.wait_for(lambda: receiver.unique("/hooks/mall-a"), timeout=60,
                          message="the signed notice at mall-a")
    notice = next(iter(got.values())).json()
    assert notice["merchant"] == {"uscc": code, "name": body["entity_name"], "shop_id": "s-mall-a"}
    assert notice["measure"]["id"] == "AO-PLAT" and notice["correlation_id"] == "notify-e2e"
    assert notice["measure"]["effect"] == "inform"

    mall_b = system.session("platform", "mall-b")

    def b_notices():
        return mall_b.get(system.url("notifications", "/v1/notices"),
                          params={"subscriber": "mall-b"}).json()["notices"]

    failed = system.wait_for(lambda: [n for n in b_notices() if n["delivery"]["attempts"]],
                             timeout=60, message="a failed attempt at the down receiver")
    assert "connection failed" in failed[0]["delivery"]["last_error"]
    start_example(system, example)  # the receiver comes back
    system.wait_for(lambda: closure(system, "mall-b").get("applied") == 1, timeout=60,
                    message="mall-b applied the notice and fed back")
    # the receiver counts "applied" once its feedback POST has returned, so a moment after
    # the closure already shows it
    counters = system.wait_for(lambda: (c := _counters(example)) and c["applied"] and c,
                               timeout=10, message="the example receiver's applied counter")
    assert counters["received"] == 1 and counters["duplicates"] == 0 and counters["applied"] == 1
    [b] = b_notices()
    assert b["status"] == "delivered" and b["feedback"][0]["actions"] == ["rating_lowered"]
    assert len(receiver.accepted("/hooks/mall-a")) == 1  # one notice, never twice
    row = closure(system, "mall-b")
    assert (row["notices"], row["sent"], row["acknowledged"], row["applied"]) == (1, 1, 1, 1)


def test_the_example_receiver_refuses_a_tampered_or_replayed_notice(world):
    system, receiver, example = world
    if example["process"] is None:
        start_example(system, example)
    url = f"http://127.0.0.1:{example['port']}/lianchen/notices"
    body = b'{"kind":"imposed","notice_id":"ntc_forged"}'
    before = _counters(example)

    def signed(data: bytes, at: int) -> dict:
        return standard_headers([SECRET_B], "ntc_forged", data, at)

    tampered = requests.post(url, data=body.replace(b"imposed", b"lifted"),
                             headers=signed(body, int(time.time())))
    assert tampered.status_code == 401 and "No matching signature" in tampered.json()["error"]
    replayed = requests.post(url, data=body, headers=signed(body, int(time.time()) - 301))
    assert replayed.status_code == 401 and "too old" in replayed.json()["error"]
    unsigned = requests.post(url, data=body, headers={"webhook-id": "ntc_forged"})
    assert unsigned.status_code == 401 and "Missing required headers" in unsigned.json()["error"]
    after = _counters(example)
    assert after["refused"] == before["refused"] + 3 and after["received"] == before["received"]


def test_clearance_is_recognised_lifts_follow_impositions_and_dead_letters_are_redelivered(world):
    system, receiver, example = world
    if example["process"] is None:
        start_example(system, example)
    code = next(iter(receiver.unique("/hooks/mall-a").values())).json()["merchant"]["uscc"]
    body = violation(uscc=code)  # with the serious-violation listing: SL-PLAT
    failing = {"on": True}
    receiver.behave["/hooks/mall-a"] = lambda request: (
        500 if failing["on"] and request.kind in ("imposed", "lifted") else "ok")
    with AgencyPublisher(system.agency_uri("FJAMR"), system.key("agency", "FJAMR")) as agency:
        agency.publish(body)

    # mall-b (the example) clears the merchant on SL-PLAT (its own terms): mall-a is told (互认)
    recognised = system.wait_for(
        lambda: [r for r in receiver.unique("/hooks/mall-a").values()
                 if r.kind == "mutual_recognition"], timeout=60, message="the 互认 notice")
    assert recognised[0].json()["cleared_by"]["platform_id"] == "mall-b"

    agency = requests.Session()
    agency.headers["Authorization"] = f"Bearer {system.key('agency', 'FJAMR')}"
    revoked = agency.post(system.url("violations", "/v1/violations/{}/{}/revocation".format(
        body["agency_code"], quote(body["document_number"], safe=""))),
        json={"reason": "overturned on administrative review"})
    assert revoked.status_code in (200, 201), revoked.text

    admin = system.session()

    def dead():
        letters = admin.get(system.url("notifications", "/v1/dead-notices"),
                            params={"subscriber": "mall-a"}).json()["dead_notices"]
        return letters if len(letters) == 2 else None  # the imposition, its lift held behind

    letters = system.wait_for(dead, timeout=90, message="mall-a's notices dead-lettered")
    assert {d["kind"] for d in letters} == {"imposed", "lifted"}
    assert all("imposition" in d["reason"] for d in letters if d["kind"] == "lifted")
    assert not [r for r in receiver.accepted("/hooks/mall-a") if r.kind == "lifted"]

    failing["on"] = False
    cli = subprocess.run(
        [sys.executable, "-m", "shared.cli", "notices", "redeliver", "--subscriber", "mall-a"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={**os.environ, "LIANCHEN_KEY": system.key(),
             "LIANCHEN_NOTIFICATIONS_URL": system.url("notifications")})
    assert cli.returncode == 0 and "redelivering 2" in cli.stdout, cli.stdout + cli.stderr

    system.wait_for(lambda: len([r for r in receiver.unique("/hooks/mall-a").values()
                                 if r.kind == "lifted"]) == 1, timeout=60,
                    message="the lifts at mall-a")
    requests_seen = receiver.all("/hooks/mall-a")
    for lift in [r for r in requests_seen if r.kind == "lifted"]:
        restriction_id = lift.json()["restriction"]["restriction_id"]
        imposed_ok = [i for i, r in enumerate(requests_seen) if r.kind == "imposed"
                      and r.answer == 200
                      and r.json()["restriction"]["restriction_id"] == restriction_id]
        first_lift = min(i for i, r in enumerate(requests_seen) if r.kind == "lifted"
                         and r.json()["restriction"]["restriction_id"] == restriction_id)
        assert imposed_ok and imposed_ok[0] < first_lift  # never a lift before its imposition
    assert receiver.duplicates("/hooks/mall-a") == 0
    # mall-b applied the imposition and restored the lift: 3 applied in all
    system.wait_for(lambda: closure(system, "mall-b").get("applied") == 3, timeout=60,
                    message="mall-b's feedback on every notice")
    assert _counters(example)["duplicates"] == 0
