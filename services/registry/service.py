"""Entity registry: market entities keyed by USCC, and their platform memberships."""
from __future__ import annotations

import re
from datetime import datetime, timezone

from marshmallow import ValidationError
from nameko.timer import timer

from contracts.common import USCC, field_errors
from contracts.events import make_event, read_event
from contracts.registry import (AppointmentsQuerySchema, EntityQuerySchema, EntitySchema,
                                MembershipSchema, PersonQuerySchema)
from rules import loader, uscc as uscc_codes
from shared.outbox import Outbox
from shared.entrypoints import event_handler, http, json_response, problem, read_json
from services.registry import appointments, persons
from shared import identity as identity_documents
from shared.auth import Caller
from shared.identity import PERSON_ID, IdentityKey
from shared.pii_migration import link_legacy
from shared.locks import store_lock
from shared.logging import CorrelationId, Log
from shared.mongo import Mongo
from shared.resilience import rpc
from shared.service import Dispatcher, published
from shared.store import apply_versioned, insert_once


def ensure_indexes(db) -> None:
    # Memberships live on the entity document: the notification path reads them by id.
    db.entity_violations.create_index("uscc")
    persons.ensure_indexes(db)
    appointments.ensure_indexes(db)


RETENTION = loader.load().personal_data  # refuses to start on an invalid catalog file


def mask_name(name: str) -> str:
    return name[0] + "*" * (len(name) - 1) if name else name


