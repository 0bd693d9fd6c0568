"""Violations HTTP API: what agencies send besides the record itself, and what they get back.

The record, amendment and revocation are in ``contracts.violation``; these are the outcomes,
the stored records and the rejections store as the API shows them.
"""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from contracts.common import USCC, Instant
from contracts.events import FieldErrorSchema
from contracts.violation import ViolationSchema

OUTCOMES = ("recorded", "duplicate", "conflict", "rejected", "amended", "revoked", "not_found")
CHANNELS = ("amqp", "http", "import")


def _doc(text: str) -> dict:
    return {"metadata": {"description": text}}


class OutcomeSchema(Schema):
    status = fields.String(required=True, validate=validate.OneOf(OUTCOMES))
    violation_id = fields.String(**_doc("agency_code/document_number"))
    version = fields.Integer()
    errors = fields.List(fields.Nested(FieldErrorSchema))
    rejection_id = fields.String(**_doc("GET /v1/rejections/{rejection_id} shows it again"))
    events = fields.List(fields.String(), **_doc("ids of the events this change emitted"))


class BatchRequestSchema(Schema):
    records = fields.List(fields.Nested(ViolationSchema), required=True,
                          validate=validate.Length(min=1, max=500),
                          **_doc("each record is validated on its own: one outcome each"))
    message_ids = fields.List(fields.String(), **_doc(
        "one id per record (same order) so a re-sent batch is recognised"))


class BatchOutcomeSchema(OutcomeSchema):
    index = fields.Integer(required=True, **_doc("position of the record in the request"))


class BatchAnswerSchema(Schema):
    results = fields.List(fields.Nested(BatchOutcomeSchema), required=True)


class RevocationRequestSchema(Schema):
    """The revocation body; agency and document number come from the path."""

    reason = fields.String(required=True, validate=validate.Length(min=2, max=500))
    revoked_at = Instant()


class RecordVersionSchema(Schema):
    version = fields.Integer(required=True)
    record = fields.Nested(ViolationSchema, required=True)
    fingerprint = fields.String(required=True)
    at = Instant(required=True)
    reason = fields.String(required=True)
    via = fields.String(required=True, validate=validate.OneOf(CHANNELS))


class ViolationSummarySchema(Schema):
    violation_id = fields.String(required=True)
    version = fields.Integer(required=True)
    status = fields.String(required=True, validate=validate.OneOf(("active", "revoked")))
    record = fields.Nested(ViolationSchema, required=True)
    fingerprint = fields.String(required=True)
    received_via = fields.String(required=True, validate=validate.OneOf(CHANNELS))
    message_id = fields.String(required=True)
    created_at = Instant(required=True)
    updated_at = Instant(required=True)
    revoked_at = Instant()
    revocation_reason = fields.String()
    regions = fields.List(fields.String(), **_doc(
        "the region feeds the record is in: the entity's registration region and the place of "
        "the violation, each with its city and province (absent on records stored before "
        "record v2 that were not amended since)"))


class ViolationDocumentSchema(ViolationSummarySchema):
    versions = fields.List(fields.Nested(RecordVersionSchema), required=True,
                           **_doc("every version, oldest first"))


class ViolationListSchema(Schema):
    uscc = fields.String(required=True)
    violations = fields.List(fields.Nested(ViolationSummarySchema), required=True)


class ViolationQuerySchema(Schema):
    purpose = fields.String(validate=validate.Length(min=5, max=200), **_doc(
        "why the caller reads the record; a record naming a person is a lookup of that "
        "person, logged with who asked and this purpose (person_access)"))


class ViolationsQuerySchema(ViolationQuerySchema):
    uscc = USCC(required=True)


class RegionFeedQuerySchema(ViolationQuerySchema):
    since = fields.String(**_doc("the `next` cursor of a previous page; absent: from the start"))
    limit = fields.Integer(load_default=100, validate=validate.Range(
        min=1, max=500, error="must be a whole number from 1 to 500"))


class RegionFeedSchema(Schema):
    region = fields.String(required=True)
    violations = fields.List(fields.Nested(ViolationSummarySchema), required=True, **_doc(
        "records registered in the region or committed there, in change order "
        "(updated_at, then id): an amendment or revocation brings a record back"))
    next = fields.String(allow_none=True, required=True, **_doc("cursor for the next page"))


class RejectionSchema(Schema):
    rejection_id = fields.String(required=True, **_doc("the message id (AMQP message_id)"))
    agency_code = fields.String(required=True, allow_none=True)
    document_number = fields.String(required=True, allow_none=True)
    received_via = fields.String(required=True, validate=validate.OneOf(CHANNELS))
    status = fields.String(required=True, validate=validate.OneOf(("rejected", "conflict")))
    errors = fields.List(fields.Nested(FieldErrorSchema), required=True)
    raw = fields.String(required=True, **_doc("the refused payload as text"))
    received_at = Instant(required=True)
    correlation_id = fields.String(required=True)


class RejectionListSchema(Schema):
    rejections = fields.List(fields.Nested(RejectionSchema), required=True)


class RejectionsQuerySchema(Schema):
    agency_code = fields.String()
