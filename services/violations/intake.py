"""Recording violations: one validation path behind AMQP, HTTP and bulk import.

Outcomes: ``recorded`` (new), ``duplicate`` (same key, same payload: nothing changes),
``conflict`` (same key, different payload: refused, never overwritten), ``rejected``
(invalid or outside the agency's jurisdiction: kept in ``rejections`` with the reasons).
Amendments keep every version; revocations end the record. Each change stores its event in
a staged outbox entry and records its id in the same single-document write (``shared.outbox``).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone

from marshmallow import ValidationError

from contracts.common import field_errors, scrub, visible
from contracts.events import make_event
from contracts.violation import (AmendmentSchema, RevocationSchema, ViolationSchema,
                                 registration_region, v1_defaults, violation_key)
from shared.outbox import Outbox
from shared.locks import store_lock
from shared import identity
from shared.identity import redact
from shared.pii_migration import link_legacy
from shared.logging import mask_id_numbers
from shared.store import insert_once
from rules.jurisdiction import region_keys

PRODUCER = "violations"


@dataclass
class Outcome:
    status: str  # recorded | duplicate | conflict | rejected | amended | revoked | not_found
    violation_id: str | None = None
    version: int | None = None
    errors: list[dict] = field(default_factory=list)
    rejection_id: str | None = None
    events: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v not in (None, [])}


def fingerprint(record: dict) -> str:
    """Hash of a record's canonical JSON form (dumped by the schema). A v2 field equal to what
    a v1 record means by leaving it out (``contracts.violation.v1_defaults``) is left out, so a
    record stored before v2 and the same record sent again now are one record (a duplicate,
    not a conflict)."""
    defaults = v1_defaults(record)
    record = {k: v for k, v in record.items()
              if not (k in defaults and v == defaults[k]) and not (k == "persons" and v == [])}
    canonical = json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def regions_of(record: dict) -> list[str]:
    """The region feeds a record is in (``rules.jurisdiction.region_keys``)."""
    return region_keys(registration_region(record["uscc"]), record.get("place_code"))


def ensure_indexes(db) -> None:
    db.violations.create_index("record.uscc")
    db.violations.create_index("updated_at")
    db.violations.create_index([("regions", 1), ("updated_at", 1), ("_id", 1)])
    db.rejections.create_index("agency_code")
    db.rejections.create_index("received_at")


class Intake:
    def __init__(self, db, dispatch, jurisdictions, correlation_id: str, caller=None,
                 identity=None):
        self.db = db
        self.identity = identity  # the key holder (shared.identity.Keyholder)
        self.caller = caller
        self.dispatch = dispatch
        self.jurisdictions = jurisdictions
        self.correlation_id = correlation_id
        self.outbox = Outbox(db, dispatch)

    # -- record ----------------------------------------------------------------------------
    def record(self, raw, *, via: str, message_id: str) -> Outcome:
        return self.record_many([raw], via=via, message_ids=[message_id])[0]

    def record_many(self, raws: list, *, via: str, message_ids: list[str]) -> list[Outcome]:
        """Record several submissions with one batch write; one outcome each, in order."""
        outcomes: list[Outcome | None] = [None] * len(raws)
        fresh: dict[str, tuple[int, dict, dict]] = {}  # key -> (index, doc, event)
        again: list[tuple[int, dict]] = []  # same key twice in one batch: after the batch
        for index, (raw, message_id) in enumerate(zip(raws, message_ids)):
            prepared = self._prepare(raw, via=via, message_id=message_id)
            if isinstance(prepared, Outcome):
                outcomes[index] = prepared
            elif prepared[0]["_id"] in fresh:
                again.append((index, prepared[0]))
            else:
                fresh[prepared[0]["_id"]] = (index, *prepared)
        if fresh:
            items = list(fresh.values())
            failed = self.outbox.insert_new(self.db.violations, [doc for _, doc, _ in items],
                                            [[event] for _, _, event in items])
            for position, (index, doc, event) in enumerate(items):
                outcomes[index] = (self._existing(raws[index], doc, via, message_ids[index])
                                   if position in failed else
                                   Outcome("recorded", doc["_id"], 1, events=[event["event_id"]]))
        for index, doc in again:
            outcomes[index] = self._existing(raws[index], doc, via, message_ids[index])
        return outcomes

    def _prepare(self, raw, *, via: str, message_id: str):
        """Validate one submission: an Outcome when refused, else ``(doc, event)``."""
        try:
            loaded = ViolationSchema().load(raw if isinstance(raw, dict) else _not_an_object(raw))
        except ValidationError as exc:
            return self._reject(raw, field_errors(exc.messages), via=via, message_id=message_id)
        refusal = self.jurisdictions.refusal(loaded, self.caller)
        if refusal:
            return self._reject(raw, refusal, via=via, message_id=message_id)
        record = ViolationSchema().dump(loaded)
        self._link_legacy(raw, record)
        key = violation_key(record["agency_code"], record["document_number"])
        digest = fingerprint(record)
        now = datetime.now(timezone.utc)
        event = self._event("ViolationRecorded", key, 1, "active", loaded)
        doc = {
            "_id": key,
            "version": 1,
            "status": "active",
            "record": record,
            "fingerprint": digest,
            "versions": [{"version": 1, "record": record, "fingerprint": digest,
                          "at": now, "reason": "recorded", "via": via}],
            "received_via": via,
            "message_id": message_id,
            "created_at": now,
            "updated_at": now,
            "event_ids": [event["event_id"]],
            "regions": regions_of(record),
        }
        return doc, event

    def _existing(self, raw, doc: dict, via: str, message_id: str) -> Outcome:
        """The key is taken: the same payload is a duplicate, another one a conflict."""
        key = doc["_id"]
        existing = self.db.violations.find_one({"_id": key}, {"versions.fingerprint": 1,
                                                              "version": 1})
        if any(v["fingerprint"] == doc["fingerprint"] for v in existing.get("versions", [])):
            return Outcome("duplicate", key, existing["version"])
        return self._reject(raw, [{
            "field": "document_number",
            "problem": f"{key} already exists with a different payload; "
                       f"send an amendment to change it"}],
            via=via, message_id=message_id, status="conflict", violation_id=key)

    # -- amend -----------------------------------------------------------------------------
    def amend(self, raw, *, via: str, message_id: str) -> Outcome:
        try:
            loaded = AmendmentSchema().load(raw if isinstance(raw, dict) else _not_an_object(raw))
        except ValidationError as exc:
            return self._reject(raw, field_errors(exc.messages), via=via, message_id=message_id)
        new = loaded["violation"]
        refusal = self.jurisdictions.refusal(new, self.caller)
        if refusal:
            return self._reject(raw, refusal, via=via, message_id=message_id)
        record = ViolationSchema().dump(new)
        self._link_legacy(raw.get("violation"), record)
        key = violation_key(record["agency_code"], record["document_number"])
        digest = fingerprint(record)
        with store_lock(self.db.violations, key):  # any instance may take the command
            return self._amend_locked(raw, key, new, record, digest, loaded["reason"], via,
                                      message_id)

    def _amend_locked(self, raw, key, new, record, digest, reason, via, message_id) -> Outcome:
        for _ in range(5):  # compare-and-set on version, bounded
            current = self.db.violations.find_one({"_id": key})
            if current is None:
                return Outcome("not_found", key, errors=[{
                    "field": "document_number", "problem": f"{key} has not been recorded"}])
            if current["status"] != "active":
                return self._reject(raw, [{"field": "document_number",
                                           "problem": f"{key} is revoked and cannot be amended"}],
                                    via=via, message_id=message_id, status="conflict",
                                    violation_id=key)
            if current["fingerprint"] == digest:
                return Outcome("duplicate", key, current["version"])
            if current["record"]["uscc"] != record["uscc"]:
                return self._reject(raw, [{"field": "violation.uscc",
                                           "problem": "an amendment cannot move a record to another entity; revoke it and record anew"}],
                                    via=via, message_id=message_id, status="conflict",
                                    violation_id=key)
            version = current["version"] + 1
            now = datetime.now(timezone.utc)
            event = self._event("ViolationAmended", key, version, "active", new, reason)
            with self.outbox.staged(self.db.violations, key, [event]) as stage:
                result = self.db.violations.update_one(
                    {"_id": key, "version": current["version"]},
                    {"$set": {"version": version, "record": record, "fingerprint": digest,
                              "updated_at": now, "regions": regions_of(record)},
                     "$push": {"versions": {"version": version, "record": record,
                                            "fingerprint": digest, "at": now,
                                            "reason": reason, "via": via},
                               "event_ids": event["event_id"]}},
                )
                if result.modified_count != 1:
                    stage.cancel()
            if result.modified_count == 1:
                return Outcome("amended", key, version, events=[event["event_id"]])
        return Outcome("conflict", key, errors=[{"field": "document_number",
                                                 "problem": "concurrent changes; retry"}])

    # -- revoke ----------------------------------------------------------------------------
    def revoke(self, raw, *, via: str, message_id: str) -> Outcome:
        try:
            loaded = RevocationSchema().load(raw if isinstance(raw, dict) else _not_an_object(raw))
        except ValidationError as exc:
            return self._reject(raw, field_errors(exc.messages), via=via, message_id=message_id)
        refusal = self.jurisdictions.caller_refusal(loaded["agency_code"], self.caller)
        if refusal:
            return self._reject(raw, refusal, via=via, message_id=message_id)
        key = violation_key(loaded["agency_code"], loaded["document_number"])
        with store_lock(self.db.violations, key):  # any instance may take the command
            return self._revoke_locked(key, loaded, via)

    def _revoke_locked(self, key, loaded, via) -> Outcome:
        current = self.db.violations.find_one({"_id": key})
        if current is None:
            return Outcome("not_found", key, errors=[{
                "field": "document_number", "problem": f"{key} has not been recorded"}])
        if current["status"] == "revoked":
            return Outcome("duplicate", key, current["version"])
        version = current["version"] + 1
        now = datetime.now(timezone.utc)
        revoked_at = loaded.get("revoked_at") or now
        record = ViolationSchema().load(current["record"])
        event = self._event("ViolationRevoked", key, version, "revoked", record, loaded["reason"])
        with self.outbox.staged(self.db.violations, key, [event]) as stage:
            result = self.db.violations.update_one(
                {"_id": key, "version": current["version"], "status": "active"},
                {"$set": {"status": "revoked", "version": version, "revoked_at": revoked_at,
                          "revocation_reason": loaded["reason"], "updated_at": now,
                          "regions": regions_of(current["record"])},
                 "$push": {"versions": {"version": version, "record": current["record"],
                                        "fingerprint": current["fingerprint"], "at": now,
                                        "reason": f"revoked: {loaded['reason']}", "via": via},
                           "event_ids": event["event_id"]}},
            )
            if result.modified_count != 1:
                stage.cancel()
        if result.modified_count != 1:
            return Outcome("conflict", key, errors=[{"field": "document_number",
                                                     "problem": "concurrent changes; retry"}])
        return Outcome("revoked", key, version, events=[event["event_id"]])

    # -- helpers ---------------------------------------------------------------------------
    def _link_legacy(self, raw, record) -> None:
        """A resent resident identity number completes records stored before issue 19
        (``shared.pii_migration``): its legacy hashes, keyed, are linked to the person id."""
        rep = raw.get("legal_representative") if isinstance(raw, dict) else None
        person = (record.get("legal_representative") or {}).get("person_id")
        if (self.identity is None or not isinstance(rep, dict) or not person
                or not isinstance(rep.get("id_number"), str)  # the protected form was sent
                or rep.get("document_type", "resident_id_card") != "resident_id_card"):
            return
        link_legacy(self.db, self.identity, identity.document(
            "resident_id_card", rep["id_number"]).number, person)

    def _event(self, event_type, key, version, status, record, reason=None) -> dict:
        return make_event(
            event_type,
            {"violation_id": key, "version": version, "status": status, "record": record,
             "reason": reason},
            producer=PRODUCER,
            correlation_id=self.correlation_id,
            event_id=f"{key}@v{version}",
        )

    def _reject(self, raw, errors, *, via, message_id, status="rejected",
                violation_id=None) -> Outcome:
        agency = raw.get("agency_code") if isinstance(raw, dict) else None
        document = raw.get("document_number") if isinstance(raw, dict) else None
        if isinstance(raw, dict) and isinstance(raw.get("violation"), dict):
            agency = raw["violation"].get("agency_code")
            document = raw["violation"].get("document_number")
        agency = visible(agency) if isinstance(agency, str) else None
        document = visible(document) if isinstance(document, str) else None
        errors = scrub(errors)
        payload = {"agency_code": agency, "document_number": document, "message_id": message_id,
                   "received_via": via, "errors": errors}
        event = make_event("ViolationRejected", payload, producer=PRODUCER,
                           correlation_id=self.correlation_id, event_id=f"rejected:{message_id}")
        with self.outbox.staged(self.db.rejections, message_id, [event]) as stage:
            if not insert_once(self.db.rejections, message_id, {
                    "agency_code": agency, "document_number": document, "received_via": via,
                    "status": status, "errors": errors, "raw": _safe_raw(raw),
                    "received_at": datetime.now(timezone.utc),
                    "correlation_id": self.correlation_id,
                    "event_ids": [event["event_id"]]}):
                stage.cancel()  # the same message rejected before: said once
        return Outcome(status, violation_id, errors=errors, rejection_id=message_id)


def _not_an_object(raw):
    raise ValidationError({"_schema": [f"expected a JSON object, got {type(raw).__name__}"]})


def _safe_raw(raw) -> str:
    """The rejected payload as text (never as a document: it may hold ``$`` keys), with
    identity documents replaced by person id and mask (``shared.identity.redact``): a
    rejected record is kept, its personal data is not."""
    try:
        text = json.dumps(redact(raw), ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = repr(raw)
    return mask_id_numbers(text[:20000])
