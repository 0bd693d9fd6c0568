"""Person measures: imposed on the person id, lifted like the entity's, answered to registrars.

A person measure (catalog ``subject`` a person role, ``bars`` the positions it bars) binds the
persons its record names in that role (``rules.measures.bound_persons``). It is stored in
``person_restrictions``, never in ``restrictions``: the entity's gate-keeping answer, its
read model and ``/v1/changes`` do not see it, so a person measure never changes whether the
entity may pass. ``person_index`` lists each person's restriction ids (one read by ``_id``:
a query on another field scans a collection on FerretDB). Events: ``PersonRestrictionImposed``
and ``PersonRestrictionLifted``, staged in the outbox with the write that makes them true.

The answer (``answer``) is computed at the instant asked, never stored as a flag: a measure
applies at ``as_of`` when ``starts_at <= as_of < ends_at`` and it was not lifted by then.
"""
from __future__ import annotations

from datetime import datetime, timezone

from contracts.events import make_event
from rules.vocabulary import POSITIONS
from shared.locks import doc_lock

PRODUCER = "restrictions"


def ensure_indexes(db) -> None:
    db.person_restrictions.create_index("changed_at")


def key_of(measure_id: str, person_id: str) -> str:
    """What the source document lists per person measure in force (``persons_imposed``)."""
    return f"{measure_id}@{person_id}"


def restriction_id(violation_id: str, measure_id: str, person_id: str, generation: int = 0) -> str:
    """``violation#measure@<12 hex of the person id>`` (ids stay within the event id bound;
    the full person id is in the document), ``~n`` when imposed again after a lift."""
    base = f"{violation_id}#{measure_id}@{person_id[3:15]}"
    return base if generation == 0 else f"{base}~{generation}"


def view(doc: dict) -> dict:
    """The PersonRestrictionSchema view of a stored person restriction."""
    keys = ("person_id", "role", "name", "id_masked", "measure_id", "effect", "bars",
            "other_entities_only", "action", "bases", "legal_basis", "department", "memorandum",
            "cause", "starts_at", "ends_at", "rule", "reason")
    return {"restriction_id": doc["_id"], **{key: doc.get(key) for key in keys}}


def desired(catalog, record: dict, repairs: dict, active: bool) -> dict[str, dict]:
    """``key_of(measure, person) -> (choice, person)`` the record gives now.

    Lifted with the record: revocation (not active) and credit repair of the penalty's
    publicity take every person measure away, as they do the entity's. Early removal from the
    serious violation list (repair scope ``serious_list``) ends what the listing alone
    triggered, except a person measure whose ``on_early_removal`` says it does not end (a
    catalog rule with its reasoning: 企业信息公示暂行条例 第十八条's term is its own)."""
    if not active or "publicity" in repairs:
        return {}
    decisions = [catalog.decide(record)]
    if "serious_list" in repairs:
        kept = [m for m in decisions[0].person_measures
                if not m["measure"].ends_with_early_removal]
        decisions = [catalog.decide({**record, "listing": None})]
        decisions[0].measures.extend(kept)
    out: dict[str, dict] = {}
    for decision in decisions:
        for choice in decision.person_measures:
            for person in choice["persons"]:
                out.setdefault(key_of(choice["measure"].id, person["person_id"]),
                               {"choice": choice, "person": person})
    return out


