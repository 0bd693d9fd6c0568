"""Credit score model (data in ``catalog/score_model.json``): score, class and explanation.

Pure domain code. A score is a function of an entity's facts (its violation records, the credit
repairs granted on them, its positive records) and a calendar day (China Standard Time), so
recomputing it is always safe and gives the same answer on the same day. Every score comes with
its explanation: contributions whose points add up exactly to the score (decimal arithmetic).

The model is data and is validated when loaded: a file with missing or overlapping class
thresholds, a negative weight, an unknown category, penalty type, list or class is refused with
every problem named (the scoring service then refuses to start).

Rules:

- each active violation record deducts ``severity deduction x category weight + penalty
  deductions + listing deduction``, fading linearly, day by day, over the record's publicity
  window (``rules.periods``: 3 months for a warning, public criticism or small fine; 3 years
  otherwise, longer if a suspension or ban runs longer): on the decision day the full
  deduction, on the day the window ends nothing;
- a credit repair (``RecordRepaired``) stops what it repairs from its decision day: scope
  ``publicity`` every deduction of the record (and any class it forced), scope
  ``serious_list`` what the serious violation listing adds (its deduction and the forced
  class) while the penalty's own deductions go on fading (as restrictions lifts what the
  listing alone triggered);
- positive records (honours, commitments fulfilled, ...) add points while valid, at most
  ``positive_records.max_total`` together;
- the score stays within ``[floor, base + max_total]`` (an adjustment contribution says so);
- thresholds map the score to A / B / C / D; an entity on the serious violation list (listed,
  its listing window not over (``rules.periods``), not repaired) is in the class the list
  forces (D) regardless of its score.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from rules.errors import InvalidRulesFile
from rules.periods import CHINA_TZ, Periods, add_months, day_of, today  # noqa: F401 (re-exported)
from rules.vocabulary import CATEGORIES, LISTS, PENALTY_TYPES, RISK_CLASSES, SEVERITIES

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PATH = ROOT / "catalog" / "score_model.json"
CST = CHINA_TZ
SCOPES = ("publicity", "serious_list")
REQUIRED_KEYS = ("version", "base", "severity_deduction", "thresholds")
KNOWN_KEYS = {
    "version", "comment", "base", "floor", "score_decimals", "severity_deduction",
    "category_weight", "default_category_weight", "penalty_deduction", "listing_deduction",
    "listing_forces_class", "positive_records", "thresholds",
}


class InvalidScoreModel(InvalidRulesFile):
    source = "score model"


@dataclass
class Score:
    score: float
    risk_class: str
    class_reason: str
    base: float
    contributions: list[dict] = field(default_factory=list)
    model_version: str = ""
    day: date | None = None

    def summary(self) -> tuple[float, str]:
        return self.score, self.risk_class


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class ScoreModel:
    def __init__(self, data: dict, periods: Periods | None = None):
        self.data = data
        self.periods = periods or Periods.shipped()
        self.version: str = data["version"]
        self.base = Decimal(str(data["base"]))
        self.floor = Decimal(str(data.get("floor", 0)))
        self.quantum = Decimal(1).scaleb(-int(data.get("score_decimals", 1)))
        self.severity = {k: Decimal(str(v)) for k, v in data["severity_deduction"].items()}
        self.weights = {k: Decimal(str(v)) for k, v in data.get("category_weight", {}).items()}
        self.default_weight = Decimal(str(data.get("default_category_weight", 1)))
        self.penalty = {k: Decimal(str(v)) for k, v in data.get("penalty_deduction", {}).items()}
        self.listing = {k: Decimal(str(v)) for k, v in data.get("listing_deduction", {}).items()}
        self.forces = dict(data.get("listing_forces_class", {}))
        positive = data.get("positive_records") or {"max_total": 0, "kinds": {}}
        self.positive_kinds: dict[str, dict] = positive["kinds"]
        self.positive_max = Decimal(str(positive["max_total"]))
        self.ceiling = self.base + self.positive_max
        self.thresholds = sorted(data["thresholds"], key=lambda t: t["min"], reverse=True)

    # -- loading and validation ------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path | None = None, periods: Periods | None = None) -> "ScoreModel":
        path = Path(path or os.environ.get("SCORE_MODEL_PATH") or DEFAULT_PATH)
        if not path.is_absolute():
            path = ROOT / path
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidScoreModel([f"cannot read it: {exc.strerror or exc}"],
                                    f"score model {path}") from exc
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise InvalidScoreModel([f"not valid JSON: {exc}"], f"score model {path}") from exc
        problems = validate(data)
        if problems:
            raise InvalidScoreModel(problems, f"score model {path}")
        return cls(data, periods)

    @classmethod
    def from_data(cls, data: dict, periods: Periods | None = None) -> "ScoreModel":
        problems = validate(data)
        if problems:
            raise InvalidScoreModel(problems)
        return cls(data, periods)

    # -- the rules -------------------------------------------------------------------------
    def publicity_end(self, violation: dict) -> datetime:
        """The end of the record's publicity window (``Periods.publicity_end``)."""
        return self.periods.publicity_end(violation)

    def class_of(self, score: Decimal) -> tuple[str, str]:
        for t in self.thresholds:
            below = t.get("below")
            if score >= Decimal(str(t["min"])) and (below is None or score < Decimal(str(below))):
                span = f"[{t['min']}, {below})" if below is not None else f"{t['min']} and above"
                return t["class"], f"score {score} is in the class {t['class']} range {span}"
        raise AssertionError(f"no class for score {score}")  # validation makes this impossible

    def score(self, violations: list[dict], day: date, repairs: list[dict] = (),
              positives: list[dict] = ()) -> Score:
        """Score on ``day`` (a CST calendar day).

        ``violations``: facts of the entity's *active* records (``violation_facts``);
        ``repairs``: ``{violation_id, scope, decided_at}``; ``positives``: positive record facts.
        """
        contributions: list[dict] = []
        total = self.base
        repaired: dict[str, dict[str, date]] = {}
        for repair in repairs:
            on = day_of(repair["decided_at"])
            if on <= day:
                repaired.setdefault(repair["violation_id"], {})[repair["scope"]] = on
        forced: tuple[str, str] | None = None
        for v in sorted(violations, key=lambda r: (r["decided_at"], r["violation_id"])):
            start = day_of(v["decided_at"])
            if start > day:
                continue
            repairs_of = repaired.get(v["violation_id"], {})
            contribution, forces = self._violation(v, start, day, repairs_of)
            contributions.append(contribution)
            total += Decimal(str(contribution["points"]))
            if forces and (forced is None or forces[0] > forced[0]):
                forced = forces
        total += self._positives(positives, day, contributions)
        if total < self.floor:
            contributions.append({"kind": "adjustment", "points": float(self.floor - total),
                                  "rule": f"the score does not fall below {self.floor}"})
            total = self.floor
        elif total > self.ceiling:
            contributions.append({"kind": "adjustment", "points": float(self.ceiling - total),
                                  "rule": f"the score does not rise above {self.ceiling}"})
            total = self.ceiling
        risk_class, reason = self.class_of(total)
        if forced and forced[0] >= risk_class:  # the list decides; the score is said too
            risk_class, reason = forced[0], f"{forced[1]}; {reason}"
        return Score(float(total), risk_class, reason, float(self.base), contributions,
                     self.version, day)

    def _violation(self, v: dict, start: date, day: date, repairs_of: dict) -> tuple[dict, tuple | None]:
        q = self.quantum
        end = day_of(self.publicity_end(v))
        weight = self.weights.get(v["category"], self.default_weight)
        parts = [{"rule": f"severity {v['severity']} ({self.severity[v['severity']]}) x category "
                          f"{v['category']} weight {weight}",
                  "points": -(self.severity[v["severity"]] * weight).quantize(q, ROUND_HALF_UP),
                  "scope": "publicity"}]
        for p in v["penalties"]:
            points = self.penalty.get(p["type"])
            if points:
                parts.append({"rule": f"penalty {p['type']}", "points": -points.quantize(q),
                              "scope": "publicity"})
        listing = v.get("listing")
        forces = None
        if listing:
            name = listing["list"]
            scope = "serious_list" if name == "serious_violation" else "publicity"
            points = self.listing.get(name)
            if points:
                parts.append({"rule": f"listing {name}", "points": -points.quantize(q),
                              "scope": scope})
            listed_on = day_of(listing["listed_at"])
            ends = self.periods.listing_end(listing)
            if name in self.forces and listed_on <= day and not repairs_of and (
                    ends is None or day < day_of(ends)):
                forces = (self.forces[name], f"on the {name.replace('_', ' ')} list since "
                          f"{listed_on} ({v['agency_code']} {v['document_number']}): class "
                          f"{self.forces[name]} regardless of the score")
        counted = Decimal(0)
        for part in parts:  # publicity ends every part; serious_list what the listing adds
            part["repaired"] = "publicity" in repairs_of or part["scope"] in repairs_of
            if not part["repaired"]:
                counted += part["points"]
        span = (end - start).days
        remaining = min(max((end - day).days, 0), span)
        fade = Decimal(remaining) / Decimal(span) if span > 0 else Decimal(0)
        points = (counted * fade).quantize(q, ROUND_HALF_UP)
        if all(p["repaired"] for p in parts):
            state = "repaired"
        elif remaining == 0:
            state = "faded"
        elif any(p["repaired"] for p in parts):
            state = "partly_repaired"
        else:
            state = "fading"
        full = sum((p["points"] for p in parts), Decimal(0))
        return {
            "kind": "violation", "violation_id": v["violation_id"],
            "agency_code": v["agency_code"], "document_number": v["document_number"],
            "category": v["category"], "severity": v["severity"],
            "penalties": [p["type"] for p in v["penalties"]],
            "decided_on": start.isoformat(), "publicity_ends_on": end.isoformat(),
            "state": state, "full_points": float(full),
            "fade_factor": float(round(fade, 4)), "points": float(points) or 0.0,
            "parts": [{"rule": p["rule"], "points": float(p["points"]),
                       "repaired": p["repaired"]} for p in parts],
            "repaired_on": {scope: on.isoformat() for scope, on in sorted(repairs_of.items())},
        }, forces

    def _positives(self, positives, day: date, contributions: list[dict]) -> Decimal:
        added = Decimal(0)
        for p in sorted(positives, key=lambda r: (r["awarded_at"], r["record_id"])):
            kind = self.positive_kinds.get(p["kind"])
            start = day_of(p["awarded_at"])
            if kind is None or start > day:
                continue
            until = day_of(add_months(p["awarded_at"], kind["months"]))
            valid = day < until
            points = Decimal(str(kind["points"])).quantize(self.quantum) if valid else Decimal(0)
            contributions.append({
                "kind": "positive", "record_id": p["record_id"], "record_kind": p["kind"],
                "title": p.get("title", ""), "issued_by": p.get("issued_by", ""),
                "awarded_on": start.isoformat(), "valid_until": until.isoformat(),
                "state": "valid" if valid else "expired", "points": float(points)})
            added += points
        if added > self.positive_max:
            contributions.append({
                "kind": "adjustment", "points": float(self.positive_max - added),
                "rule": f"positive records add at most {self.positive_max} points together"})
            added = self.positive_max
        return added


