"""The measure catalog (data in ``catalog/measures.json``, format 2) and the decision it gives.

Pure domain code: no broker, no store. ``Catalog.load`` refuses an invalid file with every
problem named: among them a measure whose basis quote is not found verbatim under its article
in the named file of ``rules/law/`` (``rules.lawtexts``), and any trigger on the credit risk
class (the class sets inspection ratios and frequency only: 晋市监发〔2023〕216号 (十九)).
``Catalog.decide`` turns the facts of one violation into measures, each with its effect
(``prohibit``, ``stricter_review``, ``consideration``, ``supervision``, ``inform``), subject
(the entity or a person) and bases, recording which rules fired and why, so the same facts
always give the same outcome.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

from rules import lawtexts, uscc as uscc_codes
from rules.errors import InvalidRulesFile
from rules.periods import DURATION_KINDS, Periods, add_months
from rules.vocabulary import (CATEGORIES, EFFECTS, LISTS, NO_PENALTY, PENALTY_TYPES, POSITIONS,
                              SECTORS, SUBJECTS)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PATH = ROOT / "catalog" / "measures.json"
FORMAT = 2
# What a trigger may be keyed on: what a basis names (a published list, a penalty type, a fine
# threshold, the deciding department) and the field of the rule (food law binds food operators).
CONDITIONS = {
    "categories": CATEGORIES,
    # not ``none``: a decision not to penalise (行政处罚法 第三十三条) is no penalty a basis can
    # attach a measure to
    "penalty_types": tuple(t for t in PENALTY_TYPES if t != NO_PENALTY),
    "listings": LISTS,
    "deciding_agencies": None,  # agency codes (catalog/agencies.json): any non-empty strings
    "min_fine_yuan": None,  # a number: some fine of at least this amount
    # what the entity is, from its USCC (GB 32100: authority and type, ``rules.uscc``): a rule
    # that binds 企业 (企业信息公示暂行条例 第十八条) or 公司、企业 (公司法 第一百七十八条) does not reach
    # an individual business (个体工商户) or a farmers' cooperative
    "entity_types": tuple(sorted(set(uscc_codes.ENTITY_TYPES.values()))),
}
REFUSED_CONDITIONS = {
    "risk_classes": "the credit risk class triggers no measure: it sets the inspection ratio and "
                    "frequency only (晋市监发〔2023〕216号 (十九): 「合理确定监管重点、监管措施、抽查比例和频次」)",
    "severities": "a severity label is not what any basis names; key the trigger on the list, "
                  "penalty type or fine the basis names",
}
BASIS_KEYS = ("document", "number", "article", "item", "quote", "law_file")
# From when a fixed term counts: the decision (default), or the listing (企业信息公示暂行条例
# 第十八条: 「被列入……名单的企业的法定代表人、负责人，3年内……」).
DURATION_FROM = ("decision", "listing")
PERSON_KEYS = ("bars", "other_entities_only", "requires_personal_responsibility",
               "on_early_removal")


class InvalidCatalog(InvalidRulesFile):
    source = "measure catalog"


@dataclass(frozen=True)
class Measure:
    id: str
    sector: str
    effect: str
    subject: str
    action: str
    department: str
    duration: dict
    bases: tuple[dict, ...]
    basic_list_item: str | None = None
    # Person measures only (subject other than ``entity``): what the person may not take
    # (``POSITIONS``), whether only at another enterprise than the one punished, whether the
    # record must say the person bears personal responsibility, and whether an early removal
    # from the list ends the bar (a reading, recorded with its reasoning and bases).
    bars: tuple[str, ...] = ()
    other_entities_only: bool = False
    requires_personal_responsibility: bool = False
    on_early_removal: dict | None = None

    @property
    def binds_persons(self) -> bool:
        return self.subject != "entity"

    @property
    def ends_with_early_removal(self) -> bool:
        """Whether credit repair's early removal from the list lifts it (entity measures that
        follow the listing do; a person measure says so in ``on_early_removal``)."""
        return self.on_early_removal is None or bool(self.on_early_removal.get("ends"))

    @property
    def legal_basis(self) -> str:
        """The bases as one line: document (number) article item: 「quote」; ..."""
        return "; ".join(render_basis(b) for b in self.bases)


def render_basis(basis: dict) -> str:
    number = f" ({basis['number']})" if basis.get("number") else ""
    item = basis.get("item") or ""
    return f"{basis['document']}{number} {basis['article']}{item}: 「{basis['quote']}」"


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

    @property
    def entity_measures(self) -> list[dict]:
        """The measures that bind the entity (its gate-keeping answer)."""
        return [m for m in self.measures if m["measure"].subject == "entity"]

    @property
    def person_measures(self) -> list[dict]:
        """The measures that bind persons named on the record, each with ``persons``: the
        persons it binds (``bound_persons``)."""
        return [m for m in self.measures if m["measure"].binds_persons]


def bound_persons(measure: Measure, record: dict) -> list[dict]:
    """The persons of ``record`` (``persons``: role, person_id, personal_responsibility, ...) a
    person measure binds: named in its subject role, identified (a person id: an unmigrated
    document binds nobody until it is), and bearing personal responsibility where the basis
    requires it (公司法 第一百七十八条（四）「并负有个人责任的」). One entry per person id."""
    if not measure.binds_persons:
        return []
    chosen: dict[str, dict] = {}
    for person in record.get("persons") or ():
        if person.get("role") != measure.subject or not person.get("person_id"):
            continue
        if measure.requires_personal_responsibility and not person.get("personal_responsibility"):
            continue
        chosen.setdefault(person["person_id"], person)
    return list(chosen.values())


def _holds(key: str, values, facts: dict) -> bool:
    if key == "penalty_types":
        return bool(set(values) & set(facts.get("penalty_types", ())))
    if key == "min_fine_yuan":
        return any(amount >= Decimal(str(values)) for amount in facts.get("fines", ()))
    fact = {"categories": "category", "listings": "listing",
            "deciding_agencies": "agency_code", "entity_types": "entity_type"}[key]
    return facts.get(fact) in values


def _check_basis(mid: str, index: int, basis, problems: list[str]) -> dict:
    where = f"measure {mid} basis {index + 1}"
    if not isinstance(basis, dict):
        problems.append(f"{where}: must be an object with {', '.join(BASIS_KEYS)}")
        return {}
    for key in ("document", "article", "quote", "law_file"):
        if not str(basis.get(key) or "").strip():
            problems.append(f"{where}: no {key}")
    unknown = sorted(set(basis) - set(BASIS_KEYS))
    if unknown:
        problems.append(f"{where}: unknown field(s) {unknown}")
    if basis.get("law_file") and basis.get("article") and basis.get("quote"):
        problem = lawtexts.quote_problem(basis["law_file"], basis["article"], basis["quote"])
        if problem:
            problems.append(f"{where}: {problem}")
        else:
            title = lawtexts.front_matter(basis["law_file"]).get("title")
            if basis.get("document") and title != basis["document"]:
                problems.append(f"{where}: document {basis['document']!r} is not the title of "
                                f"{basis['law_file']} ({title!r})")
    return {key: basis.get(key) for key in BASIS_KEYS}


def _check_person(mid: str, raw: dict, problems: list[str]) -> dict:
    """The person fields of a measure: required on a person measure, refused on an entity's."""
    given = [key for key in PERSON_KEYS if key in raw]
    if raw.get("subject") == "entity":
        if given:
            problems.append(f"measure {mid}: {given} are for person measures only")
        return {}
    bars = raw.get("bars")
    if not isinstance(bars, list) or not bars or any(b not in POSITIONS for b in bars):
        problems.append(f"measure {mid}: a person measure needs 'bars', a non-empty list of "
                        f"{', '.join(POSITIONS)}, got {bars!r}")
        bars = []
    for flag in ("other_entities_only", "requires_personal_responsibility"):
        if not isinstance(raw.get(flag, False), bool):
            problems.append(f"measure {mid}: {flag} must be true or false")
    early = raw.get("on_early_removal")
    counts_from_listing = (raw.get("duration") or {}).get("from") == "listing"
    if counts_from_listing and early is None:
        problems.append(f"measure {mid}: a person measure counted from a listing must say "
                        f"whether an early removal ends it (on_early_removal: ends, reasoning, "
                        f"bases): a reading of the law, recorded with its reasoning")
    if early is not None:
        if not isinstance(early, dict) or not isinstance(early.get("ends"), bool) \
                or not str(early.get("reasoning") or "").strip() or not early.get("bases"):
            problems.append(f"measure {mid}: on_early_removal needs ends (true or false), "
                            f"reasoning and bases")
        else:
            early = {**early, "bases": tuple(_check_basis(f"{mid} on_early_removal", i, b, problems)
                                             for i, b in enumerate(early["bases"]))}
    return {"bars": tuple(bars), "other_entities_only": bool(raw.get("other_entities_only")),
            "requires_personal_responsibility": bool(raw.get("requires_personal_responsibility")),
            "on_early_removal": early}


