"""The gate-keeping read model: every entity's restriction windows, in memory.

Gate-keeping answers must be fast and exact. On the local store (FerretDB 1.x) every keyed read
scans its collection, so a lookup straight from the store grows with the number of
restrictions (measured: 700 ms at 2,600). The restrictions service therefore answers from this
projection of its own store, kept current three ways:

- the instance that writes a restriction applies it at once (write-through);
- every instance hears every RestrictionImposed / RestrictionLifted (a broadcast queue each);
- a periodic sync re-reads what changed since the last one (covers start-up and anything a
  broadcast queue missed while down).

Applying the same state twice, or an older one after a newer, changes nothing: a restriction's
state only moves forward (imposed -> lifted / expiry announced).
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

VIEW_FIELDS = ("uscc", "sector", "measure_id", "action", "effect", "subject", "bases",
               "legal_basis", "department",
               "memorandum", "rule", "source", "starts_at", "ends_at", "lifted_at",
               "expiry_announced", "catalog_version")


def _utc(value):
    if value is None or isinstance(value, datetime) and value.tzinfo:
        return value
    if isinstance(value, str):
        return datetime.fromisoformat(value)
    return value.replace(tzinfo=timezone.utc)


def view_of(doc: dict) -> dict:
    view = {key: doc.get(key) for key in VIEW_FIELDS}
    view["_id"] = doc.get("_id") or doc.get("restriction_id")
    view["source"] = {"agency_code": doc["source"]["agency_code"],
                      "document_number": doc["source"]["document_number"]}
    for key in ("starts_at", "ends_at", "lifted_at"):
        view[key] = _utc(view[key])
    # Stored before catalog format 2 (or a v1 event): imposed as a prohibition, told as one.
    view["effect"] = view["effect"] or "prohibit"
    view["subject"] = view["subject"] or "entity"
    view["bases"] = _shared_bases(view["measure_id"], view["legal_basis"], view["bases"])
    return view


_BASES: dict[tuple[str, str], list] = {}


def _shared_bases(measure_id, legal_basis, bases) -> list:
    """One list of bases per measure and wording, shared by every view that shows it (the read
    model holds a view per restriction; the bases are the same text for all of a measure's).
    Read-only: nothing may modify it."""
    if not bases:
        return []
    key = (measure_id, legal_basis)
    shared = _BASES.get(key)
    if shared is None:
        shared = _BASES[key] = list(bases)
    return shared


class StatusProjection:
    def __init__(self):
        self.by_entity: dict[str, dict[str, dict]] = {}
        self.known: set[str] = set()
        self.synced_at: datetime | None = None
        # Objections: violation id -> (open objection ids, decided objection ids). A record
        # with an open objection is under review; a decided one never reopens.
        self.reviews: dict[str, tuple[set, set]] = {}

    def review(self, violation_id: str, objection_id: str, decided: bool) -> None:
        opened, closed = self.reviews.setdefault(violation_id, (set(), set()))
        if decided:
            closed.add(objection_id)
            opened.discard(objection_id)
        elif objection_id not in closed:
            opened.add(objection_id)

    def under_review(self, violation_id: str) -> bool:
        return bool(self.reviews.get(violation_id, (None, None))[0])

    def apply(self, doc: dict) -> None:
        view = view_of(doc)
        current = self.by_entity.setdefault(view["uscc"], {})
        old = current.get(view["_id"])
        if old is not None and (old["lifted_at"] or old["expiry_announced"]) and not (
                view["lifted_at"] or view["expiry_announced"]):
            return  # never move back from lifted to imposed
        if view["catalog_version"] is None and old is not None:
            view["catalog_version"] = old["catalog_version"]  # events do not carry it
        current[view["_id"]] = view
        self.known.add(view["uscc"])

    def know(self, uscc: str) -> None:
        self.known.add(uscc)

    def docs_for(self, uscc: str) -> list[dict]:
        return list(self.by_entity.get(uscc, {}).values())

    def is_known(self, uscc: str) -> bool:
        return uscc in self.known

    def sync(self, db, overlap: timedelta = timedelta(seconds=10)) -> int:
        """Read what changed since the last sync (everything the first time)."""
        started = datetime.now(timezone.utc)
        query = {} if self.synced_at is None else {"changed_at": {"$gte": self.synced_at - overlap}}
        count = 0
        for doc in db.restrictions.find(query, {"event_ids": 0}):
            self.apply(doc)
            count += 1
        for entity in db.entities.find({}, {"_id": 1}):
            self.known.add(entity["_id"])
        for doc in db.reviews.find({}):  # one small document per record ever objected to
            self.reviews[doc["_id"]] = (set(doc.get("open", [])), set(doc.get("decided", [])))
        self.synced_at = started
        return count

    def due(self, now: datetime, limit: int = 500) -> list[str]:
        """Ids of restrictions whose end has passed and whose expiry nobody announced yet."""
        found = []
        for views in self.by_entity.values():
            for view in views.values():
                if (view["ends_at"] is not None and view["ends_at"] <= now
                        and view["lifted_at"] is None and not view["expiry_announced"]):
                    found.append(view["_id"])
                    if len(found) >= limit:
                        return found
        return found

    def settle(self, uscc: str, restriction_id: str) -> None:
        """Another instance announced it (or it was lifted): stop proposing it."""
        view = self.by_entity.get(uscc, {}).get(restriction_id)
        if view is not None:
            view["expiry_announced"] = True

    def size(self) -> int:
        return sum(len(v) for v in self.by_entity.values())
