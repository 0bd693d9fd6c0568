"""Violations service: agencies record, amend and revoke violations (AMQP and HTTP)."""
from __future__ import annotations

import uuid
from datetime import datetime, timezone

from kombu import Exchange, Queue
from marshmallow import ValidationError
from nameko.timer import timer

from contracts.common import field_errors
from contracts.intake import RegionFeedQuerySchema, ViolationQuerySchema
from shared.outbox import Outbox
from shared.auth import Caller
from shared.identity import IdentityKey, redact_body as identity_redact
from shared.entrypoints import PermanentError, consume, http, json_response, problem, read_json
from shared.logging import CorrelationId, Log
from shared.mongo import Mongo
from shared.queries import decode_cursor, encode_cursor
from shared.service import Dispatcher, published
from rules import loader
from services.violations.intake import Intake, ensure_indexes

INTAKE_EXCHANGE = Exchange("lianchen.intake", type="topic", durable=True)
INTAKE_QUEUE = Queue("violations.intake", exchange=INTAKE_EXCHANGE, routing_key="violation.#",
                     durable=True)
HTTP_STATUS = {"recorded": 201, "amended": 200, "revoked": 200, "duplicate": 200,
               "conflict": 409, "rejected": 400, "not_found": 404}
JURISDICTIONS = loader.load().agencies  # refuses to start on an invalid catalog file
MAX_BATCH = 500


