"""Score documents: what the score of an entity is on a day, and when that is news.

Scores live in a *generation* collection (``scores_<day>_<id>``) named by the pointer document
``meta/scores``: the daily rescore writes a whole new generation with batch inserts and then
moves the pointer (``rescore.py``), because on the local store an update by id scans the whole
collection (measured: 275 ms per update at 20,000 documents) while batch inserts stream. The
event-driven path reads and writes single documents of the current generation.

A score document: ``{_id: uscc, name, region_code, entity_type, score, risk_class, class_reason,
base, explanation, model_version, day, computed_at, event_ids}``.
"""
from __future__ import annotations

import hashlib
from datetime import date, datetime

from contracts.events import make_event
from services.scoring.facts import score_inputs
from rules.score_model import Score, ScoreModel

POINTER_ID = "scores"
LEGACY = "scores"
PRODUCER = "scoring"


def current_name(db) -> str:
    pointer = db.meta.find_one({"_id": POINTER_ID}, {"current": 1})
    return pointer["current"] if pointer else LEGACY


def current(db):
    return db[current_name(db)]


def build(model: ScoreModel, record_doc: dict, day: date, now: datetime) -> tuple[dict, Score]:
    violations, repairs, positives = score_inputs(record_doc)
    result = model.score(violations, day, repairs, positives)
    doc = {
        "_id": record_doc["_id"], "name": record_doc.get("name"),
        "region_code": record_doc.get("region_code"), "entity_type": record_doc.get("entity_type"),
        "score": result.score, "risk_class": result.risk_class,
        "class_reason": result.class_reason, "base": result.base,
        "explanation": result.contributions, "model_version": result.model_version,
        "day": day.isoformat(), "computed_at": now,
    }
    return doc, result


def default_state(model: ScoreModel) -> tuple[float, str]:
    """An entity nothing is known against: the base score and its class."""
    return float(model.base), model.class_of(model.base)[0]


def is_news(model: ScoreModel, old: dict | None, doc: dict) -> bool:
    """A CreditChanged is due when score or class moved (from the default for a new entity)."""
    before = (old["score"], old["risk_class"]) if old else default_state(model)
    return before != (doc["score"], doc["risk_class"])


def credit_changed(doc: dict, old: dict | None, cause: str, correlation_id: str) -> dict:
    digest = hashlib.sha1(f"{cause}|{doc['score']}|{doc['risk_class']}|{doc['day']}".encode(
        "utf-8")).hexdigest()[:16]
    return make_event("CreditChanged", {
        "uscc": doc["_id"], "old_score": old["score"] if old else None,
        "new_score": doc["score"], "old_class": old["risk_class"] if old else None,
        "new_class": doc["risk_class"], "model_version": doc["model_version"],
        "cause_event_id": cause[:200], "computed_at": doc["computed_at"]},
        producer=PRODUCER, correlation_id=correlation_id,
        event_id=f"credit:{doc['_id']}:{digest}")


def public_records(explanation: list[dict]) -> list[dict]:
    """The contributions that are public: penalties still in publicity (not repaired, not
    faded, not a warning alone: warnings are not published) and valid positive records."""
    out = []
    for c in explanation:
        if c.get("kind") == "violation" and c.get("state") in ("fading", "partly_repaired") \
                and set(c.get("penalties") or ["?"]) != {"warning"}:
            out.append(c)
        elif c.get("kind") == "positive" and c.get("state") == "valid":
            out.append(c)
    return out
