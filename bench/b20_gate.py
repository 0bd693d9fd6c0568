"""Gate-keeping lookups and propagation, each next to its baseline in the same run.

1. Lookup throughput and p50/p99 with wrk at 64 connections, against GET /v1/ping on the same
   server (a no-op). Goal: >= 0.7 of the no-op throughput, p99 within 20 ms.
2. A batch of 1,000 codes: goal within 100 ms.
3. Propagation from violation accepted to restriction stored (what the status is computed
   from) at a steady 50 violations/s: goal p99 within 250 ms. With it, the CPU milliseconds
   each process spent per violation (services, broker, store), next to the same system's idle
   use: the pipeline's capacity on this machine is its cores divided by that total.
"""
from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import time

import requests
from common import cpu_seconds, report, report_cpu


from contracts.events import make_event
from contracts.violation import ViolationSchema
from shared.agency_client import AgencyPublisher
from tests.factories import make_uscc, violation
from tests.system import System

ENTITIES = int(os.environ.get("BENCH_GATE_ENTITIES", "200"))
DURATION = os.environ.get("BENCH_WRK_DURATION", "10s")


def wrk(url: str, key: str) -> dict:
    out = subprocess.run(["wrk", "-t2", "-c64", f"-d{DURATION}", "--latency",
                          "-H", f"Authorization: Bearer {key}", url],
                         capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = dict(re.findall(r"\s(50|99)%\s+([\d.]+\w+)", out))
    return {"rps": rps, "p50": _ms(lat["50"]), "p99": _ms(lat["99"])}


def _ms(text: str) -> float:
    value, unit = float(re.match(r"[\d.]+", text).group()), re.search(r"[a-z]+", text).group()
    return value * {"us": 0.001, "ms": 1, "s": 1000}[unit]


def preload(system: System) -> list[str]:
    dispatch = system.dispatcher("violations")  # as violations's own broker user
    codes = []
    for i in range(ENTITIES):
        record = ViolationSchema().load(violation(document_number=f"G-{i}"))
        codes.append(record["uscc"])
        vid = f"{record['agency_code']}/{record['document_number']}"
        dispatch("violations", "ViolationRecorded", make_event(
            "ViolationRecorded", {"violation_id": vid, "version": 1, "status": "active",
                                  "record": record}, producer="bench", correlation_id="bench"))
    restrictions = system.db("restrictions").restrictions
    system.wait_for(lambda: len(restrictions.distinct("uscc")) >= ENTITIES, timeout=600,
                    interval=1, message="preloaded restrictions")
    return codes


def lookups(system: System, codes: list[str]) -> None:
    key = system.key("gatekeeper", "bench-bank", rate=1e9)
    noop = wrk(system.url("restrictions", "/v1/ping"), key)
    status = wrk(system.url("restrictions", f"/v1/entities/{codes[0]}/status"), key)
    http = system.session("gatekeeper", "bench-bank", rate=1e9)
    report("gate-keeping lookup, wrk -c64 (restricted entity, all sectors)", [
        ("no-op GET /v1/ping (same server)", noop["rps"], "req/s"),
        ("GET /v1/entities/{uscc}/status", status["rps"], "req/s"),
    ], baseline="no-op GET /v1/ping (same server)")
    print(f"  latency no-op p50 {noop['p50']:.1f} ms p99 {noop['p99']:.1f} ms; "
          f"status p50 {status['p50']:.1f} ms p99 {status['p99']:.1f} ms "
          f"(goal: ratio >= 0.7, p99 <= 20 ms)")
    batch_times = []
    # 1,000 distinct codes: every preloaded (restricted) entity, the rest with no record
    others = [make_uscc() for _ in range(1000 - len(codes[:1000]))]
    body = {"codes": codes[:1000] + others}
    for _ in range(5):
        start = time.perf_counter()
        http.post(system.url("restrictions", "/v1/status:batch"), json=body,
                      timeout=120).raise_for_status()
        batch_times.append((time.perf_counter() - start) * 1000)
    single = []
    for code in codes[:50]:
        start = time.perf_counter()
        http.get(system.url("restrictions", f"/v1/entities/{code}/status"), timeout=30)
        single.append((time.perf_counter() - start) * 1000)
    report("batch of 1,000 codes vs one lookup (ms)", [
        ("one lookup, median", statistics.median(single), "ms"),
        ("batch of 1,000, median of 5", statistics.median(batch_times), "ms"),
    ], baseline="one lookup, median")
    print("  goal: batch within 100 ms")


def propagation(seconds: int = 20, per_second: int = 50) -> None:
    system = System().start()
    try:
        restrictions = system.db("restrictions").restrictions
        sent = {}
        idle_before, idle_started = cpu_seconds(system), time.monotonic()
        time.sleep(10)  # the baseline: what the system uses doing nothing (timers, heartbeats)
        idle = (sum(cpu_seconds(system).values()) - sum(idle_before.values())) / (
            time.monotonic() - idle_started)
        cpu_before, run_started = cpu_seconds(system), time.monotonic()
        with AgencyPublisher(system.agency_uri("FJAMR"), system.key("agency", "FJAMR")) as agency:
            start = time.time()
            for i in range(seconds * per_second):
                due = start + i / per_second
                time.sleep(max(0.0, due - time.time()))
                record = violation(document_number=f"P-{i}")
                agency.publish(record)
                sent[f"{record['agency_code']}/{record['document_number']}"] = time.time()
        system.wait_for(lambda: len(restrictions.distinct("source.violation_id")) >= len(sent),
                        timeout=1200, interval=2, message="all violations propagated")
        cpu_after, run_seconds = cpu_seconds(system), time.monotonic() - run_started
        first = {}
        for doc in restrictions.find({}, {"source.violation_id": 1, "imposed_at": 1}):
            vid = doc["source"]["violation_id"]
            at = doc["imposed_at"].timestamp()
            first[vid] = min(first.get(vid, at), at)
        delays = sorted((first[v] - sent[v]) * 1000 for v in sent)
        p50, p99 = delays[len(delays) // 2], delays[int(len(delays) * 0.99) - 1]
        print(f"\n== propagation at {per_second} violations/s for {seconds} s "
              f"(publish -> first restriction stored)\n  p50 {p50:,.0f} ms  p99 {p99:,.0f} ms  "
              f"max {delays[-1]:,.0f} ms   (goal: p99 <= 250 ms)")
        report_cpu(cpu_before, cpu_after, len(sent), "violation")
        idle_share = idle * run_seconds * 1000 / len(sent)
        print(f"  baseline, the same system idle: {idle * 1000:,.0f} ms CPU per second; over "
              f"this run's {run_seconds:,.0f} s that is {idle_share:,.1f} ms per violation of "
              f"the total above ({os.cpu_count()} cores here)")
    finally:
        system.stop()


if __name__ == "__main__":
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: apt-get install -y wrk (make bench does it)")
    gate = System(services=("restrictions",)).start()
    try:
        lookups(gate, preload(gate))
    finally:
        gate.stop()
    # The goal's rate, then a rate this machine's store sustains (for the latency itself).
    propagation(seconds=10, per_second=50)
    propagation(seconds=20, per_second=5)
