"""Credit-repair eligibility and objection deadlines (data in ``catalog/repair.json``), over
the publicity and listing windows of ``rules.periods`` (``catalog/periods.json``).

Pure domain code: no broker, no store. Every answer is computed from dates at the instant
asked, so the public record and eligibility change on their own as time passes.

- A penalty is public on its publicity window (``Periods.publicity_window``); an approved
  ``publicity`` repair ends it at the decision.
- A listing is public on its listing window (``Periods.listing_window``: the serious violation
  list for a fixed period, abnormal operations until cured); an approved ``serious_list``
  repair ends it at the decision.
- A repair application targets the listing while the record is on the serious violation list,
  the penalty's publicity otherwise. Ending a penalty's publicity early (Order 45 as amended,
  art. 14) needs every condition at once: obligations performed, harm removed, no new penalty
  by a market regulator for the same kind of violation since, not on the serious violation
  list; the waiting period counts from the publication day; and it is never allowed after a
  suspension, an occupational ban, a licence downgrade or a revocation (art. 14 para. 3). ``Rules.check`` names every rule that blocks it, with the
  earliest instant it could succeed when waiting is all it takes.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from rules.errors import InvalidRulesFile
from rules.periods import CHINA_TZ, Periods, months_after, penalty_types
from rules.vocabulary import CATEGORIES, PENALTY_TYPES, SEVERITIES

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PATH = ROOT / "catalog" / "repair.json"
SCOPES = ("publicity", "serious_list")
CONDITIONS = ("penalty_performed", "harm_removed", "no_new_heavier_penalty",
              "no_new_penalty_same_kind", "not_on_serious_list", "commitment_letter")
DEADLINES = ("repair_decision", "objection_decision")


class InvalidRepairRules(InvalidRulesFile):
    source = "repair rules"


@dataclass(frozen=True)
class Block:
    rule: str
    detail: str
    basis: str
    earliest_at: datetime | None = None

    def as_dict(self) -> dict:
        return {"rule": self.rule, "detail": self.detail, "basis": self.basis,
                "earliest_at": self.earliest_at}


@dataclass
class Eligibility:
    scope: str | None
    as_of: datetime
    blocks: list[Block] = field(default_factory=list)

    @property
    def eligible(self) -> bool:
        return not self.blocks

    @property
    def earliest_at(self) -> datetime | None:
        """When waiting alone would lift every block; None if eligible or if it would not."""
        if not self.blocks or any(b.earliest_at is None for b in self.blocks):
            return None
        return max(b.earliest_at for b in self.blocks)

    def as_dict(self) -> dict:
        earliest = self.earliest_at
        return {"scope": self.scope, "as_of": self.as_of, "eligible": self.eligible,
                "earliest_at": earliest,
                "earliest_date": earliest.astimezone(CHINA_TZ).date().isoformat()
                if earliest else None,
                "blocking": [b.as_dict() for b in self.blocks]}


@dataclass
class RecordState:
    """What the repair service knows of one record (a loaded ViolationSchema ``record``)."""

    violation_id: str
    record: dict
    status: str = "active"
    revoked_at: datetime | None = None
    repairs: dict = field(default_factory=dict)  # scope -> decided_at of the approval

    def active_at(self, as_of: datetime) -> bool:
        return self.status == "active" or (self.revoked_at is not None and as_of < self.revoked_at)


class Rules:
    def __init__(self, data: dict, periods: Periods | None = None):
        self.data = data
        self.periods = periods or Periods.shipped()
        self.version = data["version"]
        self.repair = data["repair"]
        self.heavier = data["heavier_penalty"]
        self.deadlines = data["deadlines_working_days"]

    @classmethod
    def load(cls, path: str | Path = DEFAULT_PATH, periods: Periods | None = None) -> "Rules":
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InvalidRepairRules([f"cannot read JSON: {exc}"], f"repair rules {path}") from exc
        problems = validate(data)
        if problems:
            raise InvalidRepairRules(problems, f"repair rules {path}")
        return cls(data, periods)

    @classmethod
    def from_data(cls, data: dict, periods: Periods | None = None) -> "Rules":
        problems = validate(data)
        if problems:
            raise InvalidRepairRules(problems)
        return cls(data, periods)

    # -- windows (defined in rules.periods) ----------------------------------------------
    def publicity_window(self, record: dict) -> tuple[datetime, datetime] | None:
        """``[start, end)`` of the penalty's publicity, or None if it is never published."""
        return self.periods.publicity_window(record)

    def listing_window(self, record: dict) -> tuple[datetime, datetime | None] | None:
        return self.periods.listing_window(record.get("listing"))

    def penalty_public(self, state: RecordState, as_of: datetime) -> tuple | None:
        """``(start, end)`` when the penalty is public at ``as_of`` (end: when it stops)."""
        window = self.publicity_window(state.record)
        if window is None or not state.active_at(as_of):
            return None
        start, end = window
        repaired = state.repairs.get("publicity")
        if repaired is not None and repaired < end:
            end = repaired
        return (start, end) if start <= as_of < end else None

    def listing_public(self, state: RecordState, as_of: datetime) -> tuple | None:
        window = self.listing_window(state.record)
        if window is None or not state.active_at(as_of):
            return None
        start, end = window
        repaired = state.repairs.get("serious_list")
        if repaired is not None and (end is None or repaired < end):
            end = repaired
        return (start, end) if start <= as_of and (end is None or as_of < end) else None

    # -- eligibility -------------------------------------------------------------------
    def scope_for(self, state: RecordState, as_of: datetime) -> str:
        record = state.record
        if (record.get("listing") or {}).get("list") == "serious_violation" \
                and self.listing_public(state, as_of):
            return "serious_list"
        return "publicity"

    def is_heavier(self, record: dict) -> bool:
        return (record["severity"] in self.heavier["severities"]
                or any(p["type"] in self.heavier["penalty_types"] for p in record["penalties"]))

    def check(self, state: RecordState, others: list[RecordState], declarations: dict,
              as_of: datetime) -> Eligibility:
        """May ``state``'s record be repaired at ``as_of``? ``others``: the entity's other
        records; ``declarations``: what the applicant declares and submits."""
        if not state.active_at(as_of):
            return Eligibility(None, as_of, [Block(
                "record_revoked", "the record was revoked: nothing is published, nothing to "
                "repair", self.periods.basis)])
        scope = self.scope_for(state, as_of)
        spec = self.repair[scope]
        blocks = (self._listing_blocks(state, spec, as_of) if scope == "serious_list"
                  else self._publicity_blocks(state, spec, as_of))
        since = (state.record["listing"]["listed_at"] if scope == "serious_list"
                 else state.record["decided_at"])
        blocks += self._condition_blocks(state, others, declarations, spec, since, as_of)
        return Eligibility(scope, as_of, blocks)

    def _listing_blocks(self, state, spec, as_of) -> list[Block]:
        earliest = months_after(state.record["listing"]["listed_at"], spec["earliest_months"])
        if as_of < earliest:
            return [Block("too_early", f"removal from the serious violation list may be "
                          f"applied for {spec['earliest_months']} months after listing",
                          spec["basis"], earliest)]
        return []

    def _publicity_blocks(self, state, spec, as_of) -> list[Block]:
        record = state.record
        window = self.publicity_window(record)
        if window is None:
            return [Block("not_published", f"{self.periods.unpublished_reason(record)}: nothing "
                          f"to repair", self.periods.basis)]
        if state.repairs.get("publicity") is not None:
            return [Block("already_repaired", "the penalty's publicity already ended by credit "
                          "repair", spec["basis"])]
        if not self.penalty_public(state, as_of):
            return [Block("not_public", f"the penalty is not published at this date (published "
                          f"{window[0].isoformat()} to {window[1].isoformat()})",
                          self.periods.basis)]
        barred = sorted(penalty_types(record) & set(spec["never_for_penalties"]))
        if barred:
            return [Block("not_repairable", f"publicity of {', '.join(barred)} cannot be ended by "
                          f"credit repair; it ends on its own at {window[1].isoformat()}",
                          spec["basis"])]
        months = spec["earliest_months"]
        longer = spec.get("earliest_months_for_categories") or {}
        if record["category"] in longer.get("categories", ()):
            months = longer["months"]
        earliest = months_after(window[0], months)  # 公示达到规定时限: from publication
        if earliest >= window[1]:
            return [Block("publicity_ends_first", f"the publicity ends on its own at "
                          f"{window[1].isoformat()}, before repair could be applied for",
                          spec["basis"])]
        if as_of < earliest:
            return [Block("too_early", f"repair of a {record['category']} penalty's publicity "
                          f"may be applied for {months} months after its publication "
                          f"({window[0].isoformat()}"
                          f"{', assumed: the agency has not reported it' if self.periods.publication_assumed(record) else ''})",
                          spec["basis"], earliest)]
        return []

    def _condition_blocks(self, state, others, declarations, spec, since, as_of) -> list[Block]:
        blocks = []
        conditions = spec["conditions"]
        if "penalty_performed" in conditions and not declarations.get("penalty_performed"):
            blocks.append(Block("penalty_not_performed", "the penalty must have been performed "
                                "(fine paid, obligations fulfilled)", spec["basis"]))
        if "harm_removed" in conditions and not declarations.get("harm_removed"):
            blocks.append(Block("harm_not_removed", "the harmful consequences and adverse "
                                "effects must have been removed", spec["basis"]))
        if "commitment_letter" in conditions and not declarations.get("commitment_letter"):
            blocks.append(Block("no_commitment_letter", "a signed credit commitment letter "
                                "(信用承诺书) is required", spec["basis"]))
        if "no_new_heavier_penalty" in conditions:
            for other in others:
                rec = other.record
                if (other.violation_id != state.violation_id and other.active_at(as_of)
                        and since < rec["decided_at"] <= as_of and self.is_heavier(rec)):
                    blocks.append(Block("new_heavier_penalty", f"a heavier penalty was decided "
                                        f"since: {other.violation_id} "
                                        f"({rec['severity']}, {rec['decided_at'].isoformat()})",
                                        spec["basis"]))
        if "no_new_penalty_same_kind" in conditions:
            regulators = set(spec.get("market_regulators") or ())
            for other in others:
                rec = other.record
                if (other.violation_id != state.violation_id and other.active_at(as_of)
                        and since < rec["decided_at"] <= as_of
                        and rec["category"] == state.record["category"]
                        and rec["agency_code"].split("-")[0] in regulators
                        and penalty_types(rec)):
                    blocks.append(Block("new_penalty_same_kind", f"penalised again for the same "
                                        f"kind of violation ({rec['category']}) by a market "
                                        f"regulator since: {other.violation_id} "
                                        f"({rec['agency_code']}, {rec['decided_at'].isoformat()})",
                                        spec["basis"]))
        if "not_on_serious_list" in conditions:
            for other in [state] + [o for o in others if o.violation_id != state.violation_id]:
                listing = other.record.get("listing") or {}
                if listing.get("list") == "serious_violation" and self.listing_public(other, as_of):
                    blocks.append(Block("on_serious_list", f"the entity is on the serious "
                                        f"violation list ({other.violation_id}, listed "
                                        f"{listing['listed_at'].isoformat()})", spec["basis"]))
        return blocks


