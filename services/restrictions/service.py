"""Restrictions service: the joint punishment engine and the gate-keeping API.

Gate-keeping answers come from this service's own store (no RPC hop) and are audited.
"""
from __future__ import annotations

import os
import time
import uuid
from datetime import datetime, timezone

import eventlet
from nameko.extensions import DependencyProvider
from nameko.timer import timer

from marshmallow import ValidationError

from contracts.common import field_errors
from contracts.events import read_event
from contracts.persons import PersonsStatusRequestSchema
from contracts.violation import ViolationSchema
from shared import identity as identity_documents
from shared.identity import IdentityKey
from shared.outbox import Outbox
from shared.auth import Caller
from shared.entrypoints import (broadcast_handler, event_handler, http, json_response,
                                problem, read_json)
from shared.locks import doc_lock
from shared.logging import CorrelationId, Log
from shared.mongo import Mongo
from shared.queries import decode_cursor, encode_cursor
from shared.service import Dispatcher, published
from shared.store import apply_versioned, insert_once
from rules import loader
from rules.measures import InvalidCatalog, orphans
from services.restrictions import gate
from services.restrictions import persons as person_measures
from services.restrictions.audit import Audit, find_answer, summary
from services.restrictions.lifecycle import Reconciler, ensure_indexes
from services.restrictions.projection import StatusProjection

PROJECTION_SYNC_SECONDS = float(os.environ.get("PROJECTION_SYNC_SECONDS", "30"))


class Projection(DependencyProvider):
    """One status read model per container, shared by its workers (see projection.py)."""

    def setup(self):
        self.projection = StatusProjection()

    def get_dependency(self, worker_ctx):
        return self.projection

    def ready(self) -> bool:
        """Loaded once the first sync read the store (``/readyz``)."""
        return self.projection.synced_at is not None


# Refuse to start on an invalid catalog file: the import fails with every problem named.
CATALOGS = loader.load()
CATALOG = CATALOGS.measures
HISTORY = CATALOGS.history  # the catalog versions over time: as_of answers (rules/versions.py)
CLASS_RULES = gate.class_based_rules(CATALOG)  # never named to gate-keepers (class not public)


def prepare_store(db) -> None:
    """At start: indexes, and refuse a catalog that would orphan active restrictions."""
    ensure_indexes(db)
    active = db.restrictions.distinct(
        "measure_id", {"lifted_at": None, "expiry_announced": {"$ne": True}})
    # person measures too: a lift or an answer names the measure the catalog must still hold
    active = set(active) | set(db.person_restrictions.distinct("measure_id", {"lifted_at": None}))
    problems = orphans(CATALOG, active)
    if problems:
        raise InvalidCatalog(problems)


