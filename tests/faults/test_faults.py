"""Fault injection: a burst of violations while every service is SIGKILLed and restarted in
turn, then the broker and then the store are restarted. After recovery nothing accepted is
lost and nothing is applied twice.

Runnable on its own: ``make test-faults`` (``FAULTS_VIOLATIONS`` sets the burst; the issue's
figure is 10,000, the default here is what this two-core machine clears in a few minutes).
It restarts the local RabbitMQ and FerretDB started by ``infra/local`` scripts: do not run it
next to other test runs.
"""
from __future__ import annotations

import os
import subprocess
import threading
import time
import uuid
from collections import Counter

import pika
import pytest

from contracts.violation import ViolationSchema
from services.notifications.delivery import outstanding
from rules.measures import Catalog
from services.scoring.scores import current as current_scores
from shared.agency_client import AgencyPublisher
from shared.broker_admin import queue_depths
from tests.factories import make_uscc, violation
from tests.notify_support import Receiver
from tests.system import ROOT, System

pytestmark = pytest.mark.faults
N = int(os.environ.get("FAULTS_VIOLATIONS", "600"))
ENTITIES = max(1, N // 6)
SETTLE_SECONDS = float(os.environ.get("FAULTS_SETTLE_SECONDS", max(3600, N * 0.6)))
PLATFORM = "fault-mall"


LOCAL_SERVERS = {"AMQP_URI": "amqp://guest:guest@127.0.0.1:5672/",
                 "MONGO_URI": "mongodb://127.0.0.1:27017/",
                 "RABBIT_MGMT_URL": "http://guest:guest@127.0.0.1:15672"}


def infra(script: str, action: str) -> None:
    """Stop or start a local server through its infra/local script. The scripts leave a server
    named by AMQP_URI / MONGO_URI alone (someone else's), and make exports the local defaults:
    drop those, refuse anything else."""
    env = dict(os.environ)
    for name, local in LOCAL_SERVERS.items():
        if env.get(name, local).rstrip("/") != local.rstrip("/"):
            pytest.fail(f"{name}={env[name]} is not the local server infra/local runs; the "
                        "fault suite cannot restart it (FAULTS_INFRA=0 skips the restarts)")
        env.pop(name, None)
    done = subprocess.run(["bash", f"infra/local/{script}.sh", action], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{script}.sh {action} failed:\n{done.stdout}\n{done.stderr}"


class Agency(threading.Thread):
    """Publishes the burst; on any broker trouble reconnects and re-publishes the message with
    the same message id until the broker confirms it (what a real agency client must do)."""

    def __init__(self, system: System, records: list[dict]):
        super().__init__(daemon=True)
        self.system, self.records = system, records
        self.key = system.key("agency", "FJAMR")
        self.confirmed: list[str] = []
        self.republished = 0

    def run(self):
        publisher = None
        for i, record in enumerate(self.records):
            message_id = f"fault-{i}"
            while True:
                try:
                    publisher = publisher or AgencyPublisher(self.system.amqp_uri, self.key)
                    publisher.publish(record, message_id=message_id)
                    self.confirmed.append(message_id)
                    break
                except Exception:  # noqa: BLE001 - broker down: back off, reconnect, again
                    self.republished += 1
                    try:
                        publisher and publisher.close()
                    except Exception:  # noqa: BLE001
                        pass
                    publisher = None
                    time.sleep(0.5)
            if i % 50 == 0:
                time.sleep(0.05)  # a burst, but spread over the fault schedule
        publisher.close()


def quiet(system: System) -> bool:
    """No message waiting or in flight anywhere, no staged outbox entry in any service."""
    try:
        depths = queue_depths(system.vhost)
    except Exception:  # noqa: BLE001 - broker still restarting
        return False
    # replies to a caller that was SIGKILLed wait in its reply queue until the queue expires
    # (x-expires): nobody will ever read them, and they are no work of the system's
    if any(v for k, v in depths.items() if not k.startswith(("dlq.", "rpc.reply-"))):
        return False
    if outstanding(system.db("notifications"), {"_id": 1}):  # pending without a receipt
        return False
    return all(system.db(s).outbox.count_documents({}) == 0 for s in system.services)


@pytest.mark.timeout(int(SETTLE_SECONDS + 2400))
def test_nothing_accepted_is_lost_and_nothing_applied_twice():
    system = System(extra_env={"RETRY_BASE_DELAY_MS": "500", "RETRY_MAX_ATTEMPTS": "12"}).start()
    receiver = Receiver().start()
    receiver.secrets["/hook"] = secret = uuid.uuid4().hex
    try:
        platform = system.session("platform", PLATFORM)
        regulator = system.session("regulator", "samr")
        codes = [make_uscc("350100") for _ in range(ENTITIES)]
        members = set(codes[::2])
        for code in members:
            assert regulator.put(system.url("registry", f"/v1/registry/entities/{code}"),
                                 json={"name": f"merchant {code}"}).status_code in (200, 201)
            assert platform.post(system.url("registry", f"/v1/registry/entities/{code}/memberships"),
                                 json={"platform_id": PLATFORM, "shop_id": code[-6:]}).ok
        assert platform.post(system.url("notifications", "/v1/subscriptions"), json={
            "subscriber_id": PLATFORM, "kind": "platform", "platform_id": PLATFORM,
            "webhook_url": receiver.url("/hook"), "webhook_secret": secret}).ok
        severities = ["serious", "general", "minor"]
        records = [violation(uscc=codes[i % ENTITIES], document_number=f"F-{uuid.uuid4().hex[:6]}-{i}",
                             severity=severities[i % 3], first_offence=False)
                   for i in range(N)]

        agency = Agency(system, records)
        started = time.monotonic()
        agency.start()
        schedule = []
        for service in system.services:
            time.sleep(2)
            system.kill(service)
            time.sleep(1)
            # start-up reads the store (read model, catalog orphan check): slow mid-burst here
            system.restart(service, timeout=300)
            schedule.append(f"SIGKILL+restart {service}")
            print(f"  [{time.monotonic() - started:5.0f} s] {schedule[-1]}; "
                  f"{len(agency.confirmed)} published", flush=True)
        if os.environ.get("FAULTS_INFRA", "1") == "1":  # 0: only while developing next to others
            infra("rabbitmq", "stop")
            time.sleep(2)
            infra("rabbitmq", "start")
            schedule.append("restart RabbitMQ")
            time.sleep(3)
            infra("ferretdb", "stop")
            time.sleep(2)
            infra("ferretdb", "start")
            schedule.append("restart store")
        agency.join(timeout=1800)
        assert not agency.is_alive(), "the agency could not publish its burst"

        # about 3 violations/s end to end on a two-core machine: 10,000 take over an hour
        deadline = time.monotonic() + SETTLE_SECONDS
        calm = 0
        while calm < 3 and time.monotonic() < deadline:
            assert not system.dead(), f"a service process exited: {system.dead()}"
            calm = calm + 1 if quiet(system) else 0
            time.sleep(3)
            if int(time.monotonic() - started) % 30 < 3:
                print(f"  [{time.monotonic() - started:5.0f} s] settling: "
                      f"{system.db('restrictions').restrictions.estimated_document_count()} "
                      f"restrictions", flush=True)
        assert calm >= 3, "the system did not settle"
        elapsed = time.monotonic() - started

        # -- violations: every accepted one recorded exactly once ---------------------------
        keys = {f"{r['agency_code']}/{r['document_number']}": r for r in records}
        stored = {d["_id"]: d for d in system.db("violations").violations.find({}, {"record": 1})}
        lost_violations = set(keys) - set(stored)
        # -- restrictions: every measure the catalog derives, once ----------------------------
        catalog = Catalog.load()
        classes = {d["_id"]: d.get("risk_class") for d in current_scores(
            system.db("scoring")).find({}, {"risk_class": 1})}
        expected = {(vid, m["measure"].id)
                    for vid, r in keys.items()
                    for m in catalog.decide(ViolationSchema().load(r),
                                            classes.get(r["uscc"])).entity_measures}
        found = Counter((d["source"]["violation_id"], d["measure_id"])
                        for d in system.db("restrictions").restrictions.find(
                            {"lifted_at": None}, {"source.violation_id": 1, "measure_id": 1}))
        lost_restrictions = expected - set(found)
        doubled_restrictions = [k for k, n in found.items() if n > 1]
        extra_restrictions = set(found) - expected
        # -- scoring: each entity's facts hold each of its violations once --------------------
        scored = Counter(r["violation_id"] for d in system.db("scoring").records.find({})
                         for r in d.get("violations", []))
        lost_scores = set(keys) - set(scored)
        doubled_scores = [k for k, n in scored.items() if n > 1]
        # -- notices: every platform-sector restriction of a member delivered, applied once ----
        platform_restrictions = {d["_id"] for d in system.db("restrictions").restrictions.find(
            {"sector": "platforms"}, {"uscc": 1}) if d["uscc"] in members}
        applied = receiver.unique("/hook")  # what the platform applies: one per notice id
        imposed = Counter(r.json()["restriction"]["restriction_id"] for r in applied.values()
                          if r.kind == "imposed")
        lost_notices = platform_restrictions - set(imposed)
        doubled_notices = [k for k, n in imposed.items() if n > 1]  # two ids for one imposition
        redelivered = receiver.duplicates("/hook")
        dead = {k: v for k, v in queue_depths(system.vhost).items() if k.startswith("dlq.") and v}

        print(f"\n== fault injection: {N} violations over {ENTITIES} entities, "
              f"{elapsed:,.0f} s to settle\n   faults: {'; '.join(schedule)}\n"
              f"   agency re-publications after broker errors: {agency.republished}\n"
              f"   violations: accepted {len(agency.confirmed)}, recorded {len(stored)}, "
              f"lost {len(lost_violations)}\n"
              f"   restrictions: expected {len(expected)}, stored {sum(found.values())}, "
              f"lost {len(lost_restrictions)}, doubled {len(doubled_restrictions)}, "
              f"unexpected {len(extra_restrictions)}\n"
              f"   scoring facts: lost {len(lost_scores)}, doubled {len(doubled_scores)}\n"
              f"   platform notices: expected {len(platform_restrictions)}, applied "
              f"{sum(imposed.values())}, lost {len(lost_notices)}, applied twice "
              f"{len(doubled_notices)}, redelivered (deduplicated by the receiver) "
              f"{redelivered}\n   dead letters: {dead or 'none'}")
        assert len(agency.confirmed) == N
        assert not lost_violations and len(stored) == N
        assert not lost_restrictions and not doubled_restrictions and not extra_restrictions
        assert not lost_scores and not doubled_scores
        assert not lost_notices and not doubled_notices
        assert not dead
    finally:
        receiver.stop()
        system.stop()
