"""Turning violation facts into stored restrictions, and lifting them (no framework here).

``Reconciler.reconcile(violation_id)`` makes the stored restrictions of one violation equal to
what the catalog says for its current version: it imposes what is missing and lifts what no
longer applies (revocation, amendment). Every write is a single-document upsert or a guarded
update, its events staged in the outbox (``shared.outbox``), so running it twice changes
nothing.
"""
from __future__ import annotations

from datetime import datetime, timezone

from contracts.events import make_event
from contracts.violation import ViolationSchema
from shared.ledger import digest
from shared.outbox import Outbox
from shared.locks import doc_lock
from shared.store import insert_once
from rules.measures import Catalog
from services.restrictions.persons import PersonMeasures
from services.restrictions.persons import ensure_indexes as ensure_person_indexes

PRODUCER = "restrictions"


def ensure_indexes(db) -> None:
    db.restrictions.create_index("uscc")
    db.restrictions.create_index("source.violation_id")
    db.restrictions.create_index("changed_at")
    db.restrictions.create_index("ends_at")
    db.sources.create_index("uscc")
    ensure_person_indexes(db)


def restriction_id(violation_id: str, measure_id: str, generation: int = 0) -> str:
    """``violation#measure``; a measure imposed again after a lift gets ``~n``."""
    base = f"{violation_id}#{measure_id}"
    return base if generation == 0 else f"{base}~{generation}"


def restriction_doc(doc: dict) -> dict:
    """The RestrictionSchema view of a stored restriction."""
    keys = ("uscc", "entity_name", "sector", "measure_id", "action", "legal_basis", "department",
            "memorandum", "source", "starts_at", "ends_at", "rule", "reason")
    out = {key: doc.get(key) for key in keys}
    out["restriction_id"] = doc["_id"]
    # Restrictions stored before catalog format 2 carry no effect: they were imposed as
    # prohibitions, and are told as such until the migration (issue 18 item 6) re-decides them.
    out["effect"] = doc.get("effect") or "prohibit"
    out["subject"] = doc.get("subject") or "entity"
    out["bases"] = doc.get("bases") or []
    out["catalog_version"] = doc.get("catalog_version")
    return out


def lift_reason(source: dict) -> str:
    """Why the measures of a stored violation that no longer apply were lifted."""
    if source["status"] == "revoked":
        return f"violation revoked: {source.get('reason') or 'no reason given'}"
    repairs = source.get("repairs") or {}
    for scope, what in (("publicity", "the penalty's publicity ended"),
                        ("serious_list", "removed from the serious violation list")):
        if scope in repairs:
            repair = repairs[scope]
            return (f"credit repair approved (application {repair['application_id']} by "
                    f"{repair['decided_by']}): {what}; {repair['reason']}")
    return "violation amended: measure no longer applies"


