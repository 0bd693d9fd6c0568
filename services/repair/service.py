"""Repair service: credit repair (信用修复), objections (异议) and the public record.

Who does what (roles from ``shared.auth``; administrators may do everything):

- file a repair application or an objection: ``regulator`` (the credit desk acting for the
  entity), ``platform`` (as the merchant's agent) or ``agency`` (another agency acting for the
  entity; never the recording agency, which decides). The applicant is named in the body and
  the caller's credential is recorded as ``filed_by``; the ``uscc`` must be the record's entity.
- decide: the recording agency (credential subject = the record's agency code before ``-``)
  or a regulator. Corrections and revocations themselves go through violation intake (the
  one path that changes a record); the objection decision records the outcome once the
  amendment or revocation has arrived here. A revocation closes open cases by itself.
- the public record: every authenticated role.
"""
from __future__ import annotations

from datetime import date, datetime, timezone
from functools import wraps

from marshmallow import ValidationError
from nameko.timer import timer
from werkzeug.wrappers import Response

from contracts.common import USCC, Instant
from contracts.events import read_event
from contracts.repair import (ObjectionDecisionSchema, ObjectionRequestSchema,
                              PublicRecordSchema, RepairApplicationSchema, RepairDecisionSchema)
from shared.auth import Caller
from shared.entrypoints import (PROBLEM_CONTENT_TYPE, event_handler, http, json_dumps,
                                json_response, problem_body, read_json)
from shared.logging import CorrelationId, Log
from shared.mongo import Mongo
from shared.outbox import Outbox
from shared.service import Dispatcher, published
from rules import loader
from services.repair.cases import Cases, Refusal, ensure_indexes

# Refuse to start on an invalid catalog file: the import fails with every problem named.
_CATALOGS = loader.load()
RULES = _CATALOGS.repair
CALENDAR = _CATALOGS.calendar
FILERS = ("agency", "platform", "regulator")
DECIDERS = ("agency", "regulator")
EVERYONE = ("agency", "gatekeeper", "platform", "regulator")
_PUBLIC_RECORD = PublicRecordSchema()
STATUSES = ("pending", "approved", "rejected", "closed", "open", "decided")
_DECLARED = {"penalty_performed": True, "harm_removed": True, "commitment_letter": True}


def refusals(method):
    """A ``Refusal`` becomes its JSON answer."""
    @wraps(method)
    def wrapper(self, request, *args, **kwargs):
        try:
            return method(self, request, *args, **kwargs)
        except Refusal as exc:
            return Response(json_dumps({**problem_body(exc.status, str(exc)), **exc.extra}),
                            status=exc.status, mimetype=PROBLEM_CONTENT_TYPE)
    return wrapper


def query_instant(args, name: str = "as_of") -> datetime:
    if args.get(name) is None:
        return datetime.now(timezone.utc)
    try:
        return Instant().deserialize(args.get(name))
    except ValidationError:
        raise ValidationError({name: ["must be an ISO 8601 instant, e.g. "
                                      "2026-11-28T10:00:00+08:00"]}) from None


def query_code(value: str, name: str = "uscc") -> str:
    try:
        return USCC().deserialize(value)
    except ValidationError as exc:
        raise ValidationError({name: exc.messages}) from None


