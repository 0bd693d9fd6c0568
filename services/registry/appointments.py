"""Who held which position at an entity, and from when to when; and whether they were barred.

The registry used to overwrite an entity's legal representative. Each registration now ends
the appointments it no longer names (``to`` = its ``effective_from``) and opens those it names
anew, in ``appointments`` (one document per entity, position, person and start: history is
never rewritten). A person measure (restrictions' ``PersonRestrictionImposed``/``Lifted``, kept
here in ``person_bars``) that bars the position at the instant of the appointment does not stop
the registration (it happened, and the registry records what happened): the appointment is
recorded with a ``flag`` naming the bar, and ``BarredAppointmentRecorded`` tells regulators.
"""
from __future__ import annotations

from datetime import datetime, timezone

from shared.store import insert_once

POSITIONS_HELD = ("legal_representative", "principal", "director", "supervisor",
                  "senior_manager")


def ensure_indexes(db) -> None:
    db.appointments.create_index("uscc")
    db.appointments.create_index("person_id")
    db.person_bars.create_index("person_id")


def _aware(moment):
    return moment if moment is None or moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def remember_bar(db, restriction: dict, lifted_at=None, lift_reason=None) -> None:
    """Keep what the registry needs of a person measure (no document number: a person id)."""
    fields = {"person_id": restriction["person_id"], "measure_id": restriction["measure_id"],
              "bars": restriction["bars"],
              "other_entities_only": restriction["other_entities_only"],
              "cause_uscc": restriction["cause"]["uscc"],
              "violation_id": restriction["cause"]["violation_id"],
              "legal_basis": restriction["legal_basis"], "starts_at": restriction["starts_at"],
              "ends_at": restriction["ends_at"]}
    if lifted_at is None:
        # imposed: never undoes a lift that arrived first (``lifted_at`` absent = not lifted:
        # FerretDB 1.x drops a null from $setOnInsert)
        db.person_bars.update_one({"_id": restriction["restriction_id"]}, {"$set": fields},
                                  upsert=True)
    else:
        db.person_bars.update_one({"_id": restriction["restriction_id"]}, {"$set": {
            **fields, "lifted_at": lifted_at, "lift_reason": lift_reason}}, upsert=True)


def bars_on(db, person_id: str, position: str, uscc: str, at: datetime) -> list[dict]:
    """The person measures barring ``person_id`` from ``position`` at entity ``uscc`` at ``at``."""
    found = []
    for bar in db.person_bars.find({"person_id": person_id}):
        if position not in bar["bars"]:
            continue
        if bar.get("other_entities_only") and bar["cause_uscc"] == uscc:
            continue  # 其他企业: the bar spares the entity that caused it
        starts, ends, lifted = (_aware(bar["starts_at"]), _aware(bar.get("ends_at")),
                                _aware(bar.get("lifted_at")))
        if starts <= at and (ends is None or at < ends) and (lifted is None or at < lifted):
            found.append({"restriction_id": bar["_id"], "measure_id": bar["measure_id"],
                          "legal_basis": bar["legal_basis"], "ends_at": ends,
                          "cause_uscc": bar["cause_uscc"]})
    return found


def active_bar_count(db, person_id: str, now: datetime) -> int:
    return sum(1 for bar in db.person_bars.find({"person_id": person_id})
               if bar.get("lifted_at") is None
               and (bar.get("ends_at") is None or now < _aware(bar["ends_at"])))


def named(legal_representative: dict | None, officers: list[dict] | None) -> dict:
    """``(position, person_id) -> person`` a registration names."""
    out = {}
    if legal_representative and legal_representative.get("person_id"):
        out[("legal_representative", legal_representative["person_id"])] = legal_representative
    for officer in officers or ():
        if officer.get("person_id"):
            out.setdefault((officer["role"], officer["person_id"]), officer)
    return out


def record(db, uscc: str, names: dict, positions_given: set, effective_from: datetime,
           recorded_by: str, override_reason: str | None, now: datetime) -> list[dict]:
    """End the current appointments of the positions given that the registration no longer
    names, open the new ones (each flagged if a bar applies); returns the new appointments.
    ``positions_given``: the positions this registration speaks for (an absent
    ``officers`` leaves directors and managers as they were)."""
    current = list(db.appointments.find({"uscc": uscc, "to": None}))
    held = {(a["role"], a["person_id"]): a for a in current}
    for key, appointment in held.items():
        if key[0] in positions_given and key not in names:
            db.appointments.update_one({"_id": appointment["_id"], "to": None},
                                       {"$set": {"to": effective_from, "ended_by": recorded_by}})
    opened = []
    for (position, person_id), person in names.items():
        if (position, person_id) in held:
            continue
        flags = bars_on(db, person_id, position, uscc, effective_from)
        doc = {"_id": f"{uscc}|{position}|{person_id}|{effective_from.isoformat()}",
               "uscc": uscc, "role": position, "person_id": person_id, "name": person["name"],
               "id_masked": person["id_masked"],
               "document_type": person.get("document_type"), "from": effective_from,
               "to": None, "recorded_at": now, "recorded_by": recorded_by, "flags": flags,
               "override_reason": override_reason if flags else None}
        # insert, not an upsert with $setOnInsert: FerretDB 1.x drops null and empty-list
        # values from $setOnInsert (measured: {"to": null, "flags": []} were not stored)
        insert_once(db.appointments, doc.pop("_id"), doc)
        opened.append({"_id": f"{uscc}|{position}|{person_id}|{effective_from.isoformat()}",
                       **doc})
    return opened


def history(db, uscc: str) -> list[dict]:
    """Every appointment at the entity, earliest first."""
    return [{k: v for k, v in a.items() if k not in ("_id", "event_ids")}
            for a in db.appointments.find({"uscc": uscc}).sort([("from", 1), ("role", 1)])]


def current_appointments(db, person_id: str) -> int:
    return db.appointments.count_documents({"person_id": person_id, "to": None})
