"""Person records kept by the registry: who a person id is (type, mask, name), what refers to
them, who looked them up and why, and deletion once nothing refers to them and the retention
period of ``catalog/personal_data.json`` has passed.

A person "ends" when no active violation names them, no entity has them as its legal
representative or in a current appointment (``appointments``), and no person measure on them
is in force (``person_bars``, from restrictions' events). ``ended_at`` is when that was first
seen.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from rules.personal_data import Retention
from services.registry.appointments import active_bar_count

def ensure_indexes(db) -> None:
    db.entity_violations.create_index("person_id")
    db.persons.create_index("ended_at")
    db.person_access.create_index("person_id")


def refresh(db, person_id: str | None, rep: dict | None = None, now=None) -> None:
    """Upsert what is known of the person (``rep``: the protected form) and recompute whether
    anything current refers to them."""
    if not person_id:
        return
    now = now or datetime.now(timezone.utc)
    if rep:
        db.persons.update_one({"_id": person_id}, {
            "$set": {"document_type": rep.get("document_type"), "id_masked": rep["id_masked"],
                     "name": rep["name"], "updated_at": now},
            "$setOnInsert": {"created_at": now}}, upsert=True)
    current = (db.entity_violations.count_documents({"person_id": person_id, "status": "active"})
               + db.entities.count_documents({"legal_representative.person_id": person_id})
               + db.appointments.count_documents({"person_id": person_id, "to": None})
               + active_bar_count(db, person_id, now))
    if current:
        db.persons.update_one({"_id": person_id}, {"$unset": {"ended_at": ""}})
    else:
        db.persons.update_one({"_id": person_id, "ended_at": None}, {"$set": {"ended_at": now}})


def look_up(db, person_id: str, asked_by: str, purpose: str, now=None) -> dict | None:
    """The person's record, after logging who asked and why (also when not found)."""
    now = now or datetime.now(timezone.utc)
    db.person_access.insert_one({"person_id": person_id, "asked_by": asked_by,
                                 "purpose": purpose, "at": now})
    doc = db.persons.find_one({"_id": person_id})
    if doc is None:
        return None
    return {"person_id": doc["_id"], "document_type": doc.get("document_type"),
            "id_masked": doc["id_masked"], "name": doc["name"],
            "entities": [e["_id"] for e in db.entities.find(
                {"legal_representative.person_id": person_id}, {"_id": 1})],
            "violations": [{"violation_id": v["_id"], "status": v["status"]}
                           for v in db.entity_violations.find({"person_id": person_id},
                                                              {"status": 1})],
            "ended_at": doc.get("ended_at")}


def purge(db, retention: Retention, now=None) -> int:
    """Delete the persons that ended more than ``retention.days`` ago; returns how many."""
    now = now or datetime.now(timezone.utc)
    cutoff = now - timedelta(days=retention.days)
    deleted = 0
    for doc in db.persons.find({"ended_at": {"$lte": cutoff}}, {"_id": 1}):
        refresh(db, doc["_id"], now=now)  # something may refer to them again
        result = db.persons.delete_one({"_id": doc["_id"], "ended_at": {"$lte": cutoff}})
        deleted += result.deleted_count
    return deleted
