"""The gate-keeping answer: may this entity pass, in this sector, at this instant, and why.

Computed from the stored windows at query time (never from a stored "active" flag).
"""
from __future__ import annotations

from datetime import datetime, timezone
from functools import lru_cache

from marshmallow import ValidationError

from contracts.common import Instant
from rules.periods import is_active
from rules.vocabulary import SECTORS
from shared.queries import BadQuery, parse_code  # noqa: F401 (re-exported)

MAX_BATCH = 1000
CLEAR = "no active measure in this sector"
SCHEMA_VERSION = 2  # of the answer: 2 carries each measure's effect, subject and bases
EFFECT_WORDS = {"prohibit": "prohibition", "stricter_review": "stricter review",
                "consideration": "consideration", "supervision": "supervision measure",
                "inform": "information"}


def parse_query(args) -> tuple[list[str], datetime]:
    errors = []
    allowed = {"sector", "as_of"}
    for key in args.keys():
        if key not in allowed:
            errors.append({"field": key, "problem": "unknown query parameter"})
    sector = args.get("sector")
    sectors = list(SECTORS)
    if sector is not None:
        if sector not in SECTORS:
            errors.append({"field": "sector", "problem": f"must be one of {', '.join(SECTORS)}"})
        else:
            sectors = [sector]
    as_of = datetime.now(timezone.utc)
    if args.get("as_of") is not None:
        try:
            as_of = Instant().deserialize(args.get("as_of"))
        except ValidationError:
            errors.append({"field": "as_of", "problem": "must be an ISO 8601 instant, "
                                                        "e.g. 2026-11-28T10:00:00+08:00"})
    if errors:
        raise BadQuery(errors)
    return sectors, as_of.astimezone(timezone.utc)


def source_id(doc: dict) -> str:
    return f"{doc['source']['agency_code']}/{doc['source']['document_number']}"


def class_based_rules(catalog) -> frozenset[str]:
    """Ids of the catalog's triggers that fire on the credit risk class. The class is not
    public, and naming such a trigger or its memorandum (``MOU-RISK-D-2023``) in a gate-keeping
    answer would tell it; the measure itself, its legal basis and department are still told."""
    return frozenset(t.id for t in catalog.triggers if "risk_classes" in t.when)


def measure_view(doc: dict, under_review: bool = False,
                 withheld: frozenset[str] = frozenset()) -> dict:
    hidden = doc["rule"] in withheld
    return {
        "restriction_id": doc["_id"], "measure_id": doc["measure_id"], "action": doc["action"],
        "effect": doc.get("effect") or "prohibit", "subject": doc.get("subject") or "entity",
        "bases": doc.get("bases") or [],  # shared with the read model's view: read-only
        "legal_basis": doc["legal_basis"], "department": doc["department"],
        "memorandum": None if hidden else doc["memorandum"],
        "rule": None if hidden else doc["rule"],
        "source": {"agency_code": doc["source"]["agency_code"],
                   "document_number": doc["source"]["document_number"]},
        "starts_at": doc["starts_at"], "ends_at": doc["ends_at"],
        "under_review": under_review,
        "catalog_version": doc.get("catalog_version"),
    }


