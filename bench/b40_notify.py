"""Notices delivered per second to a local receiver, next to plain HTTP POSTs from this process.

All in one run, against one receiver (tests/notify_support.Receiver: a threaded HTTP server in
this process that verifies every signature):

1. baseline: N signed POSTs of a notice-sized body, one after another on one keep-alive
   session, from this process;
2. end to end: N ``RestrictionImposed`` events published to the notifications service (with
   the registry for memberships), each becoming a stored, signed notice POSTed to the
   receiver: first event published -> N-th distinct notice received;
3. redelivery: N stored notices that were dead-lettered (the receiver answered 500) are
   redelivered with one operator call: call -> N-th notice received, and from the moment
   the call returned (the courier alone: lanes, signing, POST, receipt).

Prints each rate and its ratio to the baseline. ``BENCH_NOTIFY_N`` (default 300) notices.
"""
from __future__ import annotations

import json
import os
import time
from datetime import datetime, timezone

import requests
from common import rate, report


from contracts.events import make_event
from services.notifications.signing import signature_header
from tests.factories import make_uscc
from tests.notify_support import NotifySystem, Receiver

N = int(os.environ.get("BENCH_NOTIFY_N", "300"))
MERCHANTS = 10
SECRET = "bench-webhook-secret-0123456789"
PLATFORM = "bench-mall"


def restriction(code: str, i: int, batch: str) -> dict:
    vid = f"FJAMR-350100/闽市监罚〔2026〕{batch}{i}号"
    return {"restriction_id": f"{vid}#PL-02", "uscc": code, "entity_name": "福州示例食品有限公司",
            "sector": "platforms", "measure_id": "PL-02",
            "action": "Restrict onboarding and lower the merchant's credit rating",
            "legal_basis": "E-Commerce Law art. 29", "department": "Online platforms",
            "memorandum": "MOU-FOOD-DRUG-2016",
            "effect": "inform", "subject": "entity", "bases": [],  # RestrictionImposed v2
            "source": {"violation_id": vid, "agency_code": "FJAMR-350100",
                       "document_number": f"闽市监罚〔2026〕{batch}{i}号", "category": "food_safety",
                       "severity": "serious"},
            "starts_at": datetime(2026, 4, 1, tzinfo=timezone.utc),
            "ends_at": datetime(2027, 4, 1, tzinfo=timezone.utc),
            "rule": "T-FD-1", "reason": "serious food safety violation"}


def wait_until(predicate, timeout: float, message: str) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return time.perf_counter()
        time.sleep(0.02)
    raise SystemExit(f"timed out waiting for {message}")


def plain_posts(receiver: Receiver, sample_body: bytes) -> float:
    path = "/plain"
    receiver.secrets[path] = SECRET
    session = requests.Session()
    start = time.perf_counter()
    for i in range(N):
        response = session.post(receiver.url(path), data=sample_body, headers={
            "Content-Type": "application/json", "X-Lianchen-Notice-Id": f"plain-{i}",
            "X-Lianchen-Signature": signature_header(SECRET, sample_body)}, timeout=10)
        response.raise_for_status()
    return rate(N, time.perf_counter() - start)


def main() -> None:
    quiet = {"NOTIFY_MAX_ATTEMPTS": "1", "NOTIFY_ALLOW_TARGETS": "127.0.0.0/8",  # its receiver
             "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING")}
    system = NotifySystem(services=("registry", "notifications"), extra_env=quiet).start()
    receiver = Receiver().start()
    try:
        hook = f"/hooks/{PLATFORM}"
        receiver.secrets[hook] = SECRET
        admin, platform = system.session(), system.session("platform", PLATFORM)
        codes = [make_uscc() for _ in range(MERCHANTS)]
        for code in codes:
            admin.put(system.url("registry", f"/v1/registry/entities/{code}"),
                      json={"name": "福州示例食品有限公司"}).raise_for_status()
            platform.post(system.url("registry", f"/v1/registry/entities/{code}/memberships"),
                          json={"platform_id": PLATFORM, "shop_id": "s-1"}).raise_for_status()
        platform.post(system.url("notifications", "/v1/subscriptions"), json={
            "kind": "platform", "platform_id": PLATFORM, "webhook_url": receiver.url(hook),
            "webhook_secret": SECRET}).raise_for_status()
        dispatch = system.dispatcher("restrictions")  # as restrictions's own broker user

        def publish(batch: str) -> None:
            for i in range(N):
                r = restriction(codes[i % MERCHANTS], i, batch)
                dispatch("restrictions", "RestrictionImposed", make_event(
                    "RestrictionImposed", r, producer="bench", correlation_id="bench",
                    event_id=f"{r['restriction_id']}:imposed"))

        # warm-up: one notice through the whole path (connections, caches)
        publish_one = restriction(codes[0], 0, "W")
        dispatch("restrictions", "RestrictionImposed", make_event(
            "RestrictionImposed", publish_one, producer="bench", correlation_id="bench",
            event_id=f"{publish_one['restriction_id']}:imposed"))
        wait_until(lambda: len(receiver.unique(hook)) == 1, 60, "the warm-up notice")
        sample = receiver.accepted(hook)[0].body

        baseline = plain_posts(receiver, sample)

        start = time.perf_counter()
        publish("E")
        published = time.perf_counter() - start
        done = wait_until(lambda: len(receiver.unique(hook)) >= 1 + N, 1800, "every notice")
        end_to_end = rate(N, done - start)

        receiver.behave[hook] = 500
        publish("D")

        def all_dead():
            letters = admin.get(system.url("notifications", "/v1/dead-notices"),
                                params={"subscriber": PLATFORM, "limit": 1000}).json()
            return len(letters["dead_notices"]) >= N

        wait_until(all_dead, 1800, "the notices to be dead-lettered")
        receiver.behave[hook] = "ok"
        start = time.perf_counter()
        answer = admin.post(system.url("notifications", "/v1/dead-notices:redeliver"),
                            json={"subscriber_id": PLATFORM}, timeout=600).json()
        returned = time.perf_counter()
        assert answer["redelivered"] == N, answer
        done = wait_until(lambda: len(receiver.unique(hook)) >= 1 + 2 * N, 1800,
                          "every redelivered notice")
        redelivery = rate(N, done - start)
        courier = rate(N, done - returned)

        report(f"notices delivered to a local receiver ({N} each, body {len(sample)} bytes)", [
            ("plain signed POSTs, one session (baseline)", baseline, "req/s"),
            ("end to end: event -> signed notice POSTed", end_to_end, "notices/s"),
            ("redelivery: operator call -> last notice", redelivery, "notices/s"),
            ("delivery alone: after the call returned", courier, "notices/s"),
        ], baseline="plain signed POSTs, one session (baseline)")
        print(f"  ({N} events published in {published:.2f} s; duplicates at the receiver: "
              f"{receiver.duplicates(hook)}; the notice path stores, signs and records a "
              f"receipt per notice)")
        print(json.dumps({"n": N, "baseline_per_s": round(baseline, 1),
                          "end_to_end_per_s": round(end_to_end, 1),
                          "redelivery_per_s": round(redelivery, 1),
                          "delivery_alone_per_s": round(courier, 1),
                          "ratio_end_to_end": round(end_to_end / baseline, 3),
                          "ratio_redelivery": round(redelivery / baseline, 3),
                          "ratio_delivery_alone": round(courier / baseline, 3)}))
    finally:
        receiver.stop()
        system.stop()


if __name__ == "__main__":
    main()