@published
class RepairService:
    name = "repair"

    db = Mongo("repair", indexes=ensure_indexes)
    dispatch = Dispatcher()
    log = Log()
    correlation_id = CorrelationId()
    caller = Caller()

    def _cases(self) -> Cases:
        return Cases(self.db, self.dispatch, self.correlation_id, RULES, CALENDAR, self.caller)

    # -- the record read model (Violation* events) ------------------------------------------
    @event_handler("violations", "ViolationRecorded")
    def on_violation_recorded(self, body):
        self._apply(body)

    @event_handler("violations", "ViolationAmended")
    def on_violation_amended(self, body):
        self._apply(body)

    @event_handler("violations", "ViolationRevoked")
    def on_violation_revoked(self, body):
        self._apply(body)

    def _apply(self, body):
        envelope, payload = read_event(body)
        changed = self._cases().apply_violation(envelope, payload)
        self.log.info("record applied", violation_id=payload["violation_id"],
                      version=payload["version"], status=payload["status"], changed=changed)

    # -- credit repair ---------------------------------------------------------------------
    @http("POST", "/v1/repair/applications", roles=FILERS)
    @refusals
    def post_application(self, request):
        data = RepairApplicationSchema().load(_object(read_json(request)))
        view = self._cases().file_application(data, datetime.now(timezone.utc))
        self.log.info("repair application filed", application_id=view["application_id"],
                      violation_id=view["violation_id"], scope=view["scope"])
        return json_response(201, view)

    @http("GET", "/v1/repair/applications/<string:app_id>", roles=FILERS)
    @refusals
    def get_application(self, request, app_id):
        cases = self._cases()
        doc = cases.get_visible(self.db.applications, app_id, "application")
        return json_response(200, cases.application_view(doc, query_instant(request.args)))

    @http("GET", "/v1/repair/applications", roles=FILERS)
    @refusals
    def list_applications(self, request):
        """``status``, ``uscc``, ``overdue=true`` (pending past the deadline at ``as_of``)."""
        args = _list_args(request.args)
        cases = self._cases()
        views = cases.list_cases(self.db.applications, args, args["as_of"],
                                 cases.application_view)
        return json_response(200, {"as_of": args["as_of"], "applications": views})

    @http("POST", "/v1/repair/applications/<string:app_id>/decision", roles=DECIDERS)
    @refusals
    def post_application_decision(self, request, app_id):
        data = RepairDecisionSchema().load(_object(read_json(request)))
        view = self._cases().decide_application(app_id, data, datetime.now(timezone.utc))
        self.log.info("repair application decided", application_id=app_id,
                      decision=data["decision"])
        return json_response(200, view)

    @http("GET", "/v1/repair/eligibility", roles=FILERS)
    @refusals
    def get_eligibility(self, request):
        """Would an application for this record succeed at ``as_of`` (default now), assuming
        the applicant's declarations (penalty performed, harm removed, commitment letter)?"""
        args = request.args
        missing = [k for k in ("agency_code", "document_number", "uscc") if not args.get(k)]
        if missing:
            raise ValidationError({k: ["required"] for k in missing})
        code = query_code(args["uscc"])
        doc = self._cases().record_doc(args["agency_code"], args["document_number"], code)
        result = self._cases().eligibility(doc["_id"], code, _DECLARED, query_instant(args))
        return json_response(200, {"violation_id": doc["_id"], **result.as_dict(),
                                   "assumes": sorted(_DECLARED)})

    # -- objections ------------------------------------------------------------------------
    @http("POST", "/v1/objections", roles=FILERS)
    @refusals
    def post_objection(self, request):
        data = ObjectionRequestSchema().load(_object(read_json(request)))
        view = self._cases().open_objection(data, datetime.now(timezone.utc))
        self.log.info("objection opened", objection_id=view["objection_id"],
                      violation_id=view["violation_id"])
        return json_response(201, view)

    @http("GET", "/v1/objections/<string:obj_id>", roles=FILERS)
    @refusals
    def get_objection(self, request, obj_id):
        cases = self._cases()
        doc = cases.get_visible(self.db.objections, obj_id, "objection")
        return json_response(200, cases.objection_view(doc, query_instant(request.args)))

    @http("GET", "/v1/objections", roles=FILERS)
    @refusals
    def list_objections(self, request):
        """``status``, ``uscc``, ``overdue=true`` (open past the deadline at ``as_of``)."""
        args = _list_args(request.args)
        cases = self._cases()
        views = cases.list_cases(self.db.objections, args, args["as_of"], cases.objection_view)
        return json_response(200, {"as_of": args["as_of"], "objections": views})

    @http("POST", "/v1/objections/<string:obj_id>/decision", roles=DECIDERS)
    @refusals
    def post_objection_decision(self, request, obj_id):
        data = ObjectionDecisionSchema().load(_object(read_json(request)))
        view = self._cases().decide_objection(obj_id, data, datetime.now(timezone.utc))
        self.log.info("objection decided", objection_id=obj_id, outcome=data["outcome"])
        return json_response(200, view)

    # -- public disclosure -----------------------------------------------------------------
    @http("GET", "/v1/public/entities/<string:code>", roles=EVERYONE)
    @refusals
    def get_public_record(self, request, code):
        """What is public about the entity at ``as_of`` (default now): penalties inside their
        publicity window and listings, personal data masked."""
        unknown = [k for k in request.args if k != "as_of"]
        if unknown:
            raise ValidationError({k: ["unknown query parameter"] for k in unknown})
        code = query_code(code)
        body = self._cases().public(code, query_instant(request.args))
        return json_response(200, _PUBLIC_RECORD.dump(body))

    # -- the calendar ----------------------------------------------------------------------
    @http("GET", "/v1/calendar/deadline", roles=EVERYONE)
    def get_deadline(self, request):
        """``from`` (a date) plus ``working_days``: the last day of the period."""
        errors = {}
        try:
            start = date.fromisoformat(request.args.get("from", ""))
        except ValueError:
            errors["from"] = ["must be a date, e.g. 2026-09-30"]
        try:
            days = int(request.args.get("working_days", ""))
            if not 0 <= days <= 1000:
                raise ValueError
        except ValueError:
            errors["working_days"] = ["must be a whole number from 0 to 1000"]
        if errors:
            raise ValidationError(errors)
        due = CALENDAR.add_working_days(start, days)
        return json_response(200, {"from": start.isoformat(), "working_days": days,
                                   "due_by": due.isoformat(), "calendar": CALENDAR.version,
                                   "covered": CALENDAR.covers(start) and CALENDAR.covers(due)})

    @timer(interval=2)
    def relay_outbox(self):
        Outbox(self.db, self.dispatch).sweep()


def _object(body):
    if not isinstance(body, dict):
        raise ValidationError({"_schema": [f"expected a JSON object, got {type(body).__name__}"]})
    return body


def _list_args(args) -> dict:
    allowed = {"status", "uscc", "overdue", "as_of"}
    unknown = [k for k in args if k not in allowed]
    if unknown:
        raise ValidationError({k: ["unknown query parameter"] for k in unknown})
    if args.get("status") and args["status"] not in STATUSES:
        raise ValidationError({"status": [f"must be one of {', '.join(STATUSES)}"]})
    out = {"status": args.get("status"), "as_of": query_instant(args),
           "overdue": (args.get("overdue") or "").lower() in ("1", "true", "yes")}
    if args.get("uscc"):
        out["uscc"] = query_code(args["uscc"])
    return out