def answer(code: str, docs: list[dict], sectors: list[str], as_of: datetime,
           entity_known: bool, under_review=None, withheld: frozenset[str] = frozenset(),
           history=None) -> dict:
    """``may_pass`` is false only where a ``prohibit`` measure of the entity applies; every other
    active measure (stricter review, consideration, supervision, information) is told as what
    it is, with its bases. ``under_review(violation_id) -> bool``: the record has an open objection. A measure
    whose record is under review still applies (the record stands until decided); the
    answer says so, measure by measure and in ``records_under_review``. ``withheld``: rules
    (``class_based_rules``) whose memorandum and rule id are not told (the class is not public).
    ``history`` (``rules.versions.History``): see ``under_versions_in_force``."""
    if history is not None and docs:
        docs = under_versions_in_force(docs, history, as_of)
    if not docs:  # most codes in a batch: one shared, read-only sectors part
        return {"schema_version": SCHEMA_VERSION, "uscc": code, "as_of": as_of,
                "record": "no_active_restriction" if entity_known else "entity_unknown",
                "may_pass": True, "records_under_review": [], "sectors": _clear(tuple(sectors))}
    per_sector = {sector: {"may_pass": True, "measures": []} for sector in sectors}
    any_record = False
    reviewed: set[str] = set()
    for doc in docs:
        any_record = True
        if doc["sector"] in per_sector and is_active(
                _utc(doc["starts_at"]), _utc(doc.get("ends_at")), _utc(doc.get("lifted_at")), as_of):
            entry = per_sector[doc["sector"]]
            if (doc.get("effect") or "prohibit") == "prohibit" and \
                    (doc.get("subject") or "entity") == "entity":
                entry["may_pass"] = False
            flagged = bool(under_review and under_review(source_id(doc)))
            if flagged:
                reviewed.add(source_id(doc))
            entry["measures"].append(_cached_view(doc, flagged, withheld))
    for entry in per_sector.values():
        entry["measures"].sort(key=lambda m: (m["starts_at"], m["measure_id"]))
        entry["reason"] = _reason(entry["measures"])
    if not entity_known and not any_record:
        record = "entity_unknown"
    elif any(not e["may_pass"] for e in per_sector.values()):
        record = "restricted"
    elif any(e["measures"] for e in per_sector.values()):
        record = "measures_without_prohibition"
    else:
        record = "no_active_restriction"
    return {"schema_version": SCHEMA_VERSION, "uscc": code, "as_of": as_of, "record": record,
            "may_pass": all(e["may_pass"] for e in per_sector.values()),
            "records_under_review": sorted(reviewed),
            "sectors": per_sector}


def under_versions_in_force(docs: list[dict], history, as_of: datetime) -> list[dict]:
    """A record decided again under a catalog version that took effect after ``as_of`` (the
    migration lifted the old measures and imposed the new ones, starting at the decision) is
    answered with the measures of the version in force at ``as_of``: the later version's are
    left out. A record decided only under a later version (recorded after it took effect) has
    no other decision to show: its measures are shown, each naming the version it was decided
    under (``catalog_version`` in the measure view)."""
    by_record: dict[str, list[dict]] = {}
    for doc in docs:
        by_record.setdefault(source_id(doc), []).append(doc)
    kept = []
    for group in by_record.values():
        then = [doc for doc in group if history.applies_at(doc.get("catalog_version"), as_of)]
        kept.extend(then or group)
    return kept


def _reason(measures: list[dict]) -> str:
    """``2 active measures: 1 prohibition, 1 consideration`` (effects in catalog order)."""
    if not measures:
        return CLEAR
    counts: dict[str, int] = {}
    for measure in measures:
        counts[measure["effect"]] = counts.get(measure["effect"], 0) + 1
    parts = [f"{counts[e]} {EFFECT_WORDS[e]}" for e in EFFECT_WORDS if e in counts]
    passes = ("" if "prohibit" in counts else
              "; none prohibits: the entity may pass, the measures are told as what they are")
    return f"{len(measures)} active measure(s): {', '.join(parts)}{passes}"


def _cached_view(doc: dict, under_review: bool, withheld: frozenset[str]) -> dict:
    """``measure_view``, kept in the (projection's) document: a document is replaced, never
    changed, when its restriction changes, so the view lives as long as it is true. Shared by
    every answer that shows the measure: read-only."""
    views = doc.get("_views")
    if views is None or views["of"] != id(doc):  # none yet, or a copy's (``{**doc, ...}``)
        views = doc["_views"] = {"of": id(doc)}
    key = (under_review, withheld)
    view = views.get(key)
    if view is None:
        view = views[key] = measure_view(doc, under_review, withheld)
    return view


@lru_cache(maxsize=64)
def _clear(sectors: tuple[str, ...]) -> dict:
    """The sectors part of an answer with no record: the same for every such code, so built
    once per set of sectors and shared. Read-only: nothing may modify it."""
    return {sector: {"may_pass": True, "measures": [], "reason": CLEAR} for sector in sectors}


def _utc(value):
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def in_force(history, as_of: datetime) -> dict | None:
    """The catalog version in force at ``as_of``, as the answer names it."""
    return history.in_force_at(as_of).as_dict() if history is not None else None
