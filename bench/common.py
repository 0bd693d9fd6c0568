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
