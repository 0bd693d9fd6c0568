"""Shared bits for benchmarks: timing and printing figures side by side."""
from __future__ import annotations

import os
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


_TICK = os.sysconf("SC_CLK_TCK")
# Infrastructure processes by command name, summed per part (PostgreSQL runs one per connection).
_PARTS = {"beam.smp": "broker (RabbitMQ)", "ferretdb": "store (FerretDB)",
          "postgres": "store (PostgreSQL under FerretDB)", "mongod": "store (MongoDB)"}


def cpu_seconds(system) -> dict[str, float]:
    """CPU time (user + system) used so far by each service instance of ``system``, by the
    broker and store processes on this machine, and by this process (the driver)."""
    def read(pid: int) -> tuple[str, float] | None:
        try:
            text = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return None
        comm, rest = text[text.index("(") + 1:text.rindex(")")], text[text.rindex(")") + 2:]
        fields = rest.split()
        return comm, (int(fields[11]) + int(fields[12])) / _TICK

    out: dict[str, float] = {}
    for (service, i), process in system.by_name.items():
        got = read(process.pid)
        if got:
            out[f"{service}-{i}"] = got[1]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            got = read(int(entry.name))
            if got and got[0] in _PARTS:
                out[_PARTS[got[0]]] = out.get(_PARTS[got[0]], 0.0) + got[1]
    out["driver (this process)"] = sum(os.times()[:2])
    return out


def report_cpu(before: dict[str, float], after: dict[str, float], units: int, unit: str) -> None:
    """CPU milliseconds per ``unit`` for each part, between two ``cpu_seconds`` snapshots
    (a PostgreSQL backend that exited in between is not counted)."""
    used = {k: after[k] - before.get(k, 0.0) for k in after}
    total = sum(used.values()) or 1e-9
    print(f"  CPU per {unit} (ms), {units:,} {unit}s; total {total * 1000 / units:,.1f} ms:")
    for name, seconds in sorted(used.items(), key=lambda kv: -kv[1]):
        print(f"    {name:<40} {seconds * 1000 / units:>8,.1f}  ({seconds / total:.0%})")
