"""One loader for every file in ``catalog/``: each validated at start, against the versions in
force (``catalog/versions.json``, the one place that says which version of each file is in
force).

``load()`` reads and validates all of them, whichever a service uses, and raises
``InvalidCatalogFiles`` (an ``ExceptionGroup``: one exception per file, each naming every
problem of its file) when anything is wrong: a service that calls it at import refuses to
start and says why. A file may be replaced by an environment variable (``CATALOG_PATH``,
``SCORE_MODEL_PATH``, ...; relative paths are read from the project root); the replacement is
validated the same way and must carry the version in force.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from rules.calendar import WorkCalendar
from rules.inspections import Scope
from rules.jurisdiction import Jurisdictions
from rules.measures import Catalog
from rules.periods import Periods
from rules.personal_data import Retention
from rules.repair import Rules
from rules.score_model import ScoreModel
from rules.versions import History

ROOT = Path(__file__).resolve().parents[1]
CATALOG_DIR = ROOT / "catalog"
MANIFEST = "versions.json"
# file in catalog/ -> (attribute of Catalogs, environment variable that may replace it)
FILES = {
    "periods.json": ("periods", "PERIODS_PATH"),
    "measures.json": ("measures", "CATALOG_PATH"),
    "score_model.json": ("score_model", "SCORE_MODEL_PATH"),
    "repair.json": ("repair", "REPAIR_RULES_PATH"),
    "calendar.json": ("calendar", "CALENDAR_PATH"),
    "agencies.json": ("agencies", "AGENCIES_PATH"),
    "regions.json": ("regions", "REGIONS_PATH"),
    "personal_data.json": ("personal_data", "PERSONAL_DATA_PATH"),
}


class CatalogFileProblems(ValueError):
    """Problems of one file that its own loader does not see (manifest, versions, files that
    must agree with each other)."""

    def __init__(self, source: str, problems: list[str]):
        super().__init__(f"{source}:\n  - " + "\n  - ".join(problems))
        self.problems = problems


class InvalidCatalogFiles(ExceptionGroup):  # noqa: N818 - named like the other Invalid* errors
    """Every file of ``catalog/`` that was refused, one exception each."""

    def __new__(cls, errors: list[Exception]):
        lines = "\n  ".join(_problems(errors))
        return super().__new__(cls, f"catalog refused, the service does not start:\n  {lines}",
                               errors)

    def derive(self, errors):
        return InvalidCatalogFiles(list(errors))

    @property
    def problems(self) -> list[str]:
        """``file: problem``, every problem of every refused file."""
        return _problems(self.exceptions)


def _problems(errors) -> list[str]:
    return [f"{getattr(error, 'file', '?')}: {problem}" for error in errors
            for problem in getattr(error, "problems", None) or [str(error)]]


@dataclass(frozen=True)
class Catalogs:
    periods: Periods
    measures: Catalog
    score_model: ScoreModel
    repair: Rules
    calendar: WorkCalendar
    agencies: Jurisdictions
    regions: Scope
    personal_data: Retention
    versions: dict[str, str] = field(default_factory=dict)  # file -> version in force
    history: History | None = None  # the measure catalog versions over time (rules.versions)
    paths: dict[str, str] = field(default_factory=dict)  # file -> path read


def paths(environ=None) -> dict[str, Path]:
    """The path read for every file (its environment variable, else ``catalog/<file>``)."""
    environ = os.environ if environ is None else environ
    out = {}
    for name, (_, variable) in FILES.items():
        value = environ.get(variable)
        path = Path(value) if value else CATALOG_DIR / name
        out[name] = path if path.is_absolute() else ROOT / path
    return out


def load(environ=None) -> Catalogs:
    """Every catalog file, validated; raises ``InvalidCatalogFiles`` naming each problem."""
    chosen = paths(environ)
    return _load(tuple(sorted((name, str(path)) for name, path in chosen.items())))


@lru_cache(maxsize=8)
def _load(chosen: tuple[tuple[str, str], ...]) -> Catalogs:
    files = {name: Path(path) for name, path in chosen}
    errors: list[Exception] = []

    def refuse(name: str, error: Exception) -> None:
        error.file = name  # which file, for InvalidCatalogFiles.problems
        errors.append(error)

    in_force = _manifest(refuse)
    loaded: dict[str, object] = {}
    periods = calendar = None
    try:  # first: the periods count the publication deadline in working days
        calendar = loaded["calendar.json"] = WorkCalendar.load(files["calendar.json"])
    except Exception as exc:  # noqa: BLE001
        refuse("calendar.json", exc)
    try:
        periods = loaded["periods.json"] = Periods.load(files["periods.json"], calendar)
    except Exception as exc:  # noqa: BLE001
        refuse("periods.json", exc)
    builders = {
        "measures.json": lambda path: Catalog.load(path, periods),
        "score_model.json": lambda path: ScoreModel.load(path, periods),
        "repair.json": lambda path: Rules.load(path, periods),
        "agencies.json": Jurisdictions.load,
        "regions.json": Scope.load,
        "personal_data.json": Retention.load,
    }
    for name, build in builders.items():
        if periods is None and name in ("measures.json", "score_model.json", "repair.json"):
            continue  # they count on the periods: refused above already
        try:
            loaded[name] = build(files[name])
        except Exception as exc:  # noqa: BLE001 - whatever a loader refuses is the file's fault
            refuse(name, exc)
    versions = {name: getattr(rules, "version", "") for name, rules in loaded.items()}
    for name, version in versions.items():
        wanted = in_force.get(name)
        if wanted is not None and version != wanted:
            refuse(name, CatalogFileProblems(str(files[name]), [
                f"version {version!r} is not the version in force {wanted!r} "
                f"(catalog/{MANIFEST}); change both together"]))
    if "repair.json" in loaded and periods is not None:
        months = periods.listing_months("serious_violation")
        earliest = loaded["repair.json"].repair["serious_list"]["earliest_months"]
        if months is not None and earliest >= months:
            refuse("repair.json", CatalogFileProblems(str(files["repair.json"]), [
                f"repair.serious_list.earliest_months {earliest} is not within the serious "
                f"violation listing of {months} months (periods.json)"]))
    history = None
    try:
        history = History.from_manifest(json.loads((CATALOG_DIR / MANIFEST).read_text(
            encoding="utf-8")))
    except Exception as exc:  # noqa: BLE001 - unreadable manifest: refused by _manifest too
        refuse(MANIFEST, exc)
    if history is not None and "measures.json" in loaded:
        measures = loaded["measures.json"]
        problems = history.check(measures.version, measures.legal_review, measures.effective_from)
        if problems:
            refuse(MANIFEST, CatalogFileProblems(str(CATALOG_DIR / MANIFEST), problems))
    if "repair.json" in loaded and "agencies.json" in loaded:
        known = loaded["agencies.json"].agencies
        unknown = [code for spec in loaded["repair.json"].repair.values()
                   for code in spec.get("market_regulators") or () if code not in known]
        if unknown:
            refuse("repair.json", CatalogFileProblems(str(files["repair.json"]), [
                f"market_regulators: unknown agency {code!r} (agencies.json)" for code in unknown]))
    if errors:
        raise InvalidCatalogFiles(errors)
    return Catalogs(**{FILES[name][0]: rules for name, rules in loaded.items()},
                    versions=versions, history=history, paths={name: str(path) for name, path in files.items()})


def _manifest(refuse) -> dict[str, str]:
    path = CATALOG_DIR / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        listed = data["files"]
        if not isinstance(listed, dict):
            raise TypeError("'files' must be an object {file: version}")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        refuse(MANIFEST, CatalogFileProblems(str(path), [f"cannot read the versions in force: "
                                                         f"{exc}"]))
        return {}
    problems = [f"{name}: no version in force" for name in FILES if not listed.get(name)]
    problems += [f"{name}: listed, but no rule reads it" for name in sorted(set(listed) - set(FILES))]
    present = {p.name for p in CATALOG_DIR.glob("*.json")} - {MANIFEST}
    problems += [f"catalog/{name}: not listed here, so never validated: list it or remove it"
                 for name in sorted(present - set(listed))]
    if problems:
        refuse(MANIFEST, CatalogFileProblems(str(path), problems))
    return {name: version for name, version in listed.items() if name in FILES}