class Catalog:
    def __init__(self, version: str, measures: dict[str, Measure], triggers: list[Trigger],
                 proportionality: dict, periods: Periods | None = None):
        self.version = version
        self.periods = periods or Periods.shipped()
        self.measures = measures
        self.triggers = triggers
        self.proportionality = proportionality
        self.legal_review: dict = {}
        self.effective_from: datetime | None = None

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
        if data.get("format") != FORMAT:
            problems.append(f"format must be {FORMAT} (measures with effect, subject and "
                            f"bases), got {data.get('format')!r}")
        review = data.get("legal_review")
        if not isinstance(review, dict) or not {"reviewed_by", "reviewed_at", "reference"} <= set(review):
            problems.append("legal_review must say who reviewed this version (法制审核): "
                            "reviewed_by, reviewed_at, reference (null while pending)")
        effective = None
        try:
            effective = datetime.fromisoformat(data.get("effective_from"))
            if effective.tzinfo is None:
                raise ValueError("no offset")
        except (TypeError, ValueError):
            problems.append(f"effective_from must be an ISO 8601 instant with offset, got "
                            f"{data.get('effective_from')!r}")
        measures: dict[str, Measure] = {}
        for raw in data.get("measures", []):
            mid = raw.get("id") or "(measure without id)"
            if mid in measures:
                problems.append(f"measure {mid}: duplicate id")
            if raw.get("sector") not in SECTORS:
                problems.append(f"measure {mid}: unknown sector {raw.get('sector')!r} "
                                f"(known: {', '.join(SECTORS)})")
            if raw.get("effect") not in EFFECTS:
                problems.append(f"measure {mid}: effect must be one of {', '.join(EFFECTS)}, "
                                f"got {raw.get('effect')!r}")
            if raw.get("subject") not in SUBJECTS:
                problems.append(f"measure {mid}: subject must be one of {', '.join(SUBJECTS)}, "
                                f"got {raw.get('subject')!r}")
            if "legal_basis" in raw:
                problems.append(f"measure {mid}: 'legal_basis' is format 1; give 'bases'")
            for attr in ("action", "department"):
                if not str(raw.get(attr) or "").strip():
                    problems.append(f"measure {mid}: no {attr}")
            if "basic_list_item" not in raw:
                problems.append(f"measure {mid}: no basic_list_item (the item of the "
                                f"全国失信惩戒措施基础清单, or null where none is known)")
            bases = raw.get("bases")
            if not isinstance(bases, list) or not bases:
                problems.append(f"measure {mid}: no bases (a measure without a verified basis "
                                f"is not shipped)")
                bases = []
            checked = tuple(_check_basis(mid, i, b, problems) for i, b in enumerate(bases))
            duration = raw.get("duration") or {}
            if duration.get("kind") not in DURATION_KINDS:
                problems.append(f"measure {mid}: duration kind must be one of {DURATION_KINDS}")
            elif duration["kind"] == "fixed_months" and not (
                    isinstance(duration.get("months"), int) and duration["months"] > 0):
                problems.append(f"measure {mid}: fixed_months needs a positive whole 'months'")
            if duration.get("from", "decision") not in DURATION_FROM:
                problems.append(f"measure {mid}: duration 'from' must be one of {DURATION_FROM}")
            elif duration.get("from") == "listing" and duration.get("kind") != "fixed_months":
                problems.append(f"measure {mid}: only a fixed_months term counts from the listing")
            person = _check_person(mid, raw, problems)
            measures[mid] = Measure(mid, raw.get("sector"), raw.get("effect"), raw.get("subject"),
                                    raw.get("action"), raw.get("department"), duration, checked,
                                    raw.get("basic_list_item"), **person)
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
                    if key in REFUSED_CONDITIONS:
                        problems.append(f"trigger {tid}: condition {key!r} refused: "
                                        f"{REFUSED_CONDITIONS[key]}")
                        continue
                    if key not in CONDITIONS:
                        problems.append(f"trigger {tid}: unknown condition {key!r} "
                                        f"(known: {', '.join(CONDITIONS)})")
                        continue
                    if key == "min_fine_yuan":
                        try:
                            ok = Decimal(str(values)) > 0 and not isinstance(values, bool)
                        except InvalidOperation:
                            ok = False
                        if not ok:
                            problems.append(f"trigger {tid}: min_fine_yuan must be a positive "
                                            f"number, got {values!r}")
                        continue
                    allowed = CONDITIONS[key]
                    if not isinstance(values, list) or not values:
                        problems.append(f"trigger {tid}: {key} must be a non-empty list")
                        continue
                    if key == "penalty_types" and NO_PENALTY in values:
                        problems.append(f"trigger {tid}: penalty type {NO_PENALTY!r} is a decision "
                                        f"not to penalise (行政处罚法 第三十三条): no measure "
                                        f"may be triggered by it")
                        continue
                    unknown = [v for v in values if not isinstance(v, str) or not v
                               or (allowed is not None and v not in allowed)]
                    if unknown:
                        problems.append(f"trigger {tid}: {key} {unknown} can never match")
                for mid in raw.get("measures", []):
                    if mid not in measures:
                        problems.append(f"trigger {tid}: unknown measure {mid!r}")
                if not raw.get("measures"):
                    problems.append(f"trigger {tid}: names no measure")
                triggers.append(Trigger(tid, memo_id, raw.get("description", ""), when,
                                        tuple(raw.get("measures", ()))))
        rule = data.get("proportionality") or {}
        if not rule.get("soft_tools") or not rule.get("when_all") or not rule.get("bases"):
            problems.append("proportionality rule needs soft_tools, when_all and bases")
        rule_bases = tuple(_check_basis("proportionality", i, b, problems)
                           for i, b in enumerate(rule.get("bases") or []))
        if problems:
            raise InvalidCatalog(problems)
        catalog = cls(data["version"], measures, triggers,
                      {**rule, "bases": rule_bases,
                       "legal_basis": "; ".join(render_basis(b) for b in rule_bases)}, periods)
        catalog.legal_review = dict(review)
        catalog.effective_from = effective
        return catalog

    def decide(self, record: dict, risk_class: str | None = None) -> Decision:
        """The measures one violation triggers. ``record`` is a loaded ViolationSchema dict.

        ``risk_class`` is accepted and never read: no condition may name it (the loader
        refuses one), so the class cannot change what is decided for the same facts
        (``tests/legal/test_book.py`` checks this as a property)."""
        del risk_class
        penalties = record.get("penalties", ())
        facts = {
            "category": record["category"],
            "penalty_types": [p["type"] for p in penalties],
            "fines": [Decimal(str(p["amount"])) for p in penalties
                      if p["type"] == "fine" and p.get("amount") is not None],
            "listing": (record.get("listing") or {}).get("list"),
            "agency_code": record.get("agency_code"),
            "entity_type": uscc_codes.ENTITY_TYPES.get(tuple(record["uscc"][:2])),
        }
        rule = self.proportionality
        if record["severity"] in rule.get("severities", ()) and not facts["listing"] and all(
                record.get(flag) for flag in rule["when_all"]):
            return Decision(soft_tools=list(rule["soft_tools"]), rules=[rule["rule"]],
                            reason=f"{record['severity']} violation, "
                                   f"{' and '.join(rule['when_all'])}: soft tools only "
                                   f"({rule['legal_basis']})")
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
                "persons": bound_persons(measure, record),
            })
        decision.reason = ("triggers " + ", ".join(decision.rules)) if decision.rules else \
            "no trigger in the catalog matches these facts"
        return decision

    def window(self, measure: Measure, record: dict) -> tuple[datetime, datetime | None]:
        """The measure's ``[start, end)`` for this record (``Periods.measure_window``; a fixed
        term counted from the listing starts at ``listed_at``)."""
        listing = record.get("listing")
        if measure.duration.get("from") == "listing" and listing:
            start = listing["listed_at"]
            return start, add_months(start, measure.duration["months"])
        return self.periods.measure_window(measure.duration, record)


def orphans(catalog: Catalog, active_measure_ids) -> list[str]:
    """Problems when active restrictions name measures the catalog no longer has."""
    missing = sorted(set(active_measure_ids) - set(catalog.measures))
    return [f"measure {mid} is gone from catalog {catalog.version} but active restrictions "
            f"still apply it; keep it until they end or are lifted" for mid in missing]

