"""Every HTTP endpoint of every service, declared once: the source of the OpenAPI documents.

Each ``endpoint(...)`` below says what one ``@http`` handler in ``services/*/service.py``
accepts and answers: method, rule (exactly as written in the decorator), roles, handler name,
request, query and response schemas (marshmallow, the same ones the code uses), and the
statuses it can answer besides the success. ``tests/unit/test_contracts.py`` reads the
handlers' decorators and fails until the code and this registry agree (roles included); its
message prints the ``endpoint(...)`` line to add for an undocumented handler. Then regenerate
the published copies with ``lianchen contracts`` (or ``make contracts``).

Every service also serves ``GET /health``, ``/openapi.json``, ``/asyncapi.json`` and
``/metrics`` (``PUBLIC``, see ``published_endpoints``); a new service only needs a line in
``SERVICES``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timezone
from typing import Mapping

from werkzeug.http import http_date

from marshmallow import Schema, fields, validate

from contracts.common import ProblemSchema
from contracts.events import FieldErrorSchema
from contracts import gate, intake, notifications, persons, registry, repair, scoring
from contracts.violation import AmendmentSchema, ViolationSchema

API_VERSION = "1.0.0"
PUBLIC = None  # roles=PUBLIC: no credential (the same value as shared.entrypoints.PUBLIC)

# Services and their local ports (make run; docker compose maps the same host ports).
SERVICES: dict[str, int] = {
    "registry": 8001,
    "violations": 8002,
    "scoring": 8003,
    "restrictions": 8004,
    "notifications": 8005,
    "repair": 8006,
}


class ErrorSchema(ProblemSchema):
    """Every refusal, as an RFC 9457 problem (``application/problem+json``): what was wrong,
    and for bad input each field with its problem."""

    errors = fields.List(fields.Nested(FieldErrorSchema), metadata={
        "description": "extension member: each field (dotted path) with its problem"})


class HealthSchema(Schema):
    service = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(("ok", "degraded")))
    error = fields.String(metadata={"description": "why the service is degraded"})


class ReadySchema(Schema):
    service = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(("ready", "not_ready")))
    checks = fields.Dict(keys=fields.String(), values=fields.String(), required=True,
                         metadata={"description": "store, broker and each read model "
                                                  "(read_model:<name>): ok, or why not"})


class CodeVersionSchema(Schema):
    version = fields.String(required=True)
    commit = fields.String(required=True, allow_none=True)


class CalendarVersionSchema(Schema):
    version = fields.String(required=True)
    official_years = fields.List(fields.Integer(), required=True)
    provisional_years = fields.List(fields.Integer(), required=True, metadata={
        "description": "years whose holidays are not yet published: working-day deadlines in "
                       "them may move"})


class AboutSchema(Schema):
    service = fields.String(required=True)
    code = fields.Nested(CodeVersionSchema, required=True)
    data = fields.Dict(keys=fields.String(), values=fields.String(), required=True, metadata={
        "description": "every catalog file and its version in force (catalog/versions.json)"})
    catalog = fields.String(required=True, metadata={"description": "measures catalog version"})
    score_model = fields.String(required=True)
    calendar = fields.Nested(CalendarVersionSchema, required=True)


@dataclass(frozen=True)
class Answer:
    description: str
    schema: type[Schema] | None = None
    content_type: str = "application/json"


@dataclass(frozen=True)
class Endpoint:
    service: str
    method: str
    rule: str  # werkzeug rule as in the @http decorator: /v1/entities/<string:code>/status
    handler: str  # the service method's name
    roles: tuple[str, ...] | None
    summary: str
    answers: Mapping[int, Answer] = field(default_factory=dict)
    request: type[Schema] | None = None
    query: type[Schema] | None = None
    description: str = ""
    # Deprecation (docs/CHANGELOG.md): the day it was deprecated, and the day it goes (Sunset)
    deprecated: date | None = None
    sunset: date | None = None

    def deprecation_headers(self) -> dict[str, str]:
        """``Deprecation`` (RFC 9745: ``@`` and the Unix time) and ``Sunset`` (RFC 8594: an
        HTTP date) for a deprecated endpoint; nothing for the others."""
        if self.deprecated is None:
            return {}
        since = datetime.combine(self.deprecated, time(), timezone.utc)
        headers = {"Deprecation": f"@{int(since.timestamp())}",
                   "Link": '</docs/CHANGELOG.md>; rel="deprecation"'}
        if self.sunset is not None:
            headers["Sunset"] = http_date(datetime.combine(self.sunset, time(), timezone.utc))
        return headers

    @property
    def path(self) -> str:
        """The OpenAPI path template: ``/v1/entities/{code}/status``."""
        return re.sub(r"<(?:[a-z]+:)?(\w+)>", r"{\1}", self.rule)

    @property
    def path_params(self) -> list[str]:
        return re.findall(r"<(?:[a-z]+:)?(\w+)>", self.rule)

    @property
    def key(self) -> tuple:
        return (self.service, self.method, self.rule)


ENDPOINTS: list[Endpoint] = []

PROBLEM = "application/problem+json"
_AUTH_ERRORS = {
    401: Answer("no valid credential (send Authorization: Bearer <key>)", ErrorSchema, PROBLEM),
    403: Answer("the credential's role may not call this endpoint", ErrorSchema, PROBLEM),
    429: Answer("rate limit of the credential exceeded; see Retry-After", ErrorSchema, PROBLEM),
}


def endpoint(service: str, method: str, rule: str, *, handler: str, roles, summary: str,
             response: type[Schema] | None = None, status: int = 200,
             also: Mapping[int, str | tuple[str, type[Schema] | None]] | None = None,
             errors: Mapping[int, str] | None = None, request: type[Schema] | None = None,
             query: type[Schema] | None = None, description: str = "",
             content_type: str = "application/json", deprecated: date | None = None,
             sunset: date | None = None) -> Endpoint:
    """Declare one endpoint.

    ``response`` is the body answered with ``status``; ``also`` other statuses, each a
    description (same body schema as ``response``) or ``(description, schema)``; ``errors``
    statuses answered with ``ErrorSchema``. 401/403/429 are added for every endpoint that
    needs a credential, and 400 for one that reads a body, a query or a path parameter.
    """
    if service not in SERVICES:
        raise ValueError(f"unknown service {service!r}: add it to SERVICES")
    answers: dict[int, Answer] = {status: Answer(summary, response, content_type)}
    for code, value in (also or {}).items():
        desc, schema = (value, response) if isinstance(value, str) else value
        is_problem = isinstance(schema, type) and issubclass(schema, ProblemSchema)
        answers[code] = Answer(desc, schema, PROBLEM if is_problem else content_type)
    for code, desc in (errors or {}).items():
        answers[code] = Answer(desc, ErrorSchema, PROBLEM)
    reads_input = request is not None or query is not None or "<" in rule
    if reads_input and 400 not in answers:
        answers[400] = Answer("invalid request: each field with its problem", ErrorSchema, PROBLEM)
    if roles is not PUBLIC:
        roles = tuple(roles)
        for code, answer in _AUTH_ERRORS.items():
            answers.setdefault(code, answer)
    if sunset is not None and deprecated is None:
        raise ValueError(f"{method} {rule}: a sunset needs a deprecation date")
    declared = Endpoint(service, method.upper(), rule, handler, roles, summary,
                        dict(sorted(answers.items())), request, query, description,
                        deprecated, sunset)
    if any(e.key == declared.key for e in ENDPOINTS):
        raise ValueError(f"{method} {rule} declared twice for {service}")
    ENDPOINTS.append(declared)
    return declared


def published_endpoints(service: str) -> list[Endpoint]:
    """What every service serves without a credential (``shared.service.published`` + health)."""
    return [
        Endpoint(service, "GET", "/health", "health", PUBLIC, "Liveness and store reachability",
                 {200: Answer("up, store reachable", HealthSchema),
                  503: Answer("degraded: the store is unreachable", HealthSchema)}),
        Endpoint(service, "GET", "/readyz", "readyz", PUBLIC,
                 "Readiness: store and broker reachable, read models loaded",
                 {200: Answer("ready for traffic", ReadySchema),
                  503: Answer("not ready: the checks say what is missing", ReadySchema)}),
        Endpoint(service, "GET", "/v1/about", "about", PUBLIC,
                 "Code and data versions: catalog, score model, calendar (provisional years)",
                 {200: Answer("the versions this process answers under", AboutSchema)}),
        Endpoint(service, "GET", "/openapi.json", "openapi_json", PUBLIC,
                 "This service's HTTP contract (OpenAPI 3)",
                 {200: Answer("the OpenAPI document", None)}),
        Endpoint(service, "GET", "/asyncapi.json", "asyncapi_json", PUBLIC,
                 "The system's messaging contract (AsyncAPI 2.6)",
                 {200: Answer("the AsyncAPI document", None)}),
        Endpoint(service, "GET", "/metrics", "metrics", PUBLIC,
                 "Prometheus metrics of this process",
                 {200: Answer("Prometheus text exposition format", None,
                              "text/plain; version=0.0.4")}),
    ]


def for_service(service: str) -> list[Endpoint]:
    return [e for e in ENDPOINTS if e.service == service] + published_endpoints(service)


def all_endpoints() -> list[Endpoint]:
    return [e for service in SERVICES for e in for_service(service)]


def stub(service: str, handler: str, method: str, rule: str, roles) -> str:
    """The line to add here for an undocumented handler (printed by the contract test)."""
    roles_text = "PUBLIC" if roles is PUBLIC else repr(tuple(roles))
    return (f'endpoint("{service}", "{method}", "{rule}", handler="{handler}", '
            f'roles={roles_text},\n         summary="...", response=...)')


def find(service: str, method: str, path: str) -> Endpoint:
    """The endpoint that answers ``method path`` (a concrete path: /v1/scores/9135...)."""
    from werkzeug.routing import Map, Rule
    from werkzeug.exceptions import HTTPException
    declared = for_service(service)
    adapter = Map([Rule(e.rule, methods=[e.method], endpoint=i)
                   for i, e in enumerate(declared)]).bind("localhost")
    try:
        index, _ = adapter.match(path, method=method.upper())
    except HTTPException as exc:
        raise LookupError(f"{service}: no endpoint declared for {method} {path}") from exc
    return declared[index]


def response_errors(service: str, method: str, path: str, status: int, body) -> dict | None:
    """Validate an answer against its declared schema: None when it conforms, else the
    problems by field (an undeclared status or an undeclared field is a problem too)."""
    declared = find(service, method, path)
    answer = declared.answers.get(status)
    if answer is None:
        return {"_status": [f"{status} is not declared for {declared.method} {declared.rule}"]}
    if answer.schema is None:
        return None
    return answer.schema().validate(body) or None


# --- registry -------------------------------------------------------------------------------
endpoint("registry", "PUT", "/v1/registry/entities/<string:code>", handler="put_entity",
         roles=("regulator", "registrar"),
         summary="Register or update an entity (full view returned)",
         request=registry.EntitySchema, response=registry.EntityViewSchema,
         also={201: "registered: the code was unknown"},
         description="Appointments (legal representative, officers) are kept with their "
                     "dates (GET .../appointments). An appointment of a person a person "
                     "measure bars from the position is recorded, flagged in "
                     "`barred_appointments` with the bar, and alerts regulators "
                     "(BarredAppointmentRecorded); `override_reason` is recorded with it.")
endpoint("registry", "GET", "/v1/registry/entities/<string:code>/appointments",
         handler="get_appointments", roles=("regulator",),
         summary="Who held which position at the entity, from when to when, and any bar flag",
         query=registry.AppointmentsQuerySchema, response=registry.AppointmentsAnswerSchema,
         errors={404: "the entity is not registered"})
endpoint("registry", "POST", "/v1/registry/entities/<string:code>/memberships",
         handler="post_membership", roles=("platform", "regulator"),
         summary="Record that the entity sells on a platform (replaces that platform's shop)",
         request=registry.MembershipSchema, response=registry.MembershipsAnswerSchema,
         description="A platform may set only its own memberships (platform_id = its "
                     "platform; otherwise 403) and sees only its own in the answer.",
         errors={404: "the entity is not registered"})
endpoint("registry", "GET", "/v1/registry/entities/<string:code>", handler="get_entity",
         roles=("regulator",), summary="An entity with its violations and platform memberships",
         query=registry.EntityQuerySchema, response=registry.EntityViewSchema,
         errors={404: "the entity is not registered"})
endpoint("registry", "GET", "/v1/registry/persons/<string:person_id>", handler="get_person",
         roles=("regulator",), summary="A person by person id: who asked and why is logged",
         query=registry.PersonQuerySchema, response=registry.PersonViewSchema,
         errors={404: "no such person (never seen, or deleted after the retention period)"})

# --- violations -----------------------------------------------------------------------------
endpoint("violations", "POST", "/v1/violations", handler="post_violation", roles=("agency",),
         summary="Record one violation (the same record as on AMQP routing key "
                 "violation.record)",
         request=ViolationSchema, response=intake.OutcomeSchema, status=201,
         also={200: "duplicate: this record was already recorded, nothing changed",
               400: ("rejected: the record is kept in the rejections store with its errors "
                     "(a body that is not JSON gets an Error)", intake.OutcomeSchema),
               409: ("conflict: the agency/document number holds a different record; "
                     "send an amendment", intake.OutcomeSchema)})
endpoint("violations", "POST", "/v1/violations:batch", handler="post_batch", roles=("agency",),
         summary="Record up to 500 violations (bulk import); one outcome per record, in order",
         request=intake.BatchRequestSchema, response=intake.BatchAnswerSchema)
endpoint("violations", "PUT", "/v1/violations/<string:agency>/<string:document>",
         handler="put_amendment", roles=("agency",),
         summary="Amend a record: the full corrected record and why (every version is kept)",
         request=AmendmentSchema, response=intake.OutcomeSchema,
         also={400: ("rejected (or the path and the record's key differ: an Error)",
                     intake.OutcomeSchema),
               404: ("not_found: never recorded", intake.OutcomeSchema),
               409: ("conflict: revoked, another entity, or concurrent changes",
                     intake.OutcomeSchema)})
endpoint("violations", "POST", "/v1/violations/<string:agency>/<string:document>/revocation",
         handler="post_revocation", roles=("agency",),
         summary="Revoke a record (its restrictions are lifted downstream)",
         request=intake.RevocationRequestSchema, response=intake.OutcomeSchema,
         also={404: ("not_found: never recorded", intake.OutcomeSchema),
               409: ("conflict: concurrent changes; retry", intake.OutcomeSchema)})
endpoint("violations", "GET", "/v1/violations/<string:agency>/<string:document>",
         handler="get_violation", roles=("agency", "regulator"),
         summary="A record with every version", response=intake.ViolationDocumentSchema,
         query=intake.ViolationQuerySchema, errors={404: "no such record"})
endpoint("violations", "GET", "/v1/violations", handler="list_violations",
         roles=("agency", "regulator"), summary="An entity's records (at most 500)",
         query=intake.ViolationsQuerySchema, response=intake.ViolationListSchema)
endpoint("violations", "GET", "/v1/regions/<string:region>/violations", handler="region_feed",
         roles=("agency", "regulator"),
         summary="A region's feed: records by entities registered there or committed there "
                 "(SAMR Order 45 art. 10: a record decided elsewhere reaches the registration "
                 "place), in change order",
         query=intake.RegionFeedQuerySchema, response=intake.RegionFeedSchema)
endpoint("violations", "GET", "/v1/rejections/<string:rejection_id>", handler="get_rejection",
         roles=("agency", "regulator"), summary="A refused message or request, with the reasons",
         response=intake.RejectionSchema, errors={404: "no such rejection"})
endpoint("violations", "GET", "/v1/rejections", handler="list_rejections",
         roles=("agency", "regulator"), summary="The latest 100 rejections",
         query=intake.RejectionsQuerySchema, response=intake.RejectionListSchema)

# --- scoring --------------------------------------------------------------------------------
_EVERYONE = ("agency", "gatekeeper", "platform", "regulator", "registrar")  # scoring: every role
endpoint("scoring", "GET", "/v1/scores/<string:code>", handler="get_score",
         roles=("regulator",), summary="Credit score, risk class and their explanation",
         response=scoring.ScoreViewSchema)
endpoint("scoring", "GET", "/v1/scores/<string:code>/public", handler="get_public_view",
         roles=_EVERYONE, summary="The records bearing on an entity's credit that are public "
                                  "(neither class nor score: the class is not public)",
         response=scoring.PublicCreditViewSchema)
endpoint("scoring", "POST", "/v1/positive-records", handler="post_positive_record",
         roles=("agency", "regulator"),
         summary="Record a positive record (honour, commitment fulfilled, ...): bounded credit",
         request=scoring.PositiveRecordRequestSchema, response=scoring.PositiveRecordAnswerSchema,
         status=201, also={200: "duplicate: this key already holds this record"},
         errors={409: "conflict: the key already holds a different record"})
endpoint("scoring", "POST", "/v1/inspection-plans", handler="post_plan", roles=("regulator",),
         summary="Draw a risk-based random inspection plan (双随机): targets per class, two "
                 "inspectors each without a conflict; the seed reproduces it",
         request=scoring.PlanRequestSchema, response=scoring.PlanSchema, status=201,
         also={200: "the same request over the same population: the same plan"},
         errors={422: "a target no two inspectors of the roster may take (named)"})
endpoint("scoring", "GET", "/v1/inspection-plans/<string:plan_id>", handler="get_plan",
         roles=("regulator",), summary="An inspection plan with its targets' classes and results",
         response=scoring.PlanSchema, errors={404: "no such plan"})
endpoint("scoring", "POST", "/v1/inspection-plans/<string:plan_id>/results",
         handler="post_result", roles=("regulator",),
         summary="Record (or correct, until published) the result of one target's inspection",
         request=scoring.InspectionResultSchema, response=scoring.ResultAnswerSchema, status=201,
         also={200: "duplicate or corrected"},
         errors={404: "no such plan", 409: "the plan's results are published"})
endpoint("scoring", "POST", "/v1/inspection-plans/<string:plan_id>/publication",
         handler="publish_results", roles=("regulator",),
         summary="Publish the plan's results (一公开); every target needs a result",
         response=scoring.PublishedResultsSchema, status=201,
         also={200: "published already"},
         errors={404: "no such plan", 409: "targets without a result (named)"})
endpoint("scoring", "GET", "/v1/inspection-results/<string:plan_id>",
         handler="get_published_results", roles=_EVERYONE,
         summary="Published inspection results (no class, no inspector)",
         response=scoring.PublishedResultsSchema, errors={404: "not published"})

# --- restrictions (gate-keeping) ------------------------------------------------------------
_STARTING = {503: "starting up: the status read model is loading; retry shortly"}
endpoint("restrictions", "GET", "/v1/entities/<string:code>/status", handler="get_status",
         roles=("gatekeeper", "regulator"),
         summary="May the entity pass, sector by sector, and why (audited: keep answer_id)",
         query=gate.StatusQuerySchema, response=gate.StatusAnswerSchema, errors=_STARTING)
endpoint("restrictions", "POST", "/v1/status:batch", handler="post_status_batch",
         roles=("gatekeeper", "regulator"), summary="Status of up to 1,000 entities at once",
         request=gate.StatusBatchRequestSchema, response=gate.StatusBatchAnswerSchema,
         errors=_STARTING)
endpoint("restrictions", "GET", "/v1/changes", handler="get_changes",
         roles=("gatekeeper", "regulator"),
         summary="Imposed and lifted restrictions in change order (follow with the cursor)",
         query=gate.ChangesQuerySchema, response=gate.ChangesPageSchema)
endpoint("restrictions", "GET", "/v1/answers/<string:answer_id>", handler="get_answer",
         roles=("gatekeeper", "regulator", "registrar"),
         summary="What a gate-keeper or registrar was told (each sees only its own answers)",
         response=gate.AuditedAnswerSchema, errors={404: "no such answer for this caller"})
endpoint("restrictions", "POST", "/v1/persons:status", handler="post_persons_status",
         roles=("registrar",),
         summary="May these persons take these positions (legal representative, director, "
                 "food roles, ...), and why not (audited: keep answer_id)",
         request=persons.PersonsStatusRequestSchema, response=persons.PersonsStatusAnswerSchema,
         description="Identity documents go in the body, never in the path; at most 1,000 a "
                     "request; `purpose` is required and stored with the answer. Person "
                     "measures are never part of an entity's status.")
endpoint("restrictions", "GET", "/v1/persons/changes", handler="get_person_changes",
         roles=("registrar",),
         summary="Imposed and lifted person measures in change order (registrars only)",
         query=gate.ChangesQuerySchema, response=persons.PersonChangesPageSchema)
endpoint("restrictions", "GET", "/v1/ping", handler="ping", roles=("gatekeeper", "regulator"),
         summary="A no-op on the gate-keeping server (benchmark baseline)",
         response=gate.PingSchema)

# --- notifications --------------------------------------------------------------------------
ADMINISTRATORS = ()  # roles=(): administrators only (they always pass)
_OTHER_PLATFORM = "a platform asked for another platform's subscriber"
endpoint("notifications", "POST", "/v1/subscriptions", handler="post_subscription",
         roles=("platform", "regulator"),
         summary="Subscribe to notices, or replace a subscription (same subscriber_id)",
         request=notifications.SubscriptionSchema,
         response=notifications.SubscriptionViewSchema, status=201,
         also={200: "replaced: the subscriber existed"},
         errors={403: "a platform may subscribe only itself, as kind platform (or the "
                      "subscriber belongs to another platform)"},
         description="A platform subscribes only itself; regulators (and administrators) "
                     "subscribe anyone, e.g. a department. Without webhook_secret the server "
                     "generates one (whsec_...) for a webhook or AMQP queue and returns it in "
                     "this answer only; a secret given is never returned.")
endpoint("notifications", "GET", "/v1/subscriptions", handler="list_subscriptions",
         roles=("platform", "regulator"),
         summary="Subscriptions (a platform sees only its own)",
         response=notifications.SubscriptionListSchema)
endpoint("notifications", "GET", "/v1/subscriptions/<string:subscriber_id>",
         handler="get_subscription", roles=("platform", "regulator"), summary="A subscription",
         response=notifications.SubscriptionViewSchema,
         errors={403: _OTHER_PLATFORM, 404: "no such subscription"})
endpoint("notifications", "DELETE", "/v1/subscriptions/<string:subscriber_id>",
         handler="delete_subscription", roles=("platform", "regulator"),
         summary="Delete a subscription (its undelivered push notices then go to the dead-letter "
                 "store)",
         response=notifications.SubscriptionDeletedSchema,
         errors={403: _OTHER_PLATFORM, 404: "no such subscription"})
endpoint("notifications", "POST", "/v1/subscriptions/<string:subscriber_id>/secret:rotate",
         handler="rotate_secret", roles=("platform", "regulator"),
         summary="Rotate the signing secret: a new server-generated one, shown once",
         request=notifications.SecretRotationSchema,
         response=notifications.SecretRotatedSchema,
         errors={403: _OTHER_PLATFORM, 404: "no such subscription",
                 409: "the subscription is pulled (GET /v1/notices): nothing is signed"},
         description="The previous secret keeps signing too (both signatures on every "
                     "notice) for previous_valid_hours, so the receiver can switch without "
                     "refusing a notice. Audited: who rotated, when (never the secret).")
endpoint("notifications", "GET", "/v1/notices", handler="list_notices",
         roles=("platform", "regulator"),
         summary="Notices with their delivery status and feedback (oldest first)",
         query=notifications.NoticesQuerySchema, response=notifications.NoticeListSchema,
         errors={403: _OTHER_PLATFORM,
                 404: "no such subscription (answered to platforms; others get an empty list)"})
endpoint("notifications", "GET", "/v1/notices/<string:notice_id>", handler="get_notice",
         roles=("platform", "regulator"),
         summary="A notice with its delivery status and feedback",
         response=notifications.NoticeViewSchema,
         errors={403: "the notice was sent to another platform", 404: "no such notice"})
endpoint("notifications", "POST", "/v1/notices/<string:notice_id>/feedback",
         handler="post_feedback", roles=("platform", "regulator"),
         summary="Feed back what was done about a notice (applied with cleared: 互认 to the "
                 "merchant's other platforms)",
         request=notifications.FeedbackSchema, response=notifications.FeedbackViewSchema,
         status=201,
         also={200: ("duplicate: this feedback was posted before; the first one stands",
                     notifications.FeedbackDuplicateSchema)},
         errors={403: "the notice was sent to another platform", 404: "no such notice",
                 409: "this status was already posted for the notice with other content"},
         description="One feedback per status per notice. `applied` with `cleared` on a "
                     "platform's notice emits MerchantCleared.")
endpoint("notifications", "GET", "/v1/closure", handler="get_closure",
         roles=("platform", "regulator"),
         summary="Closure per subscriber: sent, acknowledged, applied, overdue, pending, dead",
         query=notifications.ClosureQuerySchema, response=notifications.ClosureSchema,
         errors={403: _OTHER_PLATFORM,
                 404: "no such subscription (answered to platforms; others get no rows)"})
endpoint("notifications", "GET", "/v1/dead-notices", handler="list_dead_notices",
         roles=ADMINISTRATORS,
         summary="Notices in the dead-letter store, with why (operators)",
         query=notifications.DeadNoticesQuerySchema,
         response=notifications.DeadNoticeListSchema)
endpoint("notifications", "POST", "/v1/dead-notices:redeliver", handler="redeliver_dead_notices",
         roles=ADMINISTRATORS,
         summary="Send dead-lettered notices again, each with a fresh attempt budget "
                 "(operators)",
         request=notifications.RedeliverSchema, response=notifications.RedeliveryAnswerSchema,
         description="Give exactly one of notice_ids, subscriber_id or all=true. A lift "
                     "whose imposition is dead-lettered too takes it along, first.")

# --- repair ---------------------------------------------------------------------------------
FILERS = ("agency", "platform", "regulator")      # file applications and objections
DECIDERS = ("agency", "regulator")                # the recording agency, or a regulator
EVERYONE = ("agency", "gatekeeper", "platform", "regulator")
_NOT_ENTITLED = ("not entitled: the record is another entity's, the caller is the recording "
                 "agency, or the role may not call this", repair.CaseRefusalSchema)
_NOT_DECIDER = "only the recording agency or a regulator decides (or the role may not call this)"
_INELIGIBLE = ("not eligible: every blocking rule, with the earliest instant when waiting "
               "alone would do", repair.IneligibleSchema)
endpoint("repair", "POST", "/v1/repair/applications", handler="post_application",
         roles=FILERS,
         summary="Apply for credit repair (信用修复) of a record: publicity or the serious list",
         request=repair.RepairApplicationSchema, response=repair.ApplicationViewSchema,
         status=201,
         also={403: _NOT_ENTITLED, 422: _INELIGIBLE,
               409: ("an application for the same record and scope is pending",
                     repair.CaseRefusalSchema)},
         errors={404: "the record is not known (yet) to the repair service"})
endpoint("repair", "GET", "/v1/repair/applications", handler="list_applications",
         roles=FILERS,
         summary="Repair applications (an agency: its own agency's and what it filed; a "
                 "platform: what it filed)",
         query=repair.CasesQuerySchema, response=repair.ApplicationListSchema)
endpoint("repair", "GET", "/v1/repair/applications/<string:app_id>", handler="get_application",
         roles=FILERS, summary="A repair application (overdue judged at as_of)",
         query=repair.AsOfQuerySchema, response=repair.ApplicationViewSchema,
         errors={404: "no such application visible to the caller"})
endpoint("repair", "POST", "/v1/repair/applications/<string:app_id>/decision",
         handler="post_application_decision", roles=DECIDERS,
         summary="Approve (emits RecordRepaired) or reject a pending application",
         request=repair.RepairDecisionSchema, response=repair.ApplicationViewSchema,
         also={409: ("already decided, or changed concurrently", repair.CaseRefusalSchema),
               422: _INELIGIBLE},
         errors={403: _NOT_DECIDER, 404: "no such application"})
endpoint("repair", "GET", "/v1/repair/eligibility", handler="get_eligibility", roles=FILERS,
         summary="Would a repair application for this record succeed at as_of (declarations "
                 "assumed made)?",
         query=repair.EligibilityQuerySchema, response=repair.EligibilityAnswerSchema,
         also={403: ("the record is another entity's (or the role may not call this)",
                     repair.CaseRefusalSchema)},
         errors={404: "the record is not known (yet) to the repair service"})
endpoint("repair", "POST", "/v1/objections", handler="post_objection", roles=FILERS,
         summary="Object to a record (异议): it is under review until decided (emits "
                 "ObjectionOpened)",
         request=repair.ObjectionRequestSchema, response=repair.ObjectionViewSchema, status=201,
         also={403: _NOT_ENTITLED,
               409: ("an objection against the record is open, or the record is revoked",
                     repair.CaseRefusalSchema)},
         errors={404: "the record is not known (yet) to the repair service"})
endpoint("repair", "GET", "/v1/objections", handler="list_objections", roles=FILERS,
         summary="Objections (an agency: its own agency's and what it filed; a platform: what "
                 "it filed)",
         query=repair.CasesQuerySchema, response=repair.ObjectionListSchema)
endpoint("repair", "GET", "/v1/objections/<string:obj_id>", handler="get_objection",
         roles=FILERS, summary="An objection (overdue judged at as_of)",
         query=repair.AsOfQuerySchema, response=repair.ObjectionViewSchema,
         errors={404: "no such objection visible to the caller"})
endpoint("repair", "POST", "/v1/objections/<string:obj_id>/decision",
         handler="post_objection_decision", roles=DECIDERS,
         summary="Decide an open objection: upheld, corrected or revoked (emits "
                 "ObjectionDecided)",
         request=repair.ObjectionDecisionSchema, response=repair.ObjectionViewSchema,
         also={409: ("already decided; or the correction or revocation has not come through "
                     "violation intake yet; or changed concurrently", repair.CaseRefusalSchema)},
         errors={403: _NOT_DECIDER, 404: "no such objection"},
         description="Corrections and revocations are made through violation intake first; "
                     "the decision records the outcome once they have arrived.")
endpoint("repair", "GET", "/v1/public/entities/<string:code>", handler="get_public_record",
         roles=EVERYONE,
         summary="The public record at as_of: penalties in their publicity window and "
                 "listings, personal data masked",
         query=repair.AsOfQuerySchema, response=repair.PublicRecordSchema)
endpoint("repair", "GET", "/v1/calendar/deadline", handler="get_deadline", roles=EVERYONE,
         summary="The last day of a period of working days (the official holiday calendar)",
         query=repair.DeadlineQuerySchema, response=repair.DeadlineSchema)
