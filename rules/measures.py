"""The measure catalog (data in ``catalog/measures.json``) and the decision it gives.

Pure domain code: no broker, no store. ``Catalog.load`` refuses an invalid file with every
problem named; ``Catalog.decide`` turns the facts of one violation into measures (or into soft
supervision tools under the proportionality rule), recording which rules fired and why, so the
same facts always give the same outcome.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from rules.periods import DURATION_KINDS, Periods
from rules.vocabulary import CATEGORIES, LISTS, PENALTY_TYPES, RISK_CLASSES, SECTORS, SEVERITIES

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PATH = ROOT / "catalog" / "measures.json"
CONDITIONS = {
    "categories": CATEGORIES,
    "severities": SEVERITIES,
    "penalty_types": PENALTY_TYPES,
    "listings": LISTS,
    "risk_classes": RISK_CLASSES,
}


class InvalidCatalog(ValueError):
    def __init__(self, problems: list[str]):
        super().__init__("invalid measure catalog:\n  - " + "\n  - ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Measure:
    id: str
    sector: str
    action: str
    legal_basis: str
    department: str
    duration: dict


@dataclass(frozen=True)
class Trigger:
    id: str
    memorandum: str
    description: str
    when: dict
    measures: tuple[str, ...]

    def matches(self, facts: dict) -> bool:
        return all(_holds(key, values, facts) for key, values in self.when.items())


@dataclass
class Decision:
    """What the catalog says for one violation: measures with windows, or soft tools."""

    measures: list[dict] = field(default_factory=list)
    soft_tools: list[str] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)
    reason: str = ""


def _holds(key: str, values, facts: dict) -> bool:
    if key == "penalty_types":
        return bool(set(values) & set(facts.get("penalty_types", ())))
    fact = {"categories": "category", "severities": "severity", "listings": "listing",
            "risk_classes": "risk_class"}[key]
    return facts.get(fact) in values


class Catalog:
    def __init__(self, version: str, measures: dict[str, Measure], triggers: list[Trigger],
                 proportionality: dict, periods: Periods | None = None):
        self.version = version
        self.periods = periods or Periods.shipped()
        self.measures = measures
        self.triggers = triggers
        self.proportionality = proportionality

    @classmethod
    def load(cls, path: str | Path = DEFAULT_PATH, periods: Periods | None = None) -> "Catalog":
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InvalidCatalog([f"{path}: cannot read JSON: {exc}"]) from exc
        return cls.from_data(data, periods)

    @classmethod
    def from_data(cls, data: dict, periods: Periods | None = None) -> "Catalog":
        problems: list[str] = []
        if not data.get("version"):
            problems.append("catalog has no version")
        measures: dict[str, Measure] = {}
        for raw in data.get("measures", []):
            mid = raw.get("id") or "(measure without id)"
            if mid in measures:
                problems.append(f"measure {mid}: duplicate id")
            if raw.get("sector") not in SECTORS:
                problems.append(f"measure {mid}: unknown sector {raw.get('sector')!r} "
                                f"(known: {', '.join(SECTORS)})")
            for attr in ("action", "legal_basis", "department"):
                if not str(raw.get(attr) or "").strip():
                    problems.append(f"measure {mid}: no {attr.replace('_', ' ')}")
            duration = raw.get("duration") or {}
            if duration.get("kind") not in DURATION_KINDS:
                problems.append(f"measure {mid}: duration kind must be one of {DURATION_KINDS}")
            elif duration["kind"] == "fixed_months" and not (
                    isinstance(duration.get("months"), int) and duration["months"] > 0):
                problems.append(f"measure {mid}: fixed_months needs a positive whole 'months'")
            measures[mid] = Measure(mid, raw.get("sector"), raw.get("action"),
                                    raw.get("legal_basis"), raw.get("department"), duration)
        triggers: list[Trigger] = []
        seen_triggers: set[str] = set()
        for memo in data.get("memoranda", []):
            memo_id = memo.get("id") or "(memorandum without id)"
            for raw in memo.get("triggers", []):
                tid = raw.get("id") or "(trigger without id)"
                if tid in seen_triggers:
                    problems.append(f"trigger {tid}: duplicate id")
                seen_triggers.add(tid)
                when = raw.get("when") or {}
                if not when:
                    problems.append(f"trigger {tid}: no conditions (it would match every violation)")
                for key, values in when.items():
                    if key not in CONDITIONS:
                        problems.append(f"trigger {tid}: unknown condition {key!r}")
                        continue
                    unknown = [v for v in values if v not in CONDITIONS[key]] if isinstance(values, list) else [values]
                    if not values or unknown:
                        problems.append(f"trigger {tid}: {key} {unknown or '[]'} can never match")
                for mid in raw.get("measures", []):
                    if mid not in measures:
                        problems.append(f"trigger {tid}: unknown measure {mid!r}")
                if not raw.get("measures"):
                    problems.append(f"trigger {tid}: names no measure")
                triggers.append(Trigger(tid, memo_id, raw.get("description", ""), when,
                                        tuple(raw.get("measures", ()))))
        rule = data.get("proportionality") or {}
        if not rule.get("soft_tools") or not rule.get("legal_basis"):
            problems.append("proportionality rule needs soft_tools and legal_basis")
        if problems:
            raise InvalidCatalog(problems)
        return cls(data["version"], measures, triggers, rule, periods)

    def decide(self, record: dict, risk_class: str | None = None) -> Decision:
        """The measures one violation triggers. ``record`` is a loaded ViolationSchema dict."""
        facts = {
            "category": record["category"],
            "severity": record["severity"],
            "penalty_types": [p["type"] for p in record.get("penalties", ())],
            "listing": (record.get("listing") or {}).get("list"),
            "risk_class": risk_class,
        }
        rule = self.proportionality
        if record["severity"] in rule.get("severities", ()) and not facts["listing"] and any(
                record.get(flag) for flag in rule.get("when_any", ())):
            flags = [flag for flag in rule["when_any"] if record.get(flag)]
            return Decision(soft_tools=list(rule["soft_tools"]), rules=[rule["rule"]],
                            reason=f"{record['severity']} violation, {' and '.join(flags)}: "
                                   f"soft tools only ({rule['legal_basis']})")
        decision = Decision()
        chosen: dict[str, Trigger] = {}
        for trigger in self.triggers:
            if trigger.matches(facts):
                decision.rules.append(trigger.id)
                for mid in trigger.measures:
                    chosen.setdefault(mid, trigger)  # first trigger in catalog order names it
        for mid in sorted(chosen):
            measure, trigger = self.measures[mid], chosen[mid]
            starts, ends = self.window(measure, record)
            decision.measures.append({
                "measure": measure, "trigger": trigger, "starts_at": starts, "ends_at": ends,
                "reason": f"{trigger.id} ({trigger.description}) under {trigger.memorandum}",
            })
        decision.reason = ("triggers " + ", ".join(decision.rules)) if decision.rules else \
            "no trigger in the catalog matches these facts"
        return decision

    def window(self, measure: Measure, record: dict) -> tuple[datetime, datetime | None]:
        """The measure's ``[start, end)`` for this record (``Periods.measure_window``)."""
        return self.periods.measure_window(measure.duration, record)


def orphans(catalog: Catalog, active_measure_ids) -> list[str]:
    """Problems when active restrictions name measures the catalog no longer has."""
    missing = sorted(set(active_measure_ids) - set(catalog.measures))
    return [f"measure {mid} is gone from catalog {catalog.version} but active restrictions "
            f"still apply it; keep it until they end or are lifted" for mid in missing]