class Reconciler:
    def __init__(self, db, catalog: Catalog, dispatch, correlation_id: str, projection=None,
                 outbox=None, lift_reason_for=None):
        self.db = db
        self.projection = projection  # the gate-keeping read model, written through
        self.catalog = catalog
        self.dispatch = dispatch
        self.correlation_id = correlation_id
        self.outbox = outbox or Outbox(db, dispatch)
        # (measure id, source) -> why a measure no longer applies; the catalog migration
        # says which article the new catalog follows instead.
        self.lift_reason_for = lift_reason_for or (lambda measure_id, source: lift_reason(source))

    def reconcile(self, violation_id: str, source: dict | None = None,
                  record: dict | None = None, risk_class=...) -> dict:
        """``source`` (the document as just written), ``record`` (loaded) and the entity's
        ``risk_class``, when the caller has them, spare reading and validating them again."""
        if source is None:
            source, record = self.db.sources.find_one({"_id": violation_id}), None
        if source is None:
            return {"imposed": 0, "lifted": 0}
        record = record if record is not None else ViolationSchema().load(source["record"])
        entity = ({"risk_class": risk_class} if risk_class is not ...
                  else self.db.entities.find_one({"_id": record["uscc"]}) or {})
        imposed = lifted = 0
        desired: dict[str, dict] = {}
        repairs = source.get("repairs") or {}
        if source["status"] == "active" and "publicity" not in repairs:
            # Removal from the serious violation list by credit repair: what the listing
            # alone triggered ends; what the penalty triggers stands.
            facts = {**record, "listing": None} if "serious_list" in repairs else record
            decision = self.catalog.decide(facts, entity.get("risk_class"))
            if decision.soft_tools:
                self._supervise(violation_id, record, decision)
            # Person measures (subject a person role) go on the person ids, apart (persons.py).
            desired = {m["measure"].id: m for m in decision.entity_measures}
        now = datetime.now(timezone.utc)
        # The source document lists the measures in force for it (the restrictions collection
        # is only ever read by id: a filter on another field scans it on FerretDB), and how
        # often each was lifted, so that a measure an amendment brings back is imposed anew.
        in_force = set(source.get("imposed", []))
        generations = source.get("generations", {})
        imposed = self._impose_all(violation_id, record, [
            (restriction_id(violation_id, mid, generations.get(mid, 0)), choice)
            for mid, choice in desired.items() if mid not in in_force], now)
        removed = []
        for measure_id in in_force - set(desired):
            reason = self.lift_reason_for(measure_id, source)
            rid = restriction_id(violation_id, measure_id, generations.get(measure_id, 0))
            lifted += self.lift(rid, reason, now)
            removed.append(measure_id)
        self._mark_imposed(violation_id, set(desired), set(removed), source)
        persons_imposed, persons_lifted = PersonMeasures(
            self.db, self.outbox, self.catalog, self.correlation_id).reconcile(
            violation_id, source, record, lambda mid: self.lift_reason_for(mid, source), now)
        return {"imposed": imposed, "lifted": lifted, "persons_imposed": persons_imposed,
                "persons_lifted": persons_lifted}

    def _mark_imposed(self, violation_id: str, present: set, removed: set,
                      source: dict | None = None) -> None:
        """Record which measures are in force for a violation (after the writes they name, so
        a crash in between is repaired by the redelivered event's reconcile). ``source``: the
        document as this reconciliation read or wrote it (its events are handled one at a
        time: nothing else changed ``imposed`` since), else it is read."""
        with doc_lock(self.db.sources, violation_id):
            if source is None:
                source = self.db.sources.find_one({"_id": violation_id},
                                                  {"imposed": 1, "generations": 1}) or {}
            before = set(source.get("imposed", []))
            after = (before | present) - removed
            generations = dict(source.get("generations", {}))
            for measure_id in removed & before:
                generations[measure_id] = generations.get(measure_id, 0) + 1
            if after != before:
                self.db.sources.update_one({"_id": violation_id}, {"$set": {
                    "imposed": sorted(after), "generations": generations}})

    def _impose_all(self, violation_id: str, record: dict, chosen: list[tuple[str, dict]],
                    now: datetime) -> int:
        """Insert the restrictions not yet in force with one batch write and one staged
        outbox entry; ids are deterministic, so one that exists already is left alone."""
        if not chosen:
            return 0
        docs, restrictions = [], []
        for rid, choice in chosen:
            measure, trigger = choice["measure"], choice["trigger"]
            doc = {
                "uscc": record["uscc"], "entity_name": record["entity_name"],
                "sector": measure.sector, "measure_id": measure.id, "action": measure.action,
                "effect": measure.effect, "subject": measure.subject,
                "bases": [dict(basis) for basis in measure.bases],
                "legal_basis": measure.legal_basis, "department": measure.department,
                "memorandum": trigger.memorandum,
                "source": {"violation_id": violation_id, "agency_code": record["agency_code"],
                           "document_number": record["document_number"],
                           "category": record["category"], "severity": record["severity"]},
                "starts_at": choice["starts_at"].astimezone(timezone.utc),
                "ends_at": (choice["ends_at"].astimezone(timezone.utc)
                            if choice["ends_at"] else None),
                "rule": trigger.id, "reason": choice["reason"],
                "catalog_version": self.catalog.version,
            }
            restrictions.append({**doc, "restriction_id": rid})
            docs.append({"_id": rid, **doc, "lifted_at": None, "lift_reason": None,
                         "imposed_at": now, "changed_at": now})
        # One event for the decision, not one per measure. Its id is derived from the set of
        # restrictions, so a redelivery (the same set: ``imposed`` is marked after) has the same.
        rids = sorted(doc["_id"] for doc in docs)
        event = make_event("RestrictionsImposed", {
            "uscc": record["uscc"], "violation_id": violation_id, "restrictions": restrictions},
            producer=PRODUCER, correlation_id=self.correlation_id,
            event_id=f"{violation_id}:imposed:{digest(rids)[:16]}")
        for doc in docs:
            doc["event_ids"] = [event["event_id"]]
        existing = self.outbox.insert_new_shared(self.db.restrictions, docs, event)
        for index, doc in enumerate(docs):
            if index not in existing:
                self._project(doc)
        return len(docs) - len(existing)

    def _project(self, doc: dict) -> None:
        if self.projection is not None:
            self.projection.apply(doc)

    def lift(self, restriction_id: str, reason: str, at: datetime) -> int:
        with doc_lock(self.db.restrictions, restriction_id):
            doc = self.db.restrictions.find_one({"_id": restriction_id, "lifted_at": None})
            if doc is None:
                return 0
            event = make_event("RestrictionLifted", {
                "restriction": restriction_doc(doc), "lifted_at": at, "lift_reason": reason},
                producer=PRODUCER, correlation_id=self.correlation_id,
                event_id=f"{restriction_id}:lifted")
            with self.outbox.staged(self.db.restrictions, restriction_id, [event]) as stage:
                result = self.db.restrictions.update_one(
                    {"_id": restriction_id, "lifted_at": None},
                    {"$set": {"lifted_at": at, "lift_reason": reason, "changed_at": at},
                     "$push": {"event_ids": event["event_id"]}})
                if result.modified_count != 1:
                    stage.cancel()
                    return 0
        self._project({**doc, "lifted_at": at})
        return 1

    def announce_expiries(self, now: datetime, limit: int = 500) -> int:
        """Emit a lift event for each restriction whose end date has passed (once).

        Candidates come from the read model (the store would be scanned); each is re-read by
        id and updated only if still due."""
        count = 0
        due_ids = self.projection.due(now, limit) if self.projection is not None else []
        for rid in due_ids:
            doc = self.db.restrictions.find_one({"_id": rid})
            if doc is None or doc.get("lifted_at") or doc.get("expiry_announced"):
                if doc is not None:
                    self.projection.settle(doc["uscc"], rid)
                continue
            event = make_event("RestrictionLifted", {
                "restriction": restriction_doc(doc), "lifted_at": doc["ends_at"],
                "lift_reason": "expired: end of the measure's period"},
                producer=PRODUCER, correlation_id=self.correlation_id,
                event_id=f"{doc['_id']}:lifted")
            with doc_lock(self.db.restrictions, doc["_id"]), \
                    self.outbox.staged(self.db.restrictions, doc["_id"], [event]) as stage:
                result = self.db.restrictions.update_one(
                    {"_id": doc["_id"], "expiry_announced": {"$ne": True}, "lifted_at": None},
                    {"$set": {"expiry_announced": True, "changed_at": now},
                     "$push": {"event_ids": event["event_id"]}})
                if result.modified_count == 1:
                    count += 1
                else:
                    stage.cancel()
            if result.modified_count == 1:
                self._project({**doc, "expiry_announced": True})
        return count

    def _supervise(self, violation_id: str, record: dict, decision) -> None:
        event = make_event("SupervisionActionRecorded", {
            "uscc": record["uscc"], "violation_id": violation_id,
            "actions": decision.soft_tools, "rule": ", ".join(decision.rules),
            "reason": decision.reason}, producer=PRODUCER, correlation_id=self.correlation_id,
            event_id=f"{violation_id}:supervision")
        with self.outbox.staged(self.db.supervision_actions, violation_id, [event]) as stage:
            if not insert_once(self.db.supervision_actions, violation_id, {
                    "uscc": record["uscc"], "actions": decision.soft_tools,
                    "rules": decision.rules, "reason": decision.reason,
                    "recorded_at": datetime.now(timezone.utc),
                    "event_ids": [event["event_id"]]}):
                stage.cancel()
