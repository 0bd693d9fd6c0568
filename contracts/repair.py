"""Credit repair, objections and the public record (the repair service's HTTP contracts).

Requests are strict (unknown fields refused). A record is named by its natural key
(``agency_code`` + ``document_number``) and the ``uscc`` the applicant acts for: an application
for a record of another entity is refused as not entitled.

=====================  ===================================================================
applicant              ``{name, capacity}``: who applies; ``capacity`` is ``entity`` (the
                       entity itself, through the caller's desk) or ``agent``. The caller's
                       credential (role:subject) is recorded as ``filed_by``.
penalty_performed      The penalty has been performed (fine paid, obligations fulfilled).
harm_removed           The harmful consequences and adverse effects have been removed.
commitment_letter      ``{signed_by, signed_at}``: the credit commitment letter (信用承诺书).
statement, evidence    Free text and references to supporting documents.
=====================  ===================================================================
"""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from contracts.common import USCC, Instant, ProblemSchema
from contracts.events import FieldErrorSchema
from contracts.violation import AGENCY_CODE, PENALTY_TYPES, StrictSchema

REPAIR_SCOPES = ("publicity", "serious_list")
APPLICATION_STATUSES = ("pending", "approved", "rejected", "closed")
DECISIONS = ("approved", "rejected")
OBJECTION_OUTCOMES = ("upheld", "corrected", "revoked")


