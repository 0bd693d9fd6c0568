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

from contracts.common import USCC, Instant
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