# -- validation ------------------------------------------------------------------------------

def validate(data) -> list[str]:
    """Every problem of a score model document; empty when it is valid."""
    if not isinstance(data, dict):
        return ["the model must be a JSON object"]
    problems: list[str] = [f"missing entry {key!r}" for key in REQUIRED_KEYS if key not in data]
    for key in sorted(set(data) - KNOWN_KEYS):
        problems.append(f"unknown key {key!r}")
    if not isinstance(data.get("version"), str) or not data.get("version"):
        problems.append("version: must be a non-empty string")
    for key in ("base", "floor"):
        if key in data and not _number(data[key]) or key == "base" and key not in data:
            problems.append(f"{key}: must be a number")
    if _number(data.get("base")) and _number(data.get("floor", 0)) and data.get("floor", 0) >= data["base"]:
        problems.append("floor: must be below base")
    decimals = data.get("score_decimals", 1)
    if not isinstance(decimals, int) or isinstance(decimals, bool) or not 0 <= decimals <= 2:
        problems.append("score_decimals: must be 0, 1 or 2")
    problems += _weights(data, "severity_deduction", SEVERITIES, "severity", every=True)
    problems += _weights(data, "category_weight", CATEGORIES, "category")
    problems += _weights(data, "penalty_deduction", PENALTY_TYPES, "penalty type")
    problems += _weights(data, "listing_deduction", LISTS, "list")
    default_weight = data.get("default_category_weight", 1)
    if not _number(default_weight) or default_weight < 0:
        problems.append("default_category_weight: must be a number >= 0 (a negative weight "
                        "would turn a violation into credit)")
    forces = data.get("listing_forces_class", {})
    if not isinstance(forces, dict):
        problems.append("listing_forces_class: must be an object {list: class}")
    else:
        for name, cls in forces.items():
            if name not in LISTS:
                problems.append(f"listing_forces_class: unknown list {name!r} (known: {', '.join(LISTS)})")
            if cls not in RISK_CLASSES:
                problems.append(f"listing_forces_class.{name}: unknown class {cls!r}")
    problems += _positive(data)
    problems += _thresholds(data)
    missing = [key for key in REQUIRED_KEYS if key not in data]
    return [p for p in problems if not any(p.startswith(f"{key}:") for key in missing)]


