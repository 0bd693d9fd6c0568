"""The facts scoring keeps per entity: one ``records`` document per entity (read by id only).

``{_id: uscc, name, region_code, entity_type, violations: [...], repairs: [...],
positives: [...]}``. Every change is a pure function here returning whether anything changed,
so a redelivered or stale event changes nothing (the consumer is idempotent):

- violations are versioned: only a newer version of a violation replaces the stored one;
- a repair is kept once per (application, scope);
- a positive record is kept once per key.
"""
from __future__ import annotations

from rules import uscc as uscc_codes
from rules.score_model import violation_facts

FACT_LISTS = ("violations", "repairs", "positives")


def new_entity(code: str, name: str | None = None) -> dict:
    facts = uscc_codes.facts(code)
    return {"_id": code, "name": name, "region_code": facts.region_code,
            "entity_type": facts.entity_type, "violations": [], "repairs": [], "positives": []}


def merge_version(records: list[dict], incoming: dict) -> list[dict] | None:
    """The entity's records with ``incoming`` applied if it is newer; None if it is not."""
    for i, current in enumerate(records):
        if current["violation_id"] == incoming["violation_id"]:
            if current["version"] >= incoming["version"]:
                return None  # a redelivered or stale event
            return records[:i] + [incoming] + records[i + 1:]
    return records + [incoming]


def apply_violation(doc: dict, violation_id: str, version: int, status: str, record: dict) -> bool:
    merged = merge_version(doc.get("violations", []), {
        "violation_id": violation_id, "version": version, "status": status,
        "fact": violation_facts(violation_id, record)})
    if merged is None:
        return False
    doc["violations"] = merged
    if not doc.get("name"):
        doc["name"] = record["entity_name"]
    return True


def apply_repair(doc: dict, repair: dict) -> bool:
    key = (repair["application_id"], repair["scope"])
    repairs = doc.get("repairs", [])
    if any((r["application_id"], r["scope"]) == key for r in repairs):
        return False
    doc["repairs"] = repairs + [{k: repair[k] for k in (
        "application_id", "violation_id", "scope", "decided_at", "decided_by", "reason")}]
    return True


def apply_positive(doc: dict, positive: dict) -> bool:
    positives = doc.get("positives", [])
    if any(p["record_id"] == positive["record_id"] for p in positives):
        return False
    doc["positives"] = positives + [positive]
    return True


def apply_registration(doc: dict, name: str, provisional: bool) -> bool:
    """A registered name replaces a provisional one (the name in a decision)."""
    if doc.get("name") and (provisional or doc.get("name") == name):
        return False
    doc["name"] = name
    return True


def score_inputs(doc: dict) -> tuple[list[dict], list[dict], list[dict]]:
    """(facts of active violations, repairs, positives) for ``ScoreModel.score``."""
    active = [v["fact"] for v in doc.get("violations", ()) if v["status"] == "active"]
    return active, doc.get("repairs", []), doc.get("positives", [])