class ApplicantSchema(StrictSchema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    capacity = fields.String(required=True, validate=validate.OneOf(("entity", "agent")))


class RecordRefSchema(StrictSchema):
    agency_code = fields.String(required=True, validate=validate.Regexp(
        AGENCY_CODE, error="must be 2-32 characters of A-Z, 0-9 and '-'"))
    document_number = fields.String(required=True, validate=validate.Length(min=1, max=64))
    uscc = USCC(required=True)
    applicant = fields.Nested(ApplicantSchema, required=True)


class CommitmentLetterSchema(StrictSchema):
    signed_by = fields.String(required=True, validate=validate.Length(min=1, max=200))
    signed_at = fields.Date(required=True)


class RepairApplicationSchema(RecordRefSchema):
    penalty_performed = fields.Boolean(load_default=False)
    harm_removed = fields.Boolean(load_default=False)
    commitment_letter = fields.Nested(CommitmentLetterSchema, allow_none=True, load_default=None)
    statement = fields.String(load_default=None, validate=validate.Length(max=4000))
    evidence = fields.List(fields.String(validate=validate.Length(min=1, max=500)),
                           load_default=list, validate=validate.Length(max=50))


class RepairDecisionSchema(StrictSchema):
    decision = fields.String(required=True, validate=validate.OneOf(DECISIONS))
    reason = fields.String(required=True, validate=validate.Length(min=2, max=2000))


class ObjectionRequestSchema(RecordRefSchema):
    grounds = fields.String(required=True, validate=validate.Length(min=5, max=4000))
    evidence = fields.List(fields.String(validate=validate.Length(min=1, max=500)),
                           load_default=list, validate=validate.Length(max=50))


class ObjectionDecisionSchema(StrictSchema):
    outcome = fields.String(required=True, validate=validate.OneOf(OBJECTION_OUTCOMES))
    reason = fields.String(required=True, validate=validate.Length(min=2, max=2000))


# -- the public record (GET /v1/public/entities/{uscc}) -------------------------------------
class PublicPenaltyItemSchema(Schema):
    type = fields.String(required=True, validate=validate.OneOf(PENALTY_TYPES))
    amount = fields.String(allow_none=True)
    months = fields.Integer(allow_none=True)


class PublicPersonSchema(Schema):
    name = fields.String(required=True)
    id_number = fields.String(allow_none=True)


class PublicPenaltySchema(Schema):
    agency_code = fields.String(required=True)
    document_number = fields.String(required=True)
    entity_name = fields.String(required=True)
    category = fields.String(required=True)
    severity = fields.String(required=True)
    penalties = fields.List(fields.Nested(PublicPenaltyItemSchema), required=True)
    legal_basis = fields.Dict(required=True)
    decided_at = Instant(required=True)
    # Order 45 art. 13: publicity runs from the publication day; until the agency reports it,
    # the art. 9 deadline (20 working days after the decision) is assumed.
    published_from = Instant(required=True)
    publication_assumed = fields.Boolean(required=True)
    published_until = Instant(required=True)
    legal_representative = fields.Nested(PublicPersonSchema, allow_none=True)
    under_review = fields.Boolean(required=True)


class PublicListingSchema(Schema):
    list = fields.String(required=True)
    agency_code = fields.String(required=True)
    document_number = fields.String(required=True)
    listed_at = Instant(required=True)
    listed_until = Instant(allow_none=True)
    under_review = fields.Boolean(required=True)


class PublicRecordSchema(Schema):
    uscc = USCC(required=True)
    as_of = Instant(required=True)
    entity_name = fields.String(allow_none=True)
    penalties = fields.List(fields.Nested(PublicPenaltySchema), required=True)
    listings = fields.List(fields.Nested(PublicListingSchema), required=True)
    rules_version = fields.String(required=True)


# -- answers of the repair service ------------------------------------------------------------
# Response schemas: what the service answers, field for field. The e2e contract tests load
# real answers with them (unknown fields are refused), so an undocumented field fails there.

OBJECTION_STATUSES = ("open", "decided")
CASE_STATUSES = APPLICATION_STATUSES + OBJECTION_STATUSES  # the lists' ``status`` filter
CAPACITIES = ("entity", "agent")


def _doc(text: str) -> dict:
    return {"metadata": {"description": text}}


class ApplicantViewSchema(Schema):
    name = fields.String(required=True)
    capacity = fields.String(required=True, validate=validate.OneOf(CAPACITIES))


class CommitmentLetterViewSchema(Schema):
    signed_by = fields.String(required=True)
    signed_at = fields.Date(required=True)


class BlockSchema(Schema):
    """A rule that blocks credit repair, with its legal basis."""

    rule = fields.String(required=True, **_doc(
        "e.g. too_early, penalty_not_performed, harm_not_removed, no_commitment_letter, "
        "new_heavier_penalty, not_repairable, not_public, already_repaired, record_revoked, "
        "not_entitled"))
    detail = fields.String(required=True)
    basis = fields.String(required=True)
    earliest_at = Instant(required=True, allow_none=True,
                          **_doc("when waiting alone lifts this block (null: waiting won't)"))


class EligibilitySchema(Schema):
    """Would credit repair of the record succeed at ``as_of``, and if not, why."""

    scope = fields.String(required=True, allow_none=True, validate=validate.OneOf(
        REPAIR_SCOPES), **_doc("what the repair would end (null: the record was revoked)"))
    as_of = Instant(required=True)
    eligible = fields.Boolean(required=True)
    earliest_at = Instant(required=True, allow_none=True, **_doc(
        "when waiting alone lifts every block (null: eligible, or waiting won't do)"))
    earliest_date = fields.Date(required=True, allow_none=True,
                                **_doc("earliest_at as a date in China"))
    blocking = fields.List(fields.Nested(BlockSchema), required=True)


class EligibilityAnswerSchema(EligibilitySchema):
    violation_id = fields.String(required=True)
    assumes = fields.List(fields.String(), required=True, **_doc(
        "the declarations assumed made (penalty performed, harm removed, commitment letter)"))


class EligibilityQuerySchema(Schema):
    agency_code = fields.String(required=True)
    document_number = fields.String(required=True)
    uscc = USCC(required=True, **_doc("the entity the applicant acts for (the record's)"))
    as_of = Instant(**_doc("default: now"))


class IneligibleSchema(ProblemSchema, EligibilitySchema):
    """422: the record cannot be repaired now; ``blocking`` names every rule in the way."""


class CaseRefusalSchema(ProblemSchema):
    """A refusal of the repair rules (the members besides the problem's depend on the case)."""

    errors = fields.List(fields.Nested(FieldErrorSchema))
    blocking = fields.List(fields.Nested(BlockSchema), **_doc(
        "not entitled: the record is another entity's, or the caller is the recording agency"))
    earliest_at = Instant(allow_none=True)
    application_id = fields.String(**_doc("the pending application for the same record"))
    application_status = fields.String(validate=validate.OneOf(APPLICATION_STATUSES),
                                       **_doc("the application was already decided"))
    objection_id = fields.String(**_doc("the open objection against the same record"))
    outcome = fields.String(validate=validate.OneOf(OBJECTION_OUTCOMES),
                            **_doc("the objection was already decided"))


class DeclarationsSchema(Schema):
    penalty_performed = fields.Boolean(required=True)
    harm_removed = fields.Boolean(required=True)
    commitment_letter = fields.Nested(CommitmentLetterViewSchema, required=True, allow_none=True)


class CaseDecisionSchema(Schema):
    decision = fields.String(required=True, validate=validate.OneOf(DECISIONS + ("closed",)),
                             **_doc("closed: the record was revoked while pending"))
    reason = fields.String(required=True)
    decided_by = fields.String(required=True, **_doc("role:subject, or system"))
    decided_at = Instant(required=True)


class ApplicationViewSchema(Schema):
    """A credit repair application and where it stands."""

    application_id = fields.String(required=True)
    violation_id = fields.String(required=True)
    uscc = USCC(required=True)
    agency_code = fields.String(required=True, **_doc("the recording agency: it decides"))
    scope = fields.String(required=True, validate=validate.OneOf(REPAIR_SCOPES))
    status = fields.String(required=True, validate=validate.OneOf(APPLICATION_STATUSES))
    applicant = fields.Nested(ApplicantViewSchema, required=True)
    filed_by = fields.String(required=True, **_doc("role:subject of the filing credential"))
    declarations = fields.Nested(DeclarationsSchema, required=True)
    statement = fields.String(required=True, allow_none=True)
    evidence = fields.List(fields.String(), required=True)
    eligibility = fields.Nested(EligibilitySchema, required=True,
                                **_doc("the check made when it was filed"))
    received_at = Instant(required=True)
    due_by = fields.Date(required=True, **_doc("last working day for the decision"))
    decision = fields.Nested(CaseDecisionSchema, required=True, allow_none=True)
    rules_version = fields.String(required=True)
    overdue = fields.Boolean(required=True, **_doc("pending after due_by (at as_of)"))


class ApplicationListSchema(Schema):
    as_of = Instant(required=True)
    applications = fields.List(fields.Nested(ApplicationViewSchema), required=True,
                               **_doc("at most 1000, by id"))


class ObjectionViewSchema(Schema):
    """An objection (异议) and where it stands."""

    objection_id = fields.String(required=True)
    violation_id = fields.String(required=True)
    uscc = USCC(required=True)
    agency_code = fields.String(required=True, **_doc("the recording agency: it decides"))
    status = fields.String(required=True, validate=validate.OneOf(OBJECTION_STATUSES))
    applicant = fields.Nested(ApplicantViewSchema, required=True)
    filed_by = fields.String(required=True, **_doc("role:subject of the filing credential"))
    grounds = fields.String(required=True)
    evidence = fields.List(fields.String(), required=True)
    opened_at = Instant(required=True)
    record_version = fields.Integer(required=True, **_doc("the record's version objected to"))
    due_by = fields.Date(required=True, **_doc("last working day for the decision"))
    outcome = fields.String(required=True, allow_none=True,
                            validate=validate.OneOf(OBJECTION_OUTCOMES))
    decided_at = Instant(required=True, allow_none=True)
    decided_by = fields.String(required=True, allow_none=True,
                               **_doc("role:subject, or system (the record was revoked)"))
    reason = fields.String(required=True, allow_none=True)
    overdue = fields.Boolean(required=True, **_doc("open after due_by (at as_of)"))


class ObjectionListSchema(Schema):
    as_of = Instant(required=True)
    objections = fields.List(fields.Nested(ObjectionViewSchema), required=True,
                             **_doc("at most 1000, by id"))


class CasesQuerySchema(Schema):
    """Filters of the application and objection lists (other parameters are refused)."""

    status = fields.String(validate=validate.OneOf(CASE_STATUSES))
    uscc = USCC()
    overdue = fields.Boolean(**_doc("true (or 1, yes): only cases past their deadline"))
    as_of = Instant(**_doc("the instant overdue is judged at (default: now)"))


class AsOfQuerySchema(Schema):
    as_of = Instant(**_doc("default: now"))


class DeadlineQuerySchema(Schema):
    from_ = fields.Date(required=True, data_key="from", **_doc("the first day of the period"))
    working_days = fields.Integer(required=True, validate=validate.Range(min=0, max=1000))


class DeadlineSchema(Schema):
    from_ = fields.Date(required=True, data_key="from")
    working_days = fields.Integer(required=True)
    due_by = fields.Date(required=True, **_doc("the last day of the period"))
    calendar = fields.String(required=True, **_doc("the working-day calendar's version"))
    covered = fields.Boolean(required=True, **_doc(
        "false: the calendar has no holidays for the year of from or due_by (only weekends "
        "were skipped there): treat due_by as provisional"))