def _weights(data, key, known, what, every=False) -> list[str]:
    table = data.get(key, {} if not every else None)
    if not isinstance(table, dict):
        return [f"{key}: must be an object {{{what}: number}}"]
    problems = []
    for name, value in table.items():
        if name not in known:
            problems.append(f"{key}: unknown {what} {name!r} (known: {', '.join(known)})")
        if not _number(value):
            problems.append(f"{key}.{name}: must be a number")
        elif value < 0:
            problems.append(f"{key}.{name}: negative weight {value} is not allowed (a violation "
                            f"must never add credit)")
    if every:
        for name in known:
            if name not in table:
                problems.append(f"{key}: no value for {what} {name!r}")
    return problems


def _positive(data) -> list[str]:
    if "positive_records" not in data:
        return []
    positive = data["positive_records"]
    if not isinstance(positive, dict) or not isinstance(positive.get("kinds"), dict):
        return ["positive_records: must be an object with 'max_total' and 'kinds'"]
    problems = []
    if not _number(positive.get("max_total")) or positive["max_total"] < 0:
        problems.append("positive_records.max_total: must be a number >= 0")
    for name, kind in positive["kinds"].items():
        if not isinstance(kind, dict):
            problems.append(f"positive_records.kinds.{name}: must be an object")
            continue
        points = kind.get("points")
        if not _number(points) or points <= 0:
            problems.append(f"positive_records.kinds.{name}.points: must be a positive number "
                            f"(a positive record cannot deduct)")
        if not isinstance(kind.get("months"), int) or kind["months"] <= 0:
            problems.append(f"positive_records.kinds.{name}.months: must be a positive whole number")
    return problems


