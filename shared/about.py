"""What a service runs: its code and the versions of the data its answers come from.

``GET /v1/about`` and the ``lianchen_build_info`` metric say it, so that an integrator can
tell which catalog, score model and working-day calendar an answer was decided under, and which
years of the calendar are still provisional (deadlines in them may move when the State Council
publishes the year's holidays).
"""
from __future__ import annotations

import os
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from rules import loader

ROOT = Path(__file__).resolve().parents[1]


@lru_cache(maxsize=1)
def code_version() -> dict:
    """The package version and, where known, the commit (``LIANCHEN_COMMIT``, set by the image
    build, else the checkout's ``.git``)."""
    try:
        package = version("lianchen")
    except PackageNotFoundError:
        package = "unknown"
    return {"version": package, "commit": os.environ.get("LIANCHEN_COMMIT") or _git_commit()}


def _git_commit() -> str | None:
    git = ROOT / ".git"
    try:
        if git.is_file():  # a worktree: "gitdir: <path>"
            git = Path(git.read_text(encoding="utf-8").split(":", 1)[1].strip())
        head = (git / "HEAD").read_text(encoding="utf-8").strip()
        if not head.startswith("ref: "):
            return head
        ref = head[5:]
        for base in (git, git.parent.parent if git.parent.name == "worktrees" else git):
            path = base / ref
            if path.is_file():
                return path.read_text(encoding="utf-8").strip()
            packed = base / "packed-refs"
            if packed.is_file():
                for line in packed.read_text(encoding="utf-8").splitlines():
                    if line.endswith(" " + ref):
                        return line.split(" ", 1)[0]
    except (OSError, IndexError):
        return None
    return None


def about(service: str, environ=None) -> dict:
    """The ``/v1/about`` document of ``service`` (catalog files as the services load them)."""
    catalogs = loader.load(environ)
    years = catalogs.calendar.years
    return {
        "service": service,
        "code": code_version(),
        "data": dict(sorted(catalogs.versions.items())),
        "catalog": catalogs.measures.version,
        "score_model": catalogs.score_model.version,
        "calendar": {
            "version": catalogs.calendar.version,
            "official_years": sorted(y for y, s in years.items() if s == "official"),
            "provisional_years": sorted(y for y, s in years.items() if s == "provisional"),
        },
    }


def build_info_labels(document: dict) -> dict[str, str]:
    """The ``lianchen_build_info`` labels for an ``about`` document."""
    return {
        "service": document["service"],
        "version": document["code"]["version"],
        "commit": document["code"]["commit"] or "",
        "catalog": document["catalog"],
        "score_model": document["score_model"],
        "calendar": document["calendar"]["version"],
        "provisional_years": ",".join(map(str, document["calendar"]["provisional_years"])),
    }