@published
class RegistryService:
    name = "registry"

    db = Mongo("registry", indexes=ensure_indexes)
    dispatch = Dispatcher()
    log = Log()
    correlation_id = CorrelationId()
    identity = IdentityKey()  # a regulator's PUT carries a document: this service keys it
    caller = Caller()

    # -- events ----------------------------------------------------------------------------
    @event_handler("violations", "ViolationRecorded")
    def on_violation_recorded(self, body):
        self._track_violation(body)

    @event_handler("violations", "ViolationAmended")
    def on_violation_amended(self, body):
        self._track_violation(body)

    @event_handler("violations", "ViolationRevoked")
    def on_violation_revoked(self, body):
        self._track_violation(body)

    def _track_violation(self, body):
        envelope, payload = read_event(body)
        record = payload["record"]
        self._ensure_entity(record["uscc"], record["entity_name"])
        rep = record.get("legal_representative") or {}
        previous = self.db.entity_violations.find_one({"_id": payload["violation_id"]},
                                                      {"person_id": 1}) or {}
        apply_versioned(self.db.entity_violations, payload["violation_id"], payload["version"], {
            "person_id": rep.get("person_id"),
            "uscc": record["uscc"], "status": payload["status"],
            "agency_code": record["agency_code"], "document_number": record["document_number"],
            "category": record["category"], "severity": record["severity"],
            "decided_at": record["decided_at"],
            "listing": (record.get("listing") or {}).get("list"),
        })
        persons.refresh(self.db, rep.get("person_id"), rep)
        if previous.get("person_id") not in (None, rep.get("person_id")):  # amended away
            persons.refresh(self.db, previous["person_id"])

    # person measures (restrictions): what a registration of an appointment is checked against
    @event_handler("restrictions", "PersonRestrictionImposed")
    def on_person_restriction_imposed(self, body):
        _, payload = read_event(body)
        appointments.remember_bar(self.db, payload)
        persons.refresh(self.db, payload["person_id"])

    @event_handler("restrictions", "PersonRestrictionLifted")
    def on_person_restriction_lifted(self, body):
        _, payload = read_event(body)
        appointments.remember_bar(self.db, payload["restriction"], payload["lifted_at"],
                                  payload["lift_reason"])
        persons.refresh(self.db, payload["restriction"]["person_id"])

    def _ensure_entity(self, code: str, name: str) -> None:
        """A violation against an unknown code creates a provisional entity."""
        if self.db.entities.find_one({"_id": code}, {"_id": 1}) is not None:
            return  # known: one read instead of staging, a refused insert and unstaging
        facts = uscc_codes.facts(code)
        now = datetime.now(timezone.utc)
        event = make_event("EntityRegistered", {
            "uscc": code, "name": name, "provisional": True, "region_code": facts.region_code,
            "entity_type": facts.entity_type}, producer=self.name,
            correlation_id=self.correlation_id, event_id=f"entity:{code}:provisional")
        with Outbox(self.db, self.dispatch).staged(self.db.entities, code, [event]) as stage:
            created = insert_once(self.db.entities, code, {
                "name": name, "provisional": True, "status": "operating",
                "entity_type": facts.entity_type, "region_code": facts.region_code,
                "authority": facts.authority, "created_at": now, "updated_at": now,
                "event_ids": [event["event_id"]]})
            if not created:
                stage.cancel()
        if created:
            self.log.info("provisional entity created", uscc=uscc_codes.mask(code))

    # -- HTTP ------------------------------------------------------------------------------
    @http("PUT", "/v1/registry/entities/<string:code>", roles=("regulator", "registrar"))
    def put_entity(self, request, code):
        code = _code(code)
        raw = read_json(request)
        data = EntitySchema().load(raw)
        facts = uscc_codes.facts(code)
        now = datetime.now(timezone.utc)
        fields_ = {"name": data["name"], "industry": data["industry"], "status": data["status"],
                   "provisional": False, "entity_type": facts.entity_type,
                   "region_code": facts.region_code, "authority": facts.authority,
                   "updated_at": now}
        rep = data.get("legal_representative")
        if rep:
            # Loaded by the contract into the person id and the mask (this service holds
            # the identity key); the number itself is gone.
            fields_["legal_representative"] = rep
            if rep["document_type"] == "resident_id_card":
                link_legacy(self.db, self.identity, identity_documents.document(
                    "resident_id_card", raw["legal_representative"]["id_number"]).number,
                    rep["person_id"])
        officers = data.get("officers")
        if officers is not None:
            fields_["officers"] = officers
            for given, officer in zip(raw.get("officers") or [], officers):
                if officer["document_type"] == "resident_id_card":
                    link_legacy(self.db, self.identity, identity_documents.document(
                        "resident_id_card", given["id_number"]).number, officer["person_id"])
        event = make_event("EntityRegistered", {
            "uscc": code, "name": data["name"], "provisional": False,
            "region_code": facts.region_code, "entity_type": facts.entity_type},
            producer=self.name, correlation_id=self.correlation_id)
        effective = data.get("effective_from") or now
        # the positions this registration speaks for: a PUT without a legal representative
        # (or without officers) leaves them as they were, as it leaves the entity's document
        positions_given = ({"legal_representative"} if rep else set()) | (
            set(appointments.POSITIONS_HELD) - {"legal_representative"}
            if officers is not None else set())
        with store_lock(self.db.entities, code), \
                Outbox(self.db, self.dispatch).staged(self.db.entities, code, [event]):
            before = self.db.entities.find_one(
                {"_id": code}, {"legal_representative": 1, "officers": 1}) or {}
            result = self.db.entities.update_one(
                {"_id": code}, {"$set": fields_, "$setOnInsert": {"created_at": now},
                                "$push": {"event_ids": event["event_id"]}}, upsert=True)
            opened = appointments.record(
                self.db, code, appointments.named(rep, officers if officers is not None
                                                  else before.get("officers")),
                positions_given, effective, self.caller.encode(), data.get("override_reason"),
                now)
        barred = self._flag_barred(code, opened, effective)
        touched = {p["person_id"] for p in [rep or {}, *(officers or []),
                                            before.get("legal_representative") or {},
                                            *(before.get("officers") or [])]
                   if p.get("person_id")}
        for person_id in touched:
            named = next((p for p in [rep or {}, *(officers or [])]
                          if p.get("person_id") == person_id), None)
            persons.refresh(self.db, person_id, named)
        body = self._entity(code, public=False)
        body["barred_appointments"] = barred
        return json_response(201 if result.upserted_id else 200, body)

    def _flag_barred(self, code: str, opened: list[dict], effective) -> list[dict]:
        """Each appointment of a barred person: named in the answer, and an event for
        regulators (BarredAppointmentRecorded, through the outbox: it is not lost)."""
        barred = []
        for appointment in opened:
            if not appointment["flags"]:
                continue
            flags = appointment["flags"]
            barred.append({"role": appointment["role"], "person_id": appointment["person_id"],
                           "id_masked": appointment["id_masked"], "flags": flags,
                           "override_reason": appointment["override_reason"]})
            event = make_event("BarredAppointmentRecorded", {
                "uscc": code, "role": appointment["role"],
                "person_id": appointment["person_id"], "id_masked": appointment["id_masked"],
                "effective_from": effective,
                "restriction_ids": [f["restriction_id"] for f in flags],
                "legal_basis": "; ".join(sorted({f["legal_basis"] for f in flags})),
                "override_reason": appointment["override_reason"],
                "recorded_by": appointment["recorded_by"]}, producer=self.name,
                correlation_id=self.correlation_id,
                event_id=f"barred:{appointment['_id']}"[:120])
            with Outbox(self.db, self.dispatch).staged(self.db.appointments,
                                                       appointment["_id"], [event]):
                self.db.appointments.update_one({"_id": appointment["_id"]},
                                                {"$addToSet": {"event_ids": event["event_id"]}})
            self.log.warning("barred appointment recorded", uscc=uscc_codes.mask(code),
                             role=appointment["role"], person_id=appointment["person_id"],
                             measures=[f["measure_id"] for f in flags],
                             override=bool(appointment["override_reason"]))
        return barred

    @http("GET", "/v1/registry/entities/<string:code>/appointments", roles=("regulator",))
    def get_appointments(self, request, code):
        """Every appointment at the entity (legal representatives, 负责人, directors,
        supervisors, senior managers) with its dates and flags: names persons, so a purpose."""
        code = _code(code)
        query = AppointmentsQuerySchema().load(dict(request.args))
        if self.db.entities.find_one({"_id": code}, {"_id": 1}) is None:
            return problem(404, f"entity {code} is not registered")
        found = appointments.history(self.db, code)
        for person_id in sorted({a["person_id"] for a in found}):
            persons.look_up(self.db, person_id, self.caller.encode(), query["purpose"])
        self.log.info("appointments looked up", uscc=uscc_codes.mask(code),
                      asked_by=self.caller.encode(), purpose=query["purpose"], count=len(found))
        return json_response(200, {"uscc": code, "appointments": found})

    @http("POST", "/v1/registry/entities/<string:code>/memberships", roles=("platform", "regulator"))
    def post_membership(self, request, code):
        code = _code(code)
        data = MembershipSchema().load(read_json(request))
        own = self.caller.subject if self.caller.role == "platform" else None
        if own is not None and data["platform_id"] != own:
            # a membership routes the entity's notices to that platform: only its own
            return problem(403, "a platform may set only its own memberships", [{
                "field": "platform_id", "problem": f"must be {own!r} (your platform)"}])
        with store_lock(self.db.entities, code):  # any instance may take the request
            entity = self.db.entities.find_one({"_id": code},
                                               {"memberships": 1, "memberships_version": 1})
            if entity is None:
                return problem(404, f"entity {code} is not registered")
            memberships = [m for m in entity.get("memberships", [])
                           if m["platform_id"] != data["platform_id"]]
            memberships.append({"platform_id": data["platform_id"], "shop_id": data["shop_id"],
                                "since": datetime.now(timezone.utc)})
            memberships.sort(key=lambda m: m["platform_id"])
            # notifications keeps the memberships as a read model fed by this event (no RPC
            # per notice); the version orders the changes of one entity
            version = entity.get("memberships_version", 0) + 1
            shown = [_membership(m) for m in memberships]
            event = make_event("MembershipsChanged", {
                "uscc": code, "version": version, "memberships": shown}, producer=self.name,
                correlation_id=self.correlation_id, event_id=f"entity:{code}:memberships@{version}")
            with Outbox(self.db, self.dispatch).staged(self.db.entities, code, [event]):
                self.db.entities.update_one({"_id": code}, {
                    "$set": {"memberships": memberships, "memberships_version": version},
                    "$push": {"event_ids": event["event_id"]}})
        shown = [m for m in shown if own is None or m["platform_id"] == own]
        return json_response(200, {"uscc": code, "memberships": shown})

    @http("GET", "/v1/registry/entities/<string:code>", roles=("regulator",))
    def get_entity(self, request, code):
        code = _code(code)
        query = EntityQuerySchema().load(dict(request.args))
        public = query.get("view", "public") == "public"
        entity = self._entity(code, public=public)
        if entity is None:
            return problem(404, f"entity {code} is not registered")
        rep = entity.get("legal_representative")
        if rep and not public:  # the unmasked name of a person: a lookup, logged with why
            if not query.get("purpose"):
                raise ValidationError({"purpose": ["required with view=full: why the legal "
                                                   "representative is looked up"]})
            self._log_lookup(rep.get("person_id"), query["purpose"], f"entity {code}")
        return json_response(200, entity)

    @http("GET", "/v1/registry/persons/<string:person_id>", roles=("regulator",))
    def get_person(self, request, person_id):
        query = PersonQuerySchema().load(dict(request.args))
        if not re.fullmatch(PERSON_ID, person_id):
            raise ValidationError({"person_id": ["must be a person id (p1_ and 64 hex digits)"]})
        found = persons.look_up(self.db, person_id, self.caller.encode(), query["purpose"])
        self.log.info("person looked up", person_id=person_id, asked_by=self.caller.encode(),
                      purpose=query["purpose"], found=found is not None)
        if found is None:
            return problem(404, "no such person")
        return json_response(200, found)

    def _log_lookup(self, person_id, purpose, what) -> None:
        asked_by = self.caller.encode()
        if person_id:
            persons.look_up(self.db, person_id, asked_by, purpose)
        self.log.info("person looked up", person_id=person_id, asked_by=asked_by,
                      purpose=purpose, via=what)

    @timer(interval=3600)
    def purge_persons(self):
        """Delete person records nothing has referred to for the retention period."""
        deleted = persons.purge(self.db, RETENTION)
        if deleted:
            self.log.info("person records deleted after retention", deleted=deleted,
                          retention_days=RETENTION.days)

    # -- RPC (off the gate-keeping path) ---------------------------------------------------
    @rpc
    def memberships(self, code):
        entity = self.db.entities.find_one({"_id": code}, {"memberships": 1}) or {}
        return [_membership(m) for m in entity.get("memberships", [])]

    @rpc
    def memberships_page(self, after: str = "", limit: int = 1000):
        """The memberships of the next ``limit`` entities in code order after ``after``: what
        notifications' read model is bootstrapped and reconciled from.
        ``{"entities": [{uscc, version, memberships}], "next": code or None}`` (entities
        without memberships are left out; ``next`` is None after the last page)."""
        limit = max(1, min(int(limit), 5000))
        docs = list(self.db.entities.find(
            {"_id": {"$gt": after}}, {"memberships": 1, "memberships_version": 1})
            .sort("_id", 1).limit(limit))
        return {"entities": [{"uscc": d["_id"], "version": d.get("memberships_version", 0),
                              "memberships": [_membership(m) for m in d["memberships"]]}
                             for d in docs if d.get("memberships")],
                "next": docs[-1]["_id"] if len(docs) == limit else None}

    @timer(interval=2)
    def relay_outbox(self):
        Outbox(self.db, self.dispatch).sweep()

    def _entity(self, code: str, public: bool):
        # memberships_version orders MembershipsChanged for the notifications read model: not
        # part of the entity's view
        doc = self.db.entities.find_one({"_id": code}, {"event_ids": 0, "memberships_version": 0})
        if doc is None:
            return None
        doc["uscc"] = doc.pop("_id")
        rep = doc.get("legal_representative")
        if rep:
            rep.pop("id_hash", None)
            rep.pop("legacy_ref", None)
            if public:
                rep["name"] = mask_name(rep["name"])
                rep.pop("person_id", None)
        for officer in doc.get("officers") or []:
            officer.pop("legacy_ref", None)
            if public:
                officer["name"] = mask_name(officer["name"])
                officer.pop("person_id", None)
        doc["violations"] = [
            {k: v for k, v in d.items() if k != "uscc"} | {"violation_id": d["_id"]}
            for d in self.db.entity_violations.find({"uscc": code}).sort("decided_at", -1)
        ]
        for v in doc["violations"]:
            v.pop("_id", None)
            v.pop("person_id", None)  # persons are looked up by id, with a purpose
        doc["memberships"] = self.memberships(code)
        return doc


def _membership(doc: dict) -> dict:
    return {"platform_id": doc["platform_id"], "shop_id": doc["shop_id"]}


def _code(code: str) -> str:
    try:
        return USCC().deserialize(code)
    except ValidationError as exc:
        raise ValidationError({"uscc": exc.messages}) from exc