def _thresholds(data) -> list[str]:
    """Class ranges ``[min, below)`` must tile every reachable score exactly once, A highest."""
    raw = data.get("thresholds")
    if not isinstance(raw, list) or not raw:
        return ["thresholds: must be a non-empty list of {class, min, below}"]
    problems = []
    ranges = []
    for i, t in enumerate(raw):
        if not isinstance(t, dict):
            problems.append(f"thresholds[{i}]: must be an object")
            continue
        cls, low, high = t.get("class"), t.get("min"), t.get("below")
        if cls not in RISK_CLASSES:
            problems.append(f"thresholds[{i}]: unknown class {cls!r} (known: {', '.join(RISK_CLASSES)})")
            continue
        if not _number(low) or (high is not None and not _number(high)):
            problems.append(f"thresholds[{i}] (class {cls}): min must be a number, below a number or null")
            continue
        if high is not None and high <= low:
            problems.append(f"thresholds[{i}] (class {cls}): below {high} must be above min {low}")
            continue
        ranges.append((low, high, cls))
    if problems:
        return problems
    classes = [cls for _, _, cls in ranges]
    for cls in RISK_CLASSES:
        if classes.count(cls) == 0:
            problems.append(f"thresholds: class {cls} is missing")
        elif classes.count(cls) > 1:
            problems.append(f"thresholds: class {cls} is given {classes.count(cls)} times")
    ranges.sort(key=lambda r: r[0])
    floor = data.get("floor", 0) if _number(data.get("floor", 0)) else 0
    positive = data.get("positive_records") or {}
    max_total = positive.get("max_total", 0) if isinstance(positive, dict) else 0
    ceiling = (data["base"] + (max_total if _number(max_total) else 0)
               if _number(data.get("base")) else None)
    if ranges[0][0] > floor:
        problems.append(f"thresholds: missing class for scores [{floor}, {ranges[0][0]}) "
                        f"(the lowest range must start at the floor {floor} or below)")
    for (low1, high1, cls1), (low2, high2, cls2) in zip(ranges, ranges[1:]):
        if high1 is None or high1 > low2:
            tops = [h for h in (high1, high2) if h is not None]
            top = f"{min(tops)})" if tops else "and above"
            problems.append(f"thresholds: classes {cls1} and {cls2} overlap on [{low2}, {top}")
        elif high1 < low2:
            problems.append(f"thresholds: missing class for scores [{high1}, {low2})")
    last_high = ranges[-1][1]
    if last_high is not None and ceiling is not None and last_high <= ceiling:
        problems.append(f"thresholds: missing class for scores [{last_high}, {ceiling}] "
                        f"(the highest range must reach the ceiling base + positive max {ceiling})")
    if not problems:
        order = [cls for _, _, cls in reversed(ranges)]
        if order != sorted(order):
            problems.append(f"thresholds: classes must go A, B, C, D from the highest scores down, "
                            f"got {', '.join(order)}")
    return problems


def violation_facts(violation_id: str, record: dict) -> dict:
    """The facts the model needs from a loaded ViolationSchema record (dates as datetimes)."""
    listing = record.get("listing")
    return {
        "violation_id": violation_id, "agency_code": record["agency_code"],
        "document_number": record["document_number"], "category": record["category"],
        "severity": record["severity"], "decided_at": record["decided_at"],
        "penalties": [{k: (str(v) if k == "amount" else v) for k, v in p.items()}
                      for p in record["penalties"]],
        "listing": {"list": listing["list"], "listed_at": listing["listed_at"]} if listing else None,
        # what the publicity window reads (rules.periods; absent in records before v2)
        "procedure": record.get("procedure", "ordinary"),
        "published_at": record.get("published_at"),
        "place_code": record.get("place_code"), "uscc": record.get("uscc"),
    }
