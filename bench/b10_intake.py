"""Intake throughput through the AMQP path (publisher confirms, validated, stored, event
published) next to raw pika publishing to a plain durable queue, in the same run.

Goal (issue: violation intake): accepted violations per second at least half the raw rate.
"""
from __future__ import annotations

import os

from common import agency_intake_rate, report

from b00_broker_store import broker_figures
from tests.system import System

N = int(os.environ.get("BENCH_INTAKE_N", "1500"))


def intake_rate() -> float:
    system = System(services=("violations",)).start()
    try:
        return agency_intake_rate(system, N, "B")
    finally:
        system.stop()


if __name__ == "__main__":
    raw = dict((name, value) for name, value, _ in broker_figures())
    accepted = intake_rate()
    report(f"intake through AMQP ({N} violations)", [
        ("raw pika publish, durable queue, confirms",
         raw["raw pika publish, durable queue, confirms"], "msg/s"),
        ("accepted violations (AMQP, stored + event)", accepted, "rec/s"),
    ], baseline="raw pika publish, durable queue, confirms")
    print("  goal: ratio >= 0.5")
