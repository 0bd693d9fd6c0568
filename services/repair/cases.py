"""Repair applications, objections and the record read model, on the service's own store.

Collections (``<prefix>_repair``): ``records`` (the current version of every violation, from
Violation* events, with the ids of its applications and objections), ``entities`` (each
entity's violation ids: every read is by id), ``applications``, ``objections``, ``outbox``.
Decisions that others must hear (RecordRepaired, ObjectionOpened, ObjectionDecided) are
staged in the outbox with the write that makes them (``shared.outbox``); event ids are
deterministic, so a retried write publishes nothing new.
"""
from __future__ import annotations

import re
import uuid
from datetime import date, datetime, timezone

from contracts.events import make_event
from contracts.repair import CommitmentLetterSchema
from contracts.violation import ViolationSchema
from shared.locks import doc_lock
from shared.outbox import Outbox
from shared.store import apply_versioned, insert_once
from rules.calendar import WorkCalendar, is_overdue
from rules.repair import RecordState, Rules
from services.repair.publicity import public_record

PRODUCER = "repair"
_VIOLATION = ViolationSchema()
_LETTER = CommitmentLetterSchema()


class Refusal(Exception):
    """A request the rules refuse: HTTP ``status`` with a JSON ``body``."""

    def __init__(self, status: int, message: str, **extra):
        super().__init__(message)
        self.status = status
        self.extra = extra  # members added to the problem (services.repair.service.refusals)


def agency_of(agency_code: str) -> str:
    """The agency a credential names for a record's ``agency_code`` (``SAMR-350100``: SAMR)."""
    return agency_code.split("-")[0]


def ensure_indexes(db) -> None:
    db.applications.create_index("status")
    db.objections.create_index("status")