@published
class ViolationsService:
    name = "violations"

    db = Mongo("violations", indexes=ensure_indexes)
    dispatch = Dispatcher()
    log = Log()
    correlation_id = CorrelationId()
    caller = Caller()
    identity = IdentityKey()  # agencies' records carry documents: this service keys them

    def _intake(self) -> Intake:
        return Intake(self.db, self.dispatch, JURISDICTIONS, self.correlation_id, self.caller,
                      identity=self.identity)

    # -- AMQP: routing keys violation.record | violation.amend | violation.revoke --------
    # A message that fails goes to retry.violations.intake or dlq.violations.intake: those
    # copies carry person ids and masks, never an identity number (shared.identity.redact).
    @consume(INTAKE_QUEUE, roles=("agency",), redact=identity_redact)
    def on_intake(self, body, meta):
        """Routing key ``violation.record`` | ``violation.amend`` | ``violation.revoke``; the
        body is the record, the amendment or the revocation; the AMQP ``message_id`` property
        identifies the message in the rejections store."""
        command = (meta.get("routing_key") or "violation.record").split(".")[-1]
        if command not in ("record", "amend", "revoke"):
            raise PermanentError(f"unknown routing key {meta.get('routing_key')!r}; use "
                                 "violation.record, violation.amend or violation.revoke")
        message_id = str(meta.get("message_id") or uuid.uuid4().hex)[:80]
        outcome = getattr(self._intake(), command)(body, via="amqp", message_id=message_id)
        self.log.info("intake message handled", command=command, outcome=outcome.status,
                      violation_id=outcome.violation_id)
        if outcome.status in ("rejected", "conflict", "not_found"):
            # Kept in the rejections store with the reasons; the copy goes to the DLQ so an
            # operator can fix and replay it.
            raise PermanentError("; ".join(f"{e['field']}: {e['problem']}" for e in outcome.errors))
        return outcome.as_dict()

    # -- HTTP ------------------------------------------------------------------------------
    @http("POST", "/v1/violations", roles=("agency",))
    def post_violation(self, request):
        outcome = self._intake().record(read_json(request), via="http",
                                        message_id=uuid.uuid4().hex)
        self.log.info("violation posted", outcome=outcome.status, violation_id=outcome.violation_id)
        return json_response(HTTP_STATUS[outcome.status], outcome.as_dict())

    @http("POST", "/v1/violations:batch", roles=("agency",))
    def post_batch(self, request):
        """Up to 500 records in one request (bulk import); one outcome per record, in order.
        ``message_ids`` (optional, same length) make re-sent batches identifiable."""
        body = read_json(request)
        records = body.get("records") if isinstance(body, dict) else None
        if not isinstance(records, list) or not 1 <= len(records) <= MAX_BATCH:
            return problem(400, "invalid request", [{"field": "records", "problem":
                                                     f"must be a list of 1 to {MAX_BATCH} records"}])
        ids = body.get("message_ids") or [uuid.uuid4().hex for _ in records]
        if not isinstance(ids, list) or len(ids) != len(records):
            return problem(400, "invalid request", [{"field": "message_ids", "problem":
                                                     "must have one id per record"}])
        outcomes = self._intake().record_many(records, via="import",
                                              message_ids=[str(i)[:80] for i in ids])
        return json_response(200, {"results": [{"index": index, **outcome.as_dict()}
                                               for index, outcome in enumerate(outcomes)]})

    @http("PUT", "/v1/violations/<string:agency>/<string:document>", roles=("agency",))
    def put_amendment(self, request, agency, document):
        body = read_json(request)
        if isinstance(body, dict) and isinstance(body.get("violation"), dict):
            if (body["violation"].get("agency_code"), body["violation"].get("document_number")) != (agency, document):
                return problem(400, "path and violation.agency_code/document_number differ")
        outcome = self._intake().amend(body, via="http", message_id=uuid.uuid4().hex)
        return json_response(HTTP_STATUS[outcome.status], outcome.as_dict())

    @http("POST", "/v1/violations/<string:agency>/<string:document>/revocation", roles=("agency",))
    def post_revocation(self, request, agency, document):
        body = read_json(request)
        if not isinstance(body, dict):
            return problem(400, "body must be a JSON object with a reason")
        body = {**body, "agency_code": agency, "document_number": document}
        outcome = self._intake().revoke(body, via="http", message_id=uuid.uuid4().hex)
        return json_response(HTTP_STATUS[outcome.status], outcome.as_dict())

    @http("GET", "/v1/violations/<string:agency>/<string:document>", roles=("agency", "regulator"))
    def get_violation(self, request, agency, document):
        query = ViolationQuerySchema().load(dict(request.args))
        doc = self.db.violations.find_one({"_id": f"{agency}/{document}"}, {"event_ids": 0})
        if doc is None:
            return problem(404, f"no violation {agency}/{document}")
        self._log_person_lookups([doc], query.get("purpose"))
        return json_response(200, _public(doc))

    @http("GET", "/v1/violations", roles=("agency", "regulator"))
    def list_violations(self, request):
        uscc = request.args.get("uscc")
        if not uscc:
            return problem(400, "query parameter uscc is required")
        purpose = request.args.get("purpose")
        if purpose is not None:
            ViolationQuerySchema().load({"purpose": purpose})
        docs = list(self.db.violations.find({"record.uscc": uscc.upper()},
                                            {"event_ids": 0, "versions": 0}).limit(500))
        self._log_person_lookups(docs, purpose)
        return json_response(200, {"uscc": uscc.upper(), "violations": [_public(d) for d in docs]})

    @http("GET", "/v1/regions/<string:region>/violations", roles=("agency", "regulator"))
    def region_feed(self, request, region):
        """Records by entities registered in ``region`` or committed there (a GB/T 2260 code:
        province, city or county), in change order; ``next`` resumes. A record decided in
        Shanxi against a Zhejiang entity is in Zhejiang's feed: the registration place that
        SAMR Order 45 art. 10 has the deciding authority forward it to."""
        errors = [] if (len(region) == 6 and region.isdigit()) else [
            {"field": "region", "problem": "must be a GB/T 2260 region code of 6 digits"}]
        try:
            query = RegionFeedQuerySchema().load(dict(request.args))
        except ValidationError as exc:
            errors += field_errors(exc.messages)
            query = {}
        selector = {"regions": region}
        if query.get("since"):
            try:
                at, vid = decode_cursor(query["since"])
                selector["$or"] = [{"updated_at": {"$gt": at}},
                                   {"updated_at": at, "_id": {"$gt": vid}}]
            except ValueError:
                errors.append({"field": "since",
                               "problem": "must be the `next` cursor of a previous answer"})
        if errors:
            return problem(400, "invalid query", errors)
        docs = list(self.db.violations.find(selector, {"event_ids": 0, "versions": 0})
                    .sort([("updated_at", 1), ("_id", 1)]).limit(query["limit"]))
        self._log_person_lookups(docs, query.get("purpose"))
        cursor = (encode_cursor(docs[-1]["updated_at"], docs[-1]["_id"]) if docs
                  else query.get("since"))
        return json_response(200, {"region": region, "violations": [_public(d) for d in docs],
                                   "next": cursor})

    def _log_person_lookups(self, docs, purpose) -> None:
        """A record naming a person is a lookup of that person: who asked and why (the
        ``purpose`` query parameter; null when none was given) are kept in person_access."""
        now = datetime.now(timezone.utc)
        people = {person.get("person_id") for d in docs
                  for person in [d["record"].get("legal_representative") or {},
                                 *(d["record"].get("persons") or ())]} - {None}
        for person_id in sorted(people):
            self.db.person_access.insert_one({"person_id": person_id, "at": now,
                                              "asked_by": self.caller.encode(),
                                              "purpose": purpose, "via": "violations"})
            self.log.info("person looked up", person_id=person_id,
                          asked_by=self.caller.encode(), purpose=purpose)

    @http("GET", "/v1/rejections/<string:rejection_id>", roles=("agency", "regulator"))
    def get_rejection(self, request, rejection_id):
        doc = self.db.rejections.find_one({"_id": rejection_id}, {"event_ids": 0})
        if doc is None:
            return problem(404, f"no rejection {rejection_id}")
        return json_response(200, _public(doc, "rejection_id"))

    @http("GET", "/v1/rejections", roles=("agency", "regulator"))
    def list_rejections(self, request):
        query = {}
        if request.args.get("agency_code"):
            query["agency_code"] = request.args["agency_code"]
        docs = self.db.rejections.find(query, {"event_ids": 0}).sort("received_at", -1).limit(100)
        return json_response(200, {"rejections": [_public(d, "rejection_id") for d in docs]})

    @timer(interval=2)
    def relay_outbox(self):
        Outbox(self.db, self.dispatch).sweep()


def _public(doc: dict, id_field: str = "violation_id") -> dict:
    doc = dict(doc)
    doc[id_field] = doc.pop("_id")
    return doc
