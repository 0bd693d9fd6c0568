"""Shared bits for benchmarks: timing and printing figures side by side."""
from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - start, result


def report(title: str, rows: list[tuple[str, float, str]], baseline: str | None = None) -> None:
    print(f"\n== {title}")
    base = next((v for name, v, _ in rows if name == baseline), None)
    for name, value, unit in rows:
        ratio = f"  ratio to {baseline}: {value / base:.2f}" if base and name != baseline else ""
        print(f"  {name:<44} {value:>12,.1f} {unit}{ratio}")


def agency_intake_rate(system, count: int, tag: str, timeout: float = 900) -> float:
    """Violations/s from the first publish over AMQP (agency key, confirms) until ``count``
    are stored by the violations service of ``system``."""
    from shared.agency_client import AgencyPublisher
    from tests.factories import violation

    records = [violation(document_number=f"{tag}-{i}") for i in range(count)]
    collection = system.db("violations").violations
    with AgencyPublisher(system.amqp_uri, system.key("agency", "FJAMR")) as agency:
        start = time.perf_counter()
        for record in records:
            agency.publish(record)
    system.wait_for(lambda: collection.count_documents({}) >= count, timeout=timeout,
                    interval=0.5, message=f"{count} violations stored")
    return rate(count, time.perf_counter() - start)