def validate(data) -> list[str]:
    """Every problem of a repair rules document; empty when it is valid."""
    if not isinstance(data, dict):
        return ["the repair rules must be a JSON object"]
    problems = []
    if not isinstance(data.get("version"), str) or not data.get("version"):
        problems.append("version: must be a non-empty string")
    known = {"version", "comment", "heavier_penalty", "repair", "deadlines_working_days"}
    for key in sorted(set(data) - known):
        problems.append(f"unknown key {key!r}")
    heavier = data.get("heavier_penalty")
    if not isinstance(heavier, dict):
        problems.append("heavier_penalty: must be an object {severities, penalty_types}")
    else:
        problems += _known(heavier.get("severities"), SEVERITIES, "heavier_penalty.severities",
                           "severity")
        problems += _known(heavier.get("penalty_types"), PENALTY_TYPES,
                           "heavier_penalty.penalty_types", "penalty type")
    repair = data.get("repair")
    if not isinstance(repair, dict):
        problems.append("repair: must be an object {publicity, serious_list}")
        repair = {}
    for scope in SCOPES:
        spec = repair.get(scope)
        where = f"repair.{scope}"
        if not isinstance(spec, dict):
            problems.append(f"{where}: missing")
            continue
        if not str(spec.get("basis") or "").strip():
            problems.append(f"{where}.basis: names no legal basis")
        if not _months(spec.get("earliest_months")):
            problems.append(f"{where}.earliest_months: must be a positive whole number")
        problems += _known(spec.get("conditions"), CONDITIONS, f"{where}.conditions", "condition")
        longer = spec.get("earliest_months_for_categories")
        if longer is not None:
            if not isinstance(longer, dict) or not _months(longer.get("months")):
                problems.append(f"{where}.earliest_months_for_categories: needs positive whole "
                                f"'months' and 'categories'")
            else:
                problems += _known(longer.get("categories"), CATEGORIES,
                                   f"{where}.earliest_months_for_categories.categories",
                                   "category")
        regulators = spec.get("market_regulators")
        if regulators is not None and (not isinstance(regulators, list) or not all(
                isinstance(code, str) and code for code in regulators)):
            problems.append(f"{where}.market_regulators: must be a list of agency codes")
        if "no_new_penalty_same_kind" in (spec.get("conditions") or ()) and not regulators:
            problems.append(f"{where}.market_regulators: no_new_penalty_same_kind needs the "
                            f"market regulation agencies (Order 45 art. 14(三))")
        if "never_for_penalties" in spec:
            problems += _known(spec["never_for_penalties"], PENALTY_TYPES,
                               f"{where}.never_for_penalties", "penalty type")
    unknown_scopes = sorted(set(repair) - set(SCOPES))
    problems += [f"repair: unknown scope {s!r} (known: {', '.join(SCOPES)})" for s in unknown_scopes]
    deadlines = data.get("deadlines_working_days")
    if not isinstance(deadlines, dict):
        problems.append("deadlines_working_days: must be an object {deadline: working days}")
    else:
        for name in DEADLINES:
            if not _months(deadlines.get(name)):
                problems.append(f"deadlines_working_days.{name}: must be a positive whole "
                                f"number of working days")
        problems += [f"deadlines_working_days: unknown deadline {n!r}"
                     for n in sorted(set(deadlines) - set(DEADLINES))]
    return problems


def _months(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _known(values, known, where: str, what: str) -> list[str]:
    if not isinstance(values, list):
        return [f"{where}: must be a list of {what} names"]
    return [f"{where}: unknown {what} {v!r} (known: {', '.join(known)})"
            for v in values if v not in known]