class PersonMeasures:
    """Impose and lift the person measures of one violation (called by ``Reconciler``)."""

    def __init__(self, db, outbox, catalog, correlation_id: str):
        self.db, self.outbox, self.catalog = db, outbox, catalog
        self.correlation_id = correlation_id

    def reconcile(self, violation_id: str, source: dict, record: dict, reason_for,
                  now: datetime) -> tuple[int, int]:
        """Make the person restrictions of one violation what the record gives now;
        ``reason_for(measure_id)`` says why one that no longer applies is lifted."""
        wanted = desired(self.catalog, record, source.get("repairs") or {},
                         source["status"] == "active")
        in_force = set(source.get("persons_imposed", []))
        generations = source.get("person_generations", {})
        imposed = lifted = 0
        for key, item in wanted.items():
            if key not in in_force:
                rid = restriction_id(violation_id, item["choice"]["measure"].id,
                                     item["person"]["person_id"], generations.get(key, 0))
                imposed += self._impose(rid, violation_id, record, item, now)
        removed = set()
        for key in in_force - set(wanted):
            measure_id, _, person_id = key.partition("@")
            rid = restriction_id(violation_id, measure_id, person_id, generations.get(key, 0))
            lifted += self.lift(rid, reason_for(measure_id), now)
            removed.add(key)
        self._mark(violation_id, set(wanted), removed)
        return imposed, lifted

    def _impose(self, rid: str, violation_id: str, record: dict, item: dict, now) -> int:
        choice, person = item["choice"], item["person"]
        measure, trigger = choice["measure"], choice["trigger"]
        doc = {
            "person_id": person["person_id"], "role": person["role"], "name": person["name"],
            "id_masked": person["id_masked"], "measure_id": measure.id, "effect": measure.effect,
            "bars": list(measure.bars), "other_entities_only": measure.other_entities_only,
            "action": measure.action, "bases": [dict(b) for b in measure.bases],
            "legal_basis": measure.legal_basis, "department": measure.department,
            "memorandum": trigger.memorandum,
            "cause": {"uscc": record["uscc"], "entity_name": record["entity_name"],
                      "violation_id": violation_id, "agency_code": record["agency_code"],
                      "document_number": record["document_number"]},
            "starts_at": choice["starts_at"].astimezone(timezone.utc),
            "ends_at": choice["ends_at"].astimezone(timezone.utc) if choice["ends_at"] else None,
            "rule": trigger.id, "reason": choice["reason"],
        }
        event = make_event("PersonRestrictionImposed", {**doc, "restriction_id": rid},
                           producer=PRODUCER, correlation_id=self.correlation_id,
                           event_id=f"{rid}:imposed")
        # the index first lists the id, then the restriction exists: a reader may find an id
        # whose document is not there yet (skipped), never a restriction it cannot find
        self.db.person_index.update_one({"_id": doc["person_id"]},
                                        {"$addToSet": {"restriction_ids": rid}}, upsert=True)
        existing = self.outbox.insert_new(self.db.person_restrictions, [{
            "_id": rid, **doc, "lifted_at": None, "lift_reason": None, "imposed_at": now,
            "changed_at": now, "catalog_version": self.catalog.version,
            "event_ids": [event["event_id"]]}], [[event]])
        return 0 if existing else 1

    def lift(self, rid: str, reason: str, at: datetime) -> int:
        with doc_lock(self.db.person_restrictions, rid):
            doc = self.db.person_restrictions.find_one({"_id": rid, "lifted_at": None})
            if doc is None:
                return 0
            event = make_event("PersonRestrictionLifted", {
                "restriction": view(doc), "lifted_at": at, "lift_reason": reason},
                producer=PRODUCER, correlation_id=self.correlation_id,
                event_id=f"{rid}:lifted")
            with self.outbox.staged(self.db.person_restrictions, rid, [event]) as stage:
                result = self.db.person_restrictions.update_one(
                    {"_id": rid, "lifted_at": None},
                    {"$set": {"lifted_at": at, "lift_reason": reason, "changed_at": at},
                     "$push": {"event_ids": event["event_id"]}})
                if result.modified_count != 1:
                    stage.cancel()
                    return 0
        return 1

    def _mark(self, violation_id: str, present: set, removed: set) -> None:
        with doc_lock(self.db.sources, violation_id):
            source = self.db.sources.find_one(
                {"_id": violation_id}, {"persons_imposed": 1, "person_generations": 1}) or {}
            before = set(source.get("persons_imposed", []))
            after = (before | present) - removed
            generations = dict(source.get("person_generations", {}))
            for key in removed & before:
                generations[key] = generations.get(key, 0) + 1
            if after != before:
                self.db.sources.update_one({"_id": violation_id}, {"$set": {
                    "persons_imposed": sorted(after), "person_generations": generations}})


def restrictions_of(db, person_id: str) -> list[dict]:
    """Every person restriction ever imposed on ``person_id`` (two reads by ``_id``)."""
    return restrictions_of_many(db, [person_id]).get(person_id, [])


