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
    with AgencyPublisher(system.agency_uri("FJAMR"), system.key("agency", "FJAMR")) as agency:
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


def _proc_stat(pid: int) -> tuple[str, int, float, float] | None:
    """``(command name, parent pid, own CPU s, CPU s of its exited children)`` of ``pid``."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    comm, rest = text[text.index("(") + 1:text.rindex(")")], text[text.rindex(")") + 2:]
    fields = rest.split()
    return (comm, int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICK,
            (int(fields[13]) + int(fields[14])) / _TICK)


def cpu_seconds(system, roots: dict[str, int] | None = None) -> dict[str, float]:
    """CPU time (user + system) used so far by each service instance of ``system`` (if any), by the
    broker and store processes on this machine, and by this process (the driver).

    ``roots`` (part name -> pid): count each part as the process tree below that pid, with
    the CPU of its exited children (PostgreSQL's closed backends), instead of every process
    of the machine with a broker's or store's command name."""
    out: dict[str, float] = {}
    for (service, i), process in (system.by_name.items() if system else ()):
        got = _proc_stat(process.pid)
        if got:
            out[f"{service}-{i}"] = got[2]
    table = {int(e.name): got for e in Path("/proc").iterdir()
             if e.name.isdigit() and (got := _proc_stat(int(e.name)))}
    if roots is None:
        for comm, _, used, _ in table.values():
            if comm in _PARTS:
                out[_PARTS[comm]] = out.get(_PARTS[comm], 0.0) + used
    else:
        part_of = {pid: name for name, pid in roots.items()}

        def part(pid: int) -> str | None:
            for _ in range(64):  # up the parent chain to a root, or to init
                if pid in part_of:
                    return part_of[pid]
                if pid not in table or pid <= 1:
                    return None
                pid = table[pid][1]
            return None

        for pid, (_, _, used, children) in table.items():
            name = part(pid)
            if name:
                out[name] = out.get(name, 0.0) + used + children
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