class Cases:
    def __init__(self, db, dispatch, correlation_id: str, rules: Rules, calendar: WorkCalendar,
                 caller=None):
        self.db = db
        self.rules = rules
        self.calendar = calendar
        self.caller = caller
        self.correlation_id = correlation_id
        self.outbox = Outbox(db, dispatch)

    # -- the read model ------------------------------------------------------------------
    def apply_violation(self, envelope: dict, payload: dict) -> bool:
        record = _VIOLATION.dump(payload["record"])
        vid = payload["violation_id"]
        revoked = payload["status"] == "revoked"
        changed = apply_versioned(self.db.records, vid, payload["version"], {
            "uscc": record["uscc"], "status": payload["status"], "record": record,
            "event_id": envelope["event_id"],
            "revoked_at": envelope["occurred_at"] if revoked else None,
            "revocation_reason": payload.get("reason") if revoked else None})
        if changed:
            self._remember(record["uscc"], vid)
        if revoked:  # also after a redelivery: finishes what a crash interrupted
            self._close_for_revocation(vid, payload.get("reason") or "no reason given")
        return changed

    def _remember(self, code: str, vid: str) -> None:
        with doc_lock(self.db.entities, code):
            if insert_once(self.db.entities, code, {"violation_ids": [vid]}):
                return
            entity = self.db.entities.find_one({"_id": code}, {"violation_ids": 1}) or {}
            ids = entity.get("violation_ids", [])
            if vid not in ids:
                self.db.entities.update_one({"_id": code}, {"$set": {"violation_ids": ids + [vid]}})

    def record_doc(self, agency_code: str, document_number: str, uscc: str) -> dict:
        vid = f"{agency_code}/{document_number}"
        doc = self.db.records.find_one({"_id": vid})
        if doc is None:
            raise Refusal(404, f"no record {vid} is known (an agency records it through "
                               f"violation intake first)")
        if doc["uscc"] != uscc:
            raise Refusal(403, "not entitled: the record belongs to another entity",
                          blocking=[{"rule": "not_entitled", "detail": f"{vid} is a record of "
                                     f"another entity than {uscc}", "basis": "applicant",
                                     "earliest_at": None}], earliest_at=None)
        return doc

    def states_for(self, uscc: str) -> tuple[list[RecordState], dict, dict]:
        """The entity's records as ``RecordState``s, their objections (violation id ->
        ``[(opened, decided)]``) and the record documents by id."""
        entity = self.db.entities.find_one({"_id": uscc}) or {}
        ids = entity.get("violation_ids", [])
        docs = {d["_id"]: d for d in self.db.records.find({"_id": {"$in": ids}})} if ids else {}
        app_ids = [a for d in docs.values() for a in d.get("applications", [])]
        obj_ids = [o for d in docs.values() for o in d.get("objections", [])]
        approved: dict[str, dict] = {}
        if app_ids:
            for app in self.db.applications.find({"_id": {"$in": app_ids}, "status": "approved"}):
                approved.setdefault(app["violation_id"], {})[app["scope"]] = \
                    _aware(app["decision"]["decided_at"])
        reviews: dict[str, list] = {}
        if obj_ids:
            for obj in self.db.objections.find({"_id": {"$in": obj_ids}}):
                reviews.setdefault(obj["violation_id"], []).append(
                    (_aware(obj["opened_at"]), _aware(obj.get("decided_at"))))
        states = [self._state(doc, approved.get(vid, {})) for vid, doc in docs.items()]
        return states, reviews, docs

    @staticmethod
    def _state(doc: dict, repairs: dict) -> RecordState:
        return RecordState(violation_id=doc["_id"], record=_VIOLATION.load(doc["record"]),
                           status=doc["status"], revoked_at=_aware(doc.get("revoked_at")),
                           repairs=repairs)

    def public(self, uscc: str, as_of: datetime) -> dict:
        states, reviews, _ = self.states_for(uscc)
        return public_record(uscc, states, reviews, as_of, self.rules)

    def eligibility(self, vid: str, uscc: str, declarations: dict, as_of: datetime):
        states, _, _ = self.states_for(uscc)
        state = next((s for s in states if s.violation_id == vid), None)
        if state is None:
            raise Refusal(404, f"no record {vid} is known")
        return self.rules.check(state, states, declarations, as_of)

    # -- credit repair -------------------------------------------------------------------
    def file_application(self, data: dict, now: datetime) -> dict:
        doc = self.record_doc(data["agency_code"], data["document_number"], data["uscc"])
        vid = doc["_id"]
        self._entitled_to_file(doc)
        declarations = {"penalty_performed": data["penalty_performed"],
                        "harm_removed": data["harm_removed"],
                        "commitment_letter": (_LETTER.dump(data["commitment_letter"])
                                              if data.get("commitment_letter") else None)}
        result = self.eligibility(vid, data["uscc"], declarations, now)
        if not result.eligible:
            raise Refusal(422, "not eligible for credit repair", **result.as_dict())
        with doc_lock(self.db.records, vid):
            current = self.db.records.find_one({"_id": vid}, {"applications": 1}) or {}
            ids = current.get("applications", [])
            pending = self.db.applications.find_one(
                {"_id": {"$in": ids}, "status": "pending", "scope": result.scope}) if ids else None
            if pending is not None:
                raise Refusal(409, f"application {pending['_id']} for this record "
                                   f"({result.scope}) is pending; wait for its decision",
                              application_id=pending["_id"])
            app_id = f"RA-{uuid.uuid4().hex[:16]}"
            application = {
                "_id": app_id, "violation_id": vid, "uscc": data["uscc"],
                "agency_code": doc["record"]["agency_code"], "scope": result.scope,
                "status": "pending", "applicant": data["applicant"], "filed_by": self._who(),
                "declarations": declarations, "statement": data.get("statement"),
                "evidence": data.get("evidence") or [],
                "eligibility": _plain(result.as_dict()), "received_at": now,
                "due_by": self.calendar.deadline(now, self.rules.deadlines["repair_decision"])
                .isoformat(),
                "decision": None, "rules_version": self.rules.version, "event_ids": []}
            self.db.applications.insert_one(application)
            self.db.records.update_one({"_id": vid}, {"$set": {"applications": ids + [app_id]}})
        return self.application_view(application, now)

    def decide_application(self, app_id: str, data: dict, now: datetime) -> dict:
        with doc_lock(self.db.applications, app_id):
            app = self._get(self.db.applications, app_id, "application")
            self._may_decide(app["agency_code"])
            if app["status"] != "pending":
                decided = app.get("decision") or {}
                raise Refusal(409, f"application {app_id} was already decided: {app['status']} "
                                   f"by {decided.get('decided_by')} at "
                                   f"{_iso(decided.get('decided_at'))}",
                              application_status=app["status"])
            decision = {"decision": data["decision"], "reason": data["reason"],
                        "decided_by": self._who(), "decided_at": now}
            events = []
            if data["decision"] == "approved":
                result = self.eligibility(app["violation_id"], app["uscc"],
                                          app["declarations"], now)
                if not result.eligible or result.scope != app["scope"]:
                    raise Refusal(422, "the record is no longer eligible; reject the "
                                       "application instead", **result.as_dict())
                events.append(make_event("RecordRepaired", {
                    "application_id": app_id, "uscc": app["uscc"],
                    "violation_id": app["violation_id"], "scope": app["scope"],
                    "decided_by": decision["decided_by"], "decided_at": now,
                    "reason": data["reason"]}, producer=PRODUCER,
                    correlation_id=self.correlation_id, event_id=f"repair:{app_id}:approved"))
            self._finish(self.db.applications, app_id, "pending", {
                "status": data["decision"], "decision": decision}, events)
            app.update(status=data["decision"], decision=decision)
        return self.application_view(app, now)

    # -- objections ----------------------------------------------------------------------
    def open_objection(self, data: dict, now: datetime) -> dict:
        doc = self.record_doc(data["agency_code"], data["document_number"], data["uscc"])
        vid = doc["_id"]
        self._entitled_to_file(doc)
        if doc["status"] != "active":
            raise Refusal(409, f"{vid} is revoked: there is nothing to object to")
        with doc_lock(self.db.records, vid):
            current = self.db.records.find_one({"_id": vid}, {"objections": 1}) or {}
            ids = current.get("objections", [])
            open_ = self.db.objections.find_one(
                {"_id": {"$in": ids}, "status": "open"}) if ids else None
            if open_ is not None:
                raise Refusal(409, f"objection {open_['_id']} against this record is open; "
                                   f"wait for its decision", objection_id=open_["_id"])
            obj_id = f"OB-{uuid.uuid4().hex[:16]}"
            event = make_event("ObjectionOpened", {
                "objection_id": obj_id, "uscc": doc["uscc"], "violation_id": vid,
                "opened_at": now}, producer=PRODUCER, correlation_id=self.correlation_id,
                event_id=f"objection:{obj_id}:opened")
            objection = {
                "_id": obj_id, "violation_id": vid, "uscc": doc["uscc"],
                "agency_code": doc["record"]["agency_code"], "status": "open",
                "applicant": data["applicant"], "filed_by": self._who(),
                "grounds": data["grounds"], "evidence": data.get("evidence") or [],
                "opened_at": now, "record_version": doc["version"],
                "due_by": self.calendar.deadline(now, self.rules.deadlines["objection_decision"])
                .isoformat(),
                "outcome": None, "decided_at": None, "decided_by": None, "reason": None,
                "event_ids": [event["event_id"]]}
            with self.outbox.staged(self.db.objections, obj_id, [event]):
                self.db.objections.insert_one(objection)
            self.db.records.update_one({"_id": vid}, {"$set": {"objections": ids + [obj_id]}})
        return self.objection_view(objection, now)

    def decide_objection(self, obj_id: str, data: dict, now: datetime, system: bool = False) -> dict:
        with doc_lock(self.db.objections, obj_id):
            obj = self._get(self.db.objections, obj_id, "objection")
            if not system:
                self._may_decide(obj["agency_code"])
            if obj["status"] != "open":
                raise Refusal(409, f"objection {obj_id} was already decided: {obj['outcome']} "
                                   f"by {obj['decided_by']} at {_iso(obj['decided_at'])}",
                              outcome=obj["outcome"])
            if not system:
                self._applied_through_intake(obj, data["outcome"])
            fields = {"status": "decided", "outcome": data["outcome"], "reason": data["reason"],
                      "decided_at": now, "decided_by": "system" if system else self._who()}
            event = make_event("ObjectionDecided", {
                "objection_id": obj_id, "uscc": obj["uscc"], "violation_id": obj["violation_id"],
                "opened_at": obj["opened_at"], "outcome": data["outcome"], "decided_at": now,
                "reason": data["reason"]}, producer=PRODUCER,
                correlation_id=self.correlation_id, event_id=f"objection:{obj_id}:decided")
            self._finish(self.db.objections, obj_id, "open", fields, [event])
            obj.update(fields)
        return self.objection_view(obj, now)

    def _applied_through_intake(self, obj: dict, outcome: str) -> None:
        """Corrections and revocations are made by the agency through violation intake (the
        one path that changes a record); the decision records the outcome once it arrived."""
        record = self.db.records.find_one({"_id": obj["violation_id"]}) or {}
        agency, document = obj["violation_id"].split("/", 1)
        if outcome == "revoked" and record.get("status") != "revoked":
            raise Refusal(409, "revoke the record through violation intake first (POST "
                               f"/v1/violations/{agency}/{document}/revocation on the "
                               "violations service, or routing key violation.revoke); the "
                               "objection is decided as revoked once the revocation arrives")
        if outcome == "corrected" and (record.get("status") != "active"
                                       or record.get("version", 0) <= obj["record_version"]):
            raise Refusal(409, "amend the record through violation intake first (PUT "
                               f"/v1/violations/{agency}/{document} on the violations "
                               "service, or routing key violation.amend), then decide")

    def _close_for_revocation(self, vid: str, reason: str) -> None:
        doc = self.db.records.find_one({"_id": vid}, {"applications": 1, "objections": 1}) or {}
        now = datetime.now(timezone.utc)
        for obj_id in doc.get("objections", []):
            obj = self.db.objections.find_one({"_id": obj_id}, {"status": 1})
            if obj and obj["status"] == "open":
                try:
                    self.decide_objection(obj_id, {"outcome": "revoked", "reason":
                                                   f"record revoked by the agency: {reason}"},
                                          now, system=True)
                except Refusal:
                    pass  # decided meanwhile
        for app_id in doc.get("applications", []):
            with doc_lock(self.db.applications, app_id):
                self.db.applications.update_one({"_id": app_id, "status": "pending"}, {"$set": {
                    "status": "closed", "decision": {
                        "decision": "closed", "reason": f"record revoked: {reason}",
                        "decided_by": "system", "decided_at": now}}})

    # -- lists ---------------------------------------------------------------------------
    def list_cases(self, collection, args, as_of: datetime, view) -> list[dict]:
        query = {}
        if args.get("status"):
            query["status"] = args["status"]
        if args.get("uscc"):
            query["uscc"] = args["uscc"]
        if self.caller is not None and self.caller.role == "platform":
            query["filed_by"] = self._who()
        if self.caller is not None and self.caller.role == "agency":
            # its own agency's records, and what it filed for others
            query["$or"] = [{"agency_code": self.caller.subject},
                            {"agency_code": {"$regex": f"^{re.escape(self.caller.subject)}-"}},
                            {"filed_by": self._who()}]
        docs = collection.find(query, {"event_ids": 0}).sort("_id", 1).limit(1000)
        views = [view(doc, as_of) for doc in docs if self._may_see(doc)]
        if args.get("overdue"):
            views = [v for v in views if v["overdue"]]
        return views

    def application_view(self, doc: dict, as_of: datetime) -> dict:
        view = {k: v for k, v in doc.items() if k not in ("_id", "event_ids")}
        view["application_id"] = doc["_id"]
        view["overdue"] = doc["status"] == "pending" and is_overdue(
            date.fromisoformat(doc["due_by"]), as_of)
        return view

    def objection_view(self, doc: dict, as_of: datetime) -> dict:
        view = {k: v for k, v in doc.items() if k not in ("_id", "event_ids")}
        view["objection_id"] = doc["_id"]
        view["overdue"] = doc["status"] == "open" and is_overdue(
            date.fromisoformat(doc["due_by"]), as_of)
        return view

    def get_visible(self, collection, doc_id: str, kind: str) -> dict:
        doc = self._get(collection, doc_id, kind)
        if not self._may_see(doc):
            raise Refusal(404, f"no {kind} {doc_id}")
        return doc

    # -- who may do what ------------------------------------------------------------------
    def _who(self) -> str:
        return f"{self.caller.role}:{self.caller.subject}" if self.caller else "system"

    def _entitled_to_file(self, doc: dict) -> None:
        caller = self.caller
        if caller is not None and caller.role == "agency" \
                and caller.subject == agency_of(doc["record"]["agency_code"]):
            raise Refusal(403, "not entitled: the recording agency decides on its records; "
                               "it cannot file for them", blocking=[{
                                   "rule": "not_entitled", "detail": "applicant is the "
                                   "recording agency", "basis": "applicant",
                                   "earliest_at": None}], earliest_at=None)

    def _may_decide(self, agency_code: str) -> None:
        caller = self.caller
        if caller is None or caller.role in ("regulator", "administrator"):
            return
        if caller.role == "agency" and caller.subject == agency_of(agency_code):
            return
        raise Refusal(403, f"only the recording agency ({agency_of(agency_code)}) or a "
                           f"regulator decides on records of {agency_code}")

    def _may_see(self, doc: dict) -> bool:
        caller = self.caller
        if caller is None or caller.role in ("regulator", "administrator"):
            return True
        if caller.role == "agency" and caller.subject == agency_of(doc["agency_code"]):
            return True
        return doc.get("filed_by") == self._who()

    # -- helpers ----------------------------------------------------------------------------
    @staticmethod
    def _get(collection, doc_id: str, kind: str) -> dict:
        doc = collection.find_one({"_id": doc_id})
        if doc is None:
            raise Refusal(404, f"no {kind} {doc_id}")
        return doc

    def _finish(self, collection, doc_id: str, expected_status: str, fields: dict,
                events: list[dict]) -> None:
        """Move a case on from ``expected_status`` (caller holds its lock), with its events."""
        with self.outbox.staged(collection, doc_id, events) as stage:
            update = {"$set": fields}
            if events:
                update["$push"] = {"event_ids": {"$each": [e["event_id"] for e in events]}}
            result = collection.update_one({"_id": doc_id, "status": expected_status}, update)
            if result.modified_count != 1:
                stage.cancel()
                raise Refusal(409, "changed concurrently; read it again")


def _aware(value):
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=timezone.utc)


def _iso(value) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else value


def _plain(value):
    """Datetimes as ISO text (what is stored is what was answered)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return _iso(value)