def restrictions_of_many(db, person_ids) -> dict[str, list[dict]]:
    """``person_id -> restrictions`` for a whole batch with two reads by ``_id`` (a batch of
    1,000 persons read one by one cost two round trips each)."""
    ids = sorted(set(person_ids))
    if not ids:
        return {}
    index = {d["_id"]: d.get("restriction_ids") or []
             for d in db.person_index.find({"_id": {"$in": ids}})}
    wanted = sorted({rid for rids in index.values() for rid in rids})
    docs = ({d["_id"]: d for d in db.person_restrictions.find({"_id": {"$in": wanted}},
                                                              {"event_ids": 0})}
            if wanted else {})
    return {pid: [docs[rid] for rid in rids if rid in docs] for pid, rids in index.items()}


def _aware(moment):
    return moment if moment is None or moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def applies(doc: dict, as_of: datetime) -> bool:
    starts, ends, lifted = _aware(doc["starts_at"]), _aware(doc.get("ends_at")), \
        _aware(doc.get("lifted_at"))
    return starts <= as_of and (ends is None or as_of < ends) and (lifted is None or as_of < lifted)


def answer(person: dict, docs: list[dict], positions, as_of: datetime,
           for_uscc: str | None = None, under_review=frozenset()) -> dict:
    """Per position asked: whether the person may take it at ``as_of`` and which measures say
    no (basis, end, the entity whose record caused them). A measure for other enterprises only
    (企业信息公示暂行条例 第十八条「其他企业」) does not bar the position at the entity that
    caused it: ``for_uscc`` (the entity the person would join) decides; without it, the
    measure bars and names the entity it spares in ``except_at``. ``under_review``: the
    violation ids with an open objection (异议): the measure still applies, flagged."""
    active = [d for d in docs if applies(d, as_of)]
    out = {}
    for position in positions or POSITIONS:
        measures = []
        for doc in active:
            if position not in doc["bars"]:
                continue
            spared = doc["cause"]["uscc"] if doc.get("other_entities_only") else None
            if spared and for_uscc == spared:
                continue
            measures.append({
                "restriction_id": doc["_id"], "measure_id": doc["measure_id"],
                "action": doc["action"], "role": doc["role"], "bases": doc["bases"],
                "legal_basis": doc["legal_basis"], "starts_at": _aware(doc["starts_at"]),
                "ends_at": _aware(doc.get("ends_at")), "except_at": spared,
                "cause": doc["cause"],
                "under_review": doc["cause"]["violation_id"] in under_review})
        out[position] = {"may_take": not measures, "measures": measures}
    return {**person, "as_of": as_of, "for_uscc": for_uscc, "positions": out,
            "may_take_all": all(p["may_take"] for p in out.values())}


def open_reviews(db, docs: list[dict]) -> set[str]:
    """The causing records with an open objection (restrictions' ``reviews``, by ``_id``)."""
    vids = sorted({d["cause"]["violation_id"] for d in docs})
    if not vids:
        return set()
    return {r["_id"] for r in db.reviews.find({"_id": {"$in": vids}}, {"open": 1})
            if r.get("open")}


def summary(result: dict) -> dict:
    """What the audit keeps of one person's answer: per position, may take, restriction ids."""
    return {"person_id": result["person_id"], "for_uscc": result.get("for_uscc"),
            "positions": {pos: {"may_take": entry["may_take"],
                                "restriction_ids": [m["restriction_id"] for m in entry["measures"]]}
                          for pos, entry in result["positions"].items()}}


def change(doc: dict) -> dict:
    """One entry of the registrar feed (``GET /v1/persons/changes``)."""
    return {"change": "lifted" if doc.get("lifted_at") else "imposed", "at": doc["changed_at"],
            "restriction_id": doc["_id"], "person_id": doc["person_id"],
            "id_masked": doc["id_masked"], "measure_id": doc["measure_id"],
            "bars": doc["bars"], "cause": doc["cause"], "starts_at": doc["starts_at"],
            "ends_at": doc["ends_at"], "lifted_at": doc.get("lifted_at"),
            "lift_reason": doc.get("lift_reason")}
