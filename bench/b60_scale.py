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

import multiprocessing
import os
import re
import shutil
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

os.environ.setdefault("LOG_LEVEL", "WARNING")  # pika's connection chatter stays out of the figures

from common import agency_intake_rate, rate, report  # noqa: E402

from kombu import Connection, Exchange, Producer  # noqa: E402

from contracts.events import make_event  # noqa: E402
from contracts.violation import ViolationSchema  # noqa: E402
from shared.shards import PARTITION_HEADER  # noqa: E402
from tests.factories import violation  # noqa: E402
from tests.system import System  # noqa: E402

STORE_N = int(os.environ.get("BENCH_SCALE_STORE_N", "2000"))
INTAKE_N = int(os.environ.get("BENCH_SCALE_INTAKE_N", "600"))
EVENTS_N = int(os.environ.get("BENCH_SCALE_EVENTS_N", "400"))
ROUNDS = int(os.environ.get("BENCH_SCALE_ROUNDS", "2"))
ENTITIES = int(os.environ.get("BENCH_SCALE_ENTITIES", "120"))
DURATION = os.environ.get("BENCH_WRK_DURATION", "10s")
QUIET = {"SHARD_REBALANCE_SECONDS": "2", "LOG_LEVEL": "WARNING"}


def _insert_many_one_by_one(args) -> None:
    import pymongo
    uri, db_name, prefix, count = args
    client = pymongo.MongoClient(uri)
    collection = client[db_name].c
    for i in range(count):
        collection.insert_one({"_id": f"{prefix}-{i}", "payload": "x" * 600})
    client.close()


def store_writers(writers: int) -> float:
    """Inserts per second into one collection by ``writers`` processes at once: what a second
    instance of a service can add when the store is the bottleneck."""
    import pymongo
    from tests.system import MONGO_URI
    db_name = f"bench{uuid.uuid4().hex[:6]}"
    per = STORE_N // writers
    try:
        with multiprocessing.get_context("spawn").Pool(writers) as pool:
            start = time.perf_counter()
            pool.map(_insert_many_one_by_one,
                     [(MONGO_URI, db_name, f"w{w}", per) for w in range(writers)])
            return rate(per * writers, time.perf_counter() - start)
    finally:
        pymongo.MongoClient(MONGO_URI).drop_database(db_name)


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
        return agency_intake_rate(system, INTAKE_N, f"S{instances}", timeout=1200)
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
        from services.scoring.scores import current
        start = time.perf_counter()
        publish_events(system, EVENTS_N, f"E{instances}", ENTITIES)
        records = system.db("scoring").records

        def done():
            return sum(len(d["violations"]) for d in records.find({}, {"violations.version": 1})) \
                >= EVENTS_N and current(system.db("scoring")).count_documents({}) >= ENTITIES

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
    # Rounds alternate 1, 2, 1, 2 ... and keep each configuration's best: the other work on
    # this shared machine comes and goes, and the best of a few is the closest to capacity.
    figures: dict[int, dict] = {1: {}, 2: {}}
    for round_ in range(ROUNDS):
        for n in (1, 2):
            measured = {"store": store_writers(n), "intake": intake(n), "events": events(n),
                        "lookups": lookups(n)}
            print(f"  round {round_ + 1}, {n} instance(s): " + ", ".join(
                f"{k} {v[1]['rps'] if k == 'lookups' else v:,.1f}" for k, v in measured.items()),
                flush=True)
            for key, value in measured.items():
                best = figures[n].get(key)
                score = (lambda v: v[1]["rps"]) if key == "lookups" else (lambda v: v)
                if best is None or score(value) > score(best):
                    figures[n][key] = value
    report(f"the store alone: insert_one of {STORE_N} documents of ~600 bytes", [
        ("1 writer process", figures[1]["store"], "ops/s"),
        ("2 writer processes at once", figures[2]["store"], "ops/s"),
    ], baseline="1 writer process")
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
  How to read these (two cores for everything: broker, store, load generators, services):
  - the store: FerretDB 1.x on SQLite takes one write at a time per database, so a second
    writer process adds little store capacity here. Every path below writes to it.
  - intake: per record the violations service writes the staged event, the record, removes
    the staged event and appends to its ledger: store-bound here. Two instances overlap
    their Python work (validation, publishing) with each other's store waits, no more.
  - events: per event scoring reads and writes the entity's records and score (plus outbox
    and ledger): store-bound; the shards split the entities between the instances, which
    keeps the result correct, not faster, while the one store is the limit.
  - lookups: the no-op shows the HTTP stack of one process (~1,000 req/s); a status answer
    is computed from memory but also hands an audit document and a ledger entry to the
    store (group-committed), and those writes bound it here. Two instances double the CPU
    for answers and halve nothing on the store side.
  On MongoDB (document-level concurrency, one replica set or more) the store stops being a
  single queue and instances add throughput until the cores or the shards run out; see
  docs/scaling.md for the per-core figures and the arithmetic.""")


if __name__ == "__main__":
    main()
