"""One instance per service against two, side by side in one run (issue: scale out).

1. Intake: violations published over AMQP by an agency (publisher confirms) until all are
   stored with their event: the violations service alone, its instances competing for the
   intake queue.
2. Event handling: ViolationRecorded events (with their partition key, as the services
   publish them) for many entities, until the scoring service has recomputed every entity:
   per-entity shards, spread over the instances by the broker.
3. Gate-keeping lookups: wrk, two load generators of 32 connections each; with two instances
   each generator targets its own instance (what a load balancer does), with one both target
   it. GET /v1/entities/{uscc}/status for a restricted entity, next to the no-op /v1/ping.

This machine has two cores, shared by the broker, the store (FerretDB), the load generators
and the services: a second instance adds a process, not a core. Read the ratio as the share of
the work a single instance left on the table (waits on the store and the broker that another
process can fill), not as how the system scales on machines with cores to spare; the
per-core figures in docs/scaling.md divide by the cores really used.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

from common import rate, report

from kombu import Connection, Exchange, Producer

from contracts.events import make_event
from contracts.violation import ViolationSchema
from shared.agency_client import AgencyPublisher
from shared.shards import PARTITION_HEADER
from tests.factories import violation
from tests.system import System

INTAKE_N = int(os.environ.get("BENCH_SCALE_INTAKE_N", "1000"))
EVENTS_N = int(os.environ.get("BENCH_SCALE_EVENTS_N", "600"))
ENTITIES = int(os.environ.get("BENCH_SCALE_ENTITIES", "120"))
DURATION = os.environ.get("BENCH_WRK_DURATION", "10s")
QUIET = {"SHARD_REBALANCE_SECONDS": "2", "LOG_LEVEL": "WARNING"}


def balanced(system: System, service: str, timeout: float = 60.0) -> None:
    """Wait until every instance of ``service`` is active on some shard (rebalancing)."""
    if system.instances == 1:
        return
    from shared import broker_admin
    import requests
    base, auth = broker_admin.management_url()
    pids = {str(system.by_name[(service, i)].pid) for i in range(system.instances)}

    def spread():
        rows = requests.get(f"{base}/api/consumers/{system.vhost}", auth=auth, timeout=10).json()
        active = {r["consumer_tag"].split("|")[0].rsplit(".", 2)[1] for r in rows
                  if r["queue"]["name"].startswith(f"{service}.shard.") and r.get("active")}
        return pids <= active

    system.wait_for(spread, timeout=timeout, interval=1, message=f"{service} shards spread")


def intake(instances: int) -> float:
    system = System(instances=instances, services=("violations",), extra_env=QUIET).start(120)
    try:
        records = [violation(document_number=f"S{instances}-{i}") for i in range(INTAKE_N)]
        collection = system.db("violations").violations
        with AgencyPublisher(system.amqp_uri, system.key("agency", "FJAMR")) as agency:
            start = time.perf_counter()
            for record in records:
                agency.publish(record)
        system.wait_for(lambda: collection.count_documents({}) >= INTAKE_N, timeout=1200,
                        interval=0.5, message=f"{INTAKE_N} violations stored")
        return rate(INTAKE_N, time.perf_counter() - start)
    finally:
        system.stop()


def publish_events(system: System, count: int, tag: str, entities: int) -> None:
    """ViolationRecorded events as the violations service publishes them: partition key set."""
    codes = [violation()["uscc"] for _ in range(entities)]
    exchange = Exchange("violations.events", type="topic", durable=True)
    with Connection(system.amqp_uri) as connection:
        producer = Producer(connection.channel(), exchange=exchange, serializer="json")
        for i in range(count):
            record = ViolationSchema().load(violation(document_number=f"{tag}-{i}",
                                                      uscc=codes[i % entities]))
            event = make_event("ViolationRecorded", {
                "violation_id": f"{record['agency_code']}/{record['document_number']}",
                "version": 1, "status": "active", "record": record},
                producer="bench", correlation_id="bench")
            producer.publish(event, routing_key="ViolationRecorded", declare=[exchange],
                             headers={PARTITION_HEADER: record["uscc"]}, delivery_mode=2)


def events(instances: int) -> float:
    system = System(instances=instances, services=("scoring",), extra_env=QUIET).start(120)
    try:
        balanced(system, "scoring")
        scores = system.db("scoring").scores
        start = time.perf_counter()
        publish_events(system, EVENTS_N, f"E{instances}", ENTITIES)
        records = system.db("scoring").records

        def done():
            return sum(len(d["records"]) for d in records.find({}, {"records.version": 1})) \
                >= EVENTS_N and scores.count_documents({}) >= ENTITIES

        system.wait_for(done, timeout=1200, interval=0.5, message="every event scored")
        return rate(EVENTS_N, time.perf_counter() - start)
    finally:
        system.stop()


def wrk_pair(urls: list[str], key: str) -> dict:
    """Two wrk processes of 32 connections each, at once; requests per second summed."""
    def one(url):
        out = subprocess.run(["wrk", "-t1", "-c32", f"-d{DURATION}", "--latency",
                              "-H", f"Authorization: Bearer {key}", url],
                             capture_output=True, text=True, check=True).stdout
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
        p99 = re.search(r"\s99%\s+([\d.]+)(\w+)", out)
        scale = {"us": 0.001, "ms": 1, "s": 1000}[p99.group(2)]
        return rps, float(p99.group(1)) * scale

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(one, urls))
    return {"rps": sum(r for r, _ in results), "p99": max(p for _, p in results)}


def lookups(instances: int) -> tuple[dict, dict]:
    system = System(instances=instances, services=("restrictions",), extra_env=QUIET).start(120)
    try:
        balanced(system, "restrictions")
        publish_events(system, 40, f"L{instances}", 40)
        restrictions = system.db("restrictions").restrictions
        system.wait_for(lambda: len(restrictions.distinct("uscc")) >= 40, timeout=600,
                        interval=1, message="restrictions imposed")
        code = restrictions.find_one({})["uscc"]
        gatekeeper = system.session("gatekeeper", "bench-bank", rate=1e9)
        for i in range(instances):  # every instance's read model has it
            system.wait_for(lambda: not gatekeeper.get(system.url(
                "restrictions", f"/v1/entities/{code}/status", i)).json()["sectors"]
                ["market_access"]["may_pass"], timeout=60, message=f"instance {i} up to date")
        key = system.key("gatekeeper", "bench-bank", rate=1e9)
        targets = [i % instances for i in range(2)]
        noop = wrk_pair([system.url("restrictions", "/v1/ping", i) for i in targets], key)
        status = wrk_pair([system.url("restrictions", f"/v1/entities/{code}/status", i)
                           for i in targets], key)
        return noop, status
    finally:
        system.stop()


def main() -> None:
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: apt-get install -y wrk (make bench does it)")
    figures = {}
    for n in (1, 2):
        figures[n] = {"intake": intake(n), "events": events(n), "lookups": lookups(n)}
    report(f"intake over AMQP, violations service ({INTAKE_N} violations)", [
        ("1 instance", figures[1]["intake"], "rec/s"),
        ("2 instances (competing consumers)", figures[2]["intake"], "rec/s"),
    ], baseline="1 instance")
    report(f"event handling, scoring service ({EVENTS_N} events, {ENTITIES} entities)", [
        ("1 instance (all 12 shards)", figures[1]["events"], "evt/s"),
        ("2 instances (shards split by the broker)", figures[2]["events"], "evt/s"),
    ], baseline="1 instance (all 12 shards)")
    report("gate-keeping lookups, 2 x wrk -c32 (restricted entity, all sectors)", [
        ("no-op /v1/ping, 1 instance", figures[1]["lookups"][0]["rps"], "req/s"),
        ("no-op /v1/ping, 2 instances", figures[2]["lookups"][0]["rps"], "req/s"),
        ("status, 1 instance", figures[1]["lookups"][1]["rps"], "req/s"),
        ("status, 2 instances", figures[2]["lookups"][1]["rps"], "req/s"),
    ], baseline="status, 1 instance")
    print(f"  p99 status: 1 instance {figures[1]['lookups'][1]['p99']:.1f} ms, "
          f"2 instances {figures[2]['lookups'][1]['p99']:.1f} ms")
    print("""
  How to read these (2 cores for everything):
  - intake: one instance is bound by its own Python process (validation, one store insert and
    one confirmed publish per record); a second process takes the other core when the store
    and the broker leave it free, so the gain is at most ~2x and shrinks as FerretDB and
    RabbitMQ need the same cores.
  - events: per-entity shards let the broker give each instance its own entities; the scoring
    handler is mostly store round trips (read the entity's records, write them, write the
    score), so two processes overlap their waits. FerretDB's single SQLite writer caps it.
  - lookups: answered from the in-memory read model; each request costs Python CPU (auth,
    JSON, audit hand-off). wrk itself takes a share of the two cores, so two instances can
    only use what is left; on a machine with free cores the gain follows the core count.""")


if __name__ == "__main__":
    main()