@published
class RestrictionsService:
    name = "restrictions"

    db = Mongo("restrictions", indexes=prepare_store)
    projection = Projection()
    audit = Audit()
    dispatch = Dispatcher()
    log = Log()
    caller = Caller()
    correlation_id = CorrelationId()
    # POST /v1/persons:status receives identity documents: this service keys them into person
    # ids (docs/personal-data.md: the third holder of the key); numbers are never stored.
    identity = IdentityKey()

    def _reconciler(self) -> Reconciler:
        return Reconciler(self.db, CATALOG, self.dispatch, self.correlation_id, self.projection)

    # -- events ----------------------------------------------------------------------------
    @event_handler("violations", "ViolationRecorded")
    def on_violation_recorded(self, body):
        self._apply_violation(body)

    @event_handler("violations", "ViolationAmended")
    def on_violation_amended(self, body):
        self._apply_violation(body)

    @event_handler("violations", "ViolationRevoked")
    def on_violation_revoked(self, body):
        self._apply_violation(body)

    def _apply_violation(self, body):
        envelope, payload = read_event(body)
        record = ViolationSchema().dump(payload["record"])
        vid = payload["violation_id"]
        fields_ = {"uscc": record["uscc"], "status": payload["status"], "record": record,
                   "reason": payload.get("reason"), "event_id": envelope["event_id"],
                   "version": payload["version"]}
        # A first version is a plain insert, and then the source is what was written: the
        # reconciliation takes it (and the record as loaded) instead of reading it back.
        source = {"_id": vid, **fields_} if insert_once(self.db.sources, vid, fields_) else None
        changed = source is not None or apply_versioned(
            self.db.sources, vid, payload["version"], fields_)
        # Even when nothing changed: an instance killed between the two writes left it undone.
        risk_class = self._remember_violation(record["uscc"], vid)
        # Reconcile even when nothing changed: it finishes work a crash may have interrupted.
        result = self._reconciler().reconcile(vid, source=source, record=payload["record"],
                                              risk_class=risk_class)
        self.log.info("violation applied", violation_id=vid, version=payload["version"],
                      new_version=changed, **result)

    # -- credit repair and objections (events of the repair service) ------------------------
    @event_handler("repair", "RecordRepaired")
    def on_record_repaired(self, body):
        """Credit repair approved: lift what depended on the record (all of its measures for
        ``publicity``, what the listing triggered for ``serious_list``), with the reason."""
        _, payload = read_event(body)
        vid = payload["violation_id"]
        with doc_lock(self.db.sources, vid):
            source = self.db.sources.find_one({"_id": vid}, {"repairs": 1})
            if source is None:  # the violation's own event is still on its way: retry
                raise LookupError(f"violation {vid} not known yet")
            repairs = dict(source.get("repairs") or {})
            if payload["scope"] not in repairs:
                repairs[payload["scope"]] = {
                    "application_id": payload["application_id"],
                    "decided_by": payload["decided_by"], "decided_at": payload["decided_at"],
                    "reason": payload["reason"]}
                self.db.sources.update_one({"_id": vid}, {"$set": {"repairs": repairs}})
        result = self._reconciler().reconcile(vid)
        self.log.info("record repaired", violation_id=vid, scope=payload["scope"], **result)

    @event_handler("repair", "ObjectionOpened")
    def on_objection_opened(self, body):
        self._review(body, decided=False)

    @event_handler("repair", "ObjectionDecided")
    def on_objection_decided(self, body):
        self._review(body, decided=True)

    def _review(self, body, decided: bool):
        """A record under an open objection is flagged in gate-keeping answers. Stored per
        record in ``reviews`` (open and decided objection ids: a late ``opened`` never
        reopens a decided one)."""
        _, payload = read_event(body)
        vid, oid = payload["violation_id"], payload["objection_id"]
        with doc_lock(self.db.reviews, vid):
            doc = self.db.reviews.find_one({"_id": vid}) or {"open": [], "decided": []}
            opened, closed = set(doc["open"]), set(doc["decided"])
            if decided:
                closed.add(oid)
                opened.discard(oid)
            elif oid not in closed:
                opened.add(oid)
            if (opened, closed) != (set(doc["open"]), set(doc["decided"])):
                self.db.reviews.update_one({"_id": vid}, {"$set": {
                    "open": sorted(opened), "decided": sorted(closed)}}, upsert=True)
        self.projection.review(vid, oid, decided)

    @broadcast_handler("repair", "ObjectionOpened")
    def project_objection_opened(self, body):
        _, payload = read_event(body)
        self.projection.review(payload["violation_id"], payload["objection_id"], False)

    @broadcast_handler("repair", "ObjectionDecided")
    def project_objection_decided(self, body):
        _, payload = read_event(body)
        self.projection.review(payload["violation_id"], payload["objection_id"], True)

    # -- the read model, on every instance (broadcast; the periodic sync covers losses) -----
    @broadcast_handler("restrictions", "RestrictionsImposed")
    def project_imposed_many(self, body):
        _, payload = read_event(body)
        for restriction in payload["restrictions"]:
            self.projection.apply({**restriction, "lifted_at": None})

    @broadcast_handler("restrictions", "RestrictionImposed")  # the shape before, one release
    def project_imposed(self, body):
        _, payload = read_event(body)
        self.projection.apply({**payload, "lifted_at": None})

    @broadcast_handler("restrictions", "RestrictionLifted")
    def project_lifted(self, body):
        _, payload = read_event(body)
        self.projection.apply({**payload["restriction"], "lifted_at": payload["lifted_at"]})

    @broadcast_handler("registry", "EntityRegistered")
    def project_entity(self, body):
        _, payload = read_event(body)
        self.projection.know(payload["uscc"])

    @timer(interval=PROJECTION_SYNC_SECONDS, eager=True)
    def sync_projection(self):
        changed = self.projection.sync(self.db)
        if changed:
            self.log.info("projection synced", changed=changed, size=self.projection.size())

    @event_handler("registry", "EntityRegistered")
    def on_entity_registered(self, body):
        _, payload = read_event(body)
        with doc_lock(self.db.entities, payload["uscc"]):
            self.db.entities.update_one({"_id": payload["uscc"]}, {
                "$set": {"name": payload["name"], "provisional": payload["provisional"]}},
                upsert=True)
        self.projection.know(payload["uscc"])

    @event_handler("scoring", "CreditChanged")
    def on_credit_changed(self, body):
        _, payload = read_event(body)
        code = payload["uscc"]
        new_class, computed_at = payload["new_class"], payload.get("computed_at")
        with doc_lock(self.db.entities, code):
            previous = self.db.entities.find_one({"_id": code}) or {}
        known_at = previous.get("class_computed_at")
        stale = bool(computed_at and known_at and computed_at < known_at)
        if stale:
            new_class = previous.get("risk_class")  # an older score arrived late: ignored
        if previous.get("risk_class") == new_class == previous.get("reconciled_class"):
            if not stale and computed_at != known_at:
                with doc_lock(self.db.entities, code):
                    self.db.entities.update_one({"_id": code}, {"$set": {
                        "class_computed_at": computed_at}}, upsert=True)
            return
        # The class and ``reconciled_class`` are written together after the violations were
        # revisited with it (one write, not two): a redelivery after an instance died in
        # between finds the class behind and does the work again (it is idempotent). The
        # entity's events are handled one at a time, so nothing reads the class meanwhile.
        reconciler = self._reconciler()
        for vid in previous.get("violation_ids", []):
            reconciler.reconcile(vid, risk_class=new_class)
        changes = {"reconciled_class": new_class}
        if not stale:
            changes.update(risk_class=new_class, class_computed_at=computed_at)
        with doc_lock(self.db.entities, code):
            self.db.entities.update_one({"_id": code}, {"$set": changes}, upsert=True)

    def _remember_violation(self, code: str, vid: str) -> str | None:
        """The entity document lists its violations, so a change of risk class can revisit
        them by id (a query on another field scans the collection on FerretDB). Returns the
        entity's risk class as stored (the reconciliation needs it: not read twice)."""
        with doc_lock(self.db.entities, code):
            entity = self.db.entities.find_one({"_id": code},
                                               {"violation_ids": 1, "risk_class": 1})
            ids = (entity or {}).get("violation_ids", [])
            # an unknown entity is a plain insert (an upsert costs ~25x more on FerretDB)
            if entity is not None or not insert_once(self.db.entities, code,
                                                     {"violation_ids": [vid]}):
                if vid not in ids:
                    self.db.entities.update_one(
                        {"_id": code}, {"$set": {"violation_ids": ids + [vid]}}, upsert=True)
        return (entity or {}).get("risk_class")

    # -- gate-keeping HTTP API -------------------------------------------------------------
    @http("GET", "/v1/entities/<string:code>/status", roles=("gatekeeper", "regulator"))
    def get_status(self, request, code):
        try:
            code = gate.parse_code(code)
            sectors, as_of = gate.parse_query(request.args)
        except gate.BadQuery as exc:
            return problem(400, "invalid query", exc.errors)
        if not self._projection_ready():
            return problem(503, "starting up: the status read model is loading; retry shortly")
        docs = self.projection.docs_for(code)
        body = gate.answer(code, docs, sectors, as_of, self.projection.is_known(code),
                           self.projection.under_review, withheld=CLASS_RULES, history=HISTORY)
        return json_response(200, self._audited(request, body))

    @http("POST", "/v1/status:batch", roles=("gatekeeper", "regulator"))
    def post_status_batch(self, request):
        data = read_json(request)
        if not isinstance(data, dict) or not isinstance(data.get("codes"), list):
            return problem(400, "invalid request", [{"field": "codes",
                                                     "problem": "must be a list of USCCs"}])
        codes = data["codes"]
        if not 1 <= len(codes) <= gate.MAX_BATCH:
            return problem(400, "invalid request", [{"field": "codes", "problem":
                                                     f"must hold 1 to {gate.MAX_BATCH} codes, got {len(codes)}"}])
        errors, valid = [], []
        for i, raw in enumerate(codes):
            try:
                valid.append(gate.parse_code(raw if isinstance(raw, str) else "", f"codes[{i}]"))
            except gate.BadQuery as exc:
                errors.extend(exc.errors)
        try:
            args = {k: v for k, v in data.items() if k in ("sector", "as_of") and v is not None}
            extra = [k for k in data if k not in ("codes", "sector", "as_of")]
            errors.extend({"field": k, "problem": "unknown field"} for k in extra)
            sectors, as_of = gate.parse_query(args)
        except gate.BadQuery as exc:
            errors.extend(exc.errors)
        if errors:
            return problem(400, "invalid request", errors)
        if not self._projection_ready():
            return problem(503, "starting up: the status read model is loading; retry shortly")
        results = [gate.answer(code, self.projection.docs_for(code), sectors, as_of,
                               self.projection.is_known(code), self.projection.under_review,
                               withheld=CLASS_RULES, history=HISTORY)
                   for code in dict.fromkeys(valid)]
        return json_response(200, self._audited(request, {"as_of": as_of, "results": results}))

    @http("GET", "/v1/changes", roles=("gatekeeper", "regulator"))
    def get_changes(self, request):
        """Imposed and lifted restrictions in change order; ``next`` is the cursor to resume."""
        since = request.args.get("since")
        errors = []
        try:
            # 1-1,000: ``limit(0)`` is "no limit" to the store (the whole feed in one answer)
            limit = int(request.args.get("limit", 100))
            if not 1 <= limit <= 1000:
                raise ValueError
        except ValueError:
            errors.append({"field": "limit", "problem": "must be a whole number from 1 to 1000"})
        query = {}
        try:
            if since:
                at, rid = decode_cursor(since)
                query = {"$or": [{"changed_at": {"$gt": at}},
                                 {"changed_at": at, "_id": {"$gt": rid}}]}
        except ValueError:
            errors.append({"field": "since",
                           "problem": "must be the `next` cursor of a previous answer"})
        if errors:
            return problem(400, "invalid query", errors)
        docs = list(self.db.restrictions.find(query, {"event_ids": 0})
                    .sort([("changed_at", 1), ("_id", 1)]).limit(limit))
        changes = [{
            "change": "lifted" if d.get("lifted_at") or d.get("expiry_announced") else "imposed",
            "at": d["changed_at"], "restriction_id": d["_id"], "uscc": d["uscc"],
            "sector": d["sector"], "measure_id": d["measure_id"], "starts_at": d["starts_at"],
            "ends_at": d["ends_at"], "lifted_at": d.get("lifted_at"),
            "lift_reason": d.get("lift_reason"),
        } for d in docs]
        cursor = encode_cursor(docs[-1]["changed_at"], docs[-1]["_id"]) if docs else since
        return json_response(200, {"changes": changes, "next": cursor})

    # -- registration and licence offices: persons (issue 21) -------------------------------
    @http("POST", "/v1/persons:status", roles=("registrar",))
    def post_persons_status(self, request):
        """Per person and position: may take it at ``as_of``, or the measures that say no."""
        try:
            data = PersonsStatusRequestSchema().load(read_json(request))
        except ValidationError as exc:
            return problem(400, "invalid request", field_errors(exc.messages))
        as_of = data.get("as_of") or datetime.now(timezone.utc)
        protected = [self.identity.protect(identity_documents.document(
            asked["document_type"], asked.pop("id_number"), asked.get("issuing_country")))
            for asked in data["persons"]]
        found = person_measures.restrictions_of_many(self.db, [p["person_id"] for p in protected])
        reviewed = person_measures.open_reviews(
            self.db, [d for docs in found.values() for d in docs])
        results = [person_measures.answer(
            {"person_id": person["person_id"], "id_masked": person["id_masked"],
             "document_type": person["document_type"]},
            found.get(person["person_id"], []), data.get("positions"), as_of,
            asked.get("for_uscc"), reviewed)
            for asked, person in zip(data["persons"], protected)]
        body = {"as_of": as_of, "purpose": data["purpose"], "results": results}
        answer_id = self.audit.write({
            "asked_by": f"{self.caller.role}:{self.caller.subject}",
            "asked_at": datetime.now(timezone.utc), "path": request.path, "query": "",
            "catalog_version": CATALOG.version, "correlation_id": self.correlation_id,
            "answer": {"as_of": as_of, "purpose": data["purpose"],
                       "persons": [person_measures.summary(r) for r in results]}})
        self.log.info("persons checked", answer_id=answer_id, count=len(results),
                      barred=sum(not r["may_take_all"] for r in results))
        return json_response(200, {"answer_id": answer_id, "catalog_version": CATALOG.version,
                                   **body})

    @http("GET", "/v1/persons/changes", roles=("registrar",))
    def get_person_changes(self, request):
        """The registrar feed: person measures imposed and lifted, in change order (never in
        ``/v1/changes``, which gate-keepers read)."""
        query, limit, errors = _feed_query(request.args)
        if errors:
            return problem(400, "invalid query", errors)
        docs = list(self.db.person_restrictions.find(query, {"event_ids": 0})
                    .sort([("changed_at", 1), ("_id", 1)]).limit(limit))
        cursor = (encode_cursor(docs[-1]["changed_at"], docs[-1]["_id"]) if docs
                  else request.args.get("since"))
        return json_response(200, {"changes": [person_measures.change(d) for d in docs],
                                   "next": cursor})

    @http("GET", "/v1/answers/<string:answer_id>", roles=("gatekeeper", "regulator", "registrar"))
    def get_answer(self, request, answer_id):
        doc = find_answer(self.db.audit, answer_id)
        own = f"{self.caller.role}:{self.caller.subject}"
        if doc is None or (self.caller.role in ("gatekeeper", "registrar")
                           and doc.get("asked_by") != own):
            return problem(404, f"no answer {answer_id}")  # another caller's answer
        return json_response(200, doc)

    @http("GET", "/v1/ping", roles=("gatekeeper", "regulator"))
    def ping(self, request):
        """A no-op on the same server: the baseline the lookup benchmark compares with."""
        return json_response(200, {"pong": True})

    # -- timers ----------------------------------------------------------------------------
    @timer(interval=5)
    def lift_expired(self):
        count = self._reconciler().announce_expiries(datetime.now(timezone.utc))
        if count:
            self.log.info("expired restrictions announced", count=count)

    @timer(interval=2)
    def relay_outbox(self):
        Outbox(self.db, self.dispatch).sweep()

    def _projection_ready(self, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while self.projection.synced_at is None and time.monotonic() < deadline:
            eventlet.sleep(0.05)
        return self.projection.synced_at is not None

    def _audited(self, request, body: dict) -> dict:
        """Stored and answered with the catalog version in force at the ``as_of`` asked (the
        version the answer was decided under); stored past answers keep what they said."""
        substance = ({"as_of": body["as_of"], "results": [summary(r) for r in body["results"]]}
                     if "results" in body else summary(body))
        version = gate.in_force(HISTORY, body["as_of"])
        version_id = version["version"] if version else CATALOG.version
        answer_id = self.audit.write({
            "asked_by": f"{self.caller.role}:{self.caller.subject}",
            "asked_at": datetime.now(timezone.utc), "path": request.path,
            "query": request.query_string.decode("utf-8", "replace")[:2000],
            "catalog_version": version_id, "answer": substance,
            "correlation_id": self.correlation_id})
        return {"answer_id": answer_id, "catalog_version": version_id,
                "catalog_in_force": version, **body}


def _feed_query(args) -> tuple[dict, int, list[dict]]:
    """``since`` and ``limit`` of a change feed: the store query, the limit, the errors."""
    errors, query, limit = [], {}, 100
    try:
        # 1-1,000: ``limit(0)`` is "no limit" to the store (the whole feed in one answer)
        limit = int(args.get("limit", 100))
        if not 1 <= limit <= 1000:
            raise ValueError
    except ValueError:
        errors.append({"field": "limit", "problem": "must be a whole number from 1 to 1000"})
    try:
        if args.get("since"):
            at, rid = decode_cursor(args["since"])
            query = {"$or": [{"changed_at": {"$gt": at}},
                             {"changed_at": at, "_id": {"$gt": rid}}]}
    except ValueError:
        errors.append({"field": "since",
                       "problem": "must be the `next` cursor of a previous answer"})
    return query, limit, errors

