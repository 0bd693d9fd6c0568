"""Gate-keeping answers (restrictions service): status, batch status, change feed, audit.

Response schemas: what a gate-keeper is told. They document the JSON the service returns and
the tests load real answers with them (unknown fields are refused, so an undocumented field
fails the tests).
"""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from contracts.common import USCC, Instant
from contracts.events import EFFECTS, POSITIONS, SECTORS, SUBJECTS, BasisSchema

# restricted: a prohibition applies in some sector asked; measures_without_prohibition:
# measures apply (stricter review, consideration, supervision, information), none prohibits.
RECORDS = ("entity_unknown", "no_active_restriction", "restricted",
           "measures_without_prohibition")


def _doc(text: str) -> dict:
    return {"metadata": {"description": text}}


class StatusQuerySchema(Schema):
    sector = fields.String(validate=validate.OneOf(SECTORS),
                           **_doc("only this sector (default: every sector)"))
    as_of = Instant(**_doc("the instant asked about (default: now); no offset means UTC+8"))


class SourceRefSchema(Schema):
    agency_code = fields.String(required=True)
    document_number = fields.String(required=True)


class MeasureViewSchema(Schema):
    restriction_id = fields.String(required=True)
    measure_id = fields.String(required=True)
    action = fields.String(required=True)
    effect = fields.String(required=True, validate=validate.OneOf(EFFECTS), **_doc(
        "prohibit: the entity may not pass; stricter_review, consideration, supervision, "
        "inform: told as what they are, they do not bar"))
    subject = fields.String(required=True, validate=validate.OneOf(SUBJECTS), **_doc(
        "whom the measure binds: here always the entity (person measures are answered to "
        "registrars by POST /v1/persons:status, never here)"))
    bases = fields.List(fields.Nested(BasisSchema), required=True, **_doc(
        "document, number, article, item, the sentence relied on verbatim, law file; empty "
        "for a restriction imposed before catalog format 2"))
    legal_basis = fields.String(required=True, **_doc("the bases on one line"))
    department = fields.String(required=True, **_doc("the implementing department"))
    memorandum = fields.String(required=True, allow_none=True, **_doc(
        "null: withheld, the measure follows from the credit risk class (not public)"))
    rule = fields.String(required=True, allow_none=True, **_doc(
        "the catalog rule that imposed the measure (null: withheld, as the memorandum)"))
    source = fields.Nested(SourceRefSchema, required=True)
    starts_at = Instant(required=True)
    ends_at = Instant(required=True, allow_none=True,
                      **_doc("null: until the entity cures the cause"))
    under_review = fields.Boolean(required=True, **_doc(
        "the record behind it has an open objection (异议); the measure still applies"))
    catalog_version = fields.String(allow_none=True, load_default=None, **_doc(
        "the measure catalog version it was decided under (null: not recorded)"))


class SectorAnswerSchema(Schema):
    may_pass = fields.Boolean(required=True, **_doc(
        "false only where a measure with effect prohibit applies"))
    measures = fields.List(fields.Nested(MeasureViewSchema), required=True)
    reason = fields.String(required=True)


class StatusResultSchema(Schema):
    schema_version = fields.Integer(required=True, validate=validate.OneOf((2,)), **_doc(
        "2: measures carry effect, subject and bases (1: before catalog format 2)"))
    uscc = USCC(required=True)
    as_of = Instant(required=True)
    record = fields.String(required=True, validate=validate.OneOf(RECORDS))
    may_pass = fields.Boolean(required=True, **_doc(
        "true when no prohibition applies in any sector asked"))
    records_under_review = fields.List(fields.String(), required=True, **_doc(
        "violation ids (agency_code/document_number) behind the measures shown that have an "
        "open objection"))
    sectors = fields.Dict(keys=fields.String(validate=validate.OneOf(SECTORS)),
                          values=fields.Nested(SectorAnswerSchema), required=True)


class CatalogInForceSchema(Schema):
    """The measure catalog version in force at ``as_of`` (catalog/versions.json
    ``measures_versions``): the answer is decided under it."""

    version = fields.String(required=True)
    effective_from = Instant(required=True, allow_none=True, **_doc(
        "null: in force from the start (the first version)"))
    approved_by = fields.String(required=True, allow_none=True, **_doc(
        "who approved it (法制审核); null while pending"))
    approved_at = Instant(required=True, allow_none=True)
    reference = fields.String(required=True, allow_none=True)
    approval_pending = fields.String(required=True, allow_none=True, **_doc(
        "why there is no approval yet; null once approved"))


class StatusAnswerSchema(StatusResultSchema):
    answer_id = fields.String(required=True, **_doc(
        "keep it: GET /v1/answers/{answer_id} shows what you were told"))
    catalog_version = fields.String(required=True, **_doc(
        "the measure catalog version in force at as_of: the answer is decided under it"))
    catalog_in_force = fields.Nested(CatalogInForceSchema, required=True)


class StatusBatchRequestSchema(Schema):
    codes = fields.List(USCC(), required=True, validate=validate.Length(min=1, max=1000))
    sector = fields.String(validate=validate.OneOf(SECTORS))
    as_of = Instant()


class StatusBatchAnswerSchema(Schema):
    answer_id = fields.String(required=True)
    catalog_version = fields.String(required=True, **_doc(
        "the measure catalog version in force at as_of: the answers are decided under it"))
    catalog_in_force = fields.Nested(CatalogInForceSchema, required=True)
    as_of = Instant(required=True)
    results = fields.List(fields.Nested(StatusResultSchema), required=True)


class ChangesQuerySchema(Schema):
    since = fields.String(**_doc("the `next` cursor of a previous page (default: from the start)"))
    limit = fields.Integer(validate=validate.Range(min=1, max=1000), **_doc("default 100"))


class ChangeSchema(Schema):
    change = fields.String(required=True, validate=validate.OneOf(("imposed", "lifted")))
    at = Instant(required=True)
    restriction_id = fields.String(required=True)
    uscc = USCC(required=True)
    sector = fields.String(required=True, validate=validate.OneOf(SECTORS))
    measure_id = fields.String(required=True)
    starts_at = Instant(required=True)
    ends_at = Instant(required=True, allow_none=True)
    lifted_at = Instant(required=True, allow_none=True)
    lift_reason = fields.String(required=True, allow_none=True)


class ChangesPageSchema(Schema):
    changes = fields.List(fields.Nested(ChangeSchema), required=True)
    next = fields.String(required=True, allow_none=True, **_doc(
        "pass as `since` to resume; unchanged when nothing new happened"))


class SectorSummarySchema(Schema):
    may_pass = fields.Boolean(required=True)
    restriction_ids = fields.List(fields.String(), required=True)


class AnswerSummarySchema(Schema):
    uscc = USCC(required=True)
    as_of = Instant(required=True)
    record = fields.String(required=True, validate=validate.OneOf(RECORDS))
    may_pass = fields.Boolean(required=True)
    sectors = fields.Dict(keys=fields.String(validate=validate.OneOf(SECTORS)),
                          values=fields.Nested(SectorSummarySchema), required=True)


class PositionSummarySchema(Schema):
    may_take = fields.Boolean(required=True)
    restriction_ids = fields.List(fields.String(), required=True)


class PersonSummarySchema(Schema):
    """What the audit keeps of one person's answer (``POST /v1/persons:status``): no number."""

    person_id = fields.String(required=True)
    for_uscc = USCC(required=True, allow_none=True)
    positions = fields.Dict(keys=fields.String(validate=validate.OneOf(POSITIONS)),
                            values=fields.Nested(PositionSummarySchema), required=True)


class AnswerSubstanceSchema(Schema):
    """A single answer's summary, or for a batch ``{as_of, results}``, or for a registrar's
    person check ``{as_of, purpose, persons}``."""

    uscc = USCC()
    as_of = Instant(required=True)
    record = fields.String(validate=validate.OneOf(RECORDS))
    may_pass = fields.Boolean()
    sectors = fields.Dict(keys=fields.String(validate=validate.OneOf(SECTORS)),
                          values=fields.Nested(SectorSummarySchema))
    results = fields.List(fields.Nested(AnswerSummarySchema))
    purpose = fields.String()
    persons = fields.List(fields.Nested(PersonSummarySchema))


class AuditedAnswerSchema(Schema):
    answer_id = fields.String(required=True)
    asked_by = fields.String(required=True, **_doc("role:subject of the caller"))
    asked_at = Instant(required=True)
    path = fields.String(required=True)
    query = fields.String(required=True)
    catalog_version = fields.String(required=True)
    answer = fields.Nested(AnswerSubstanceSchema, required=True)
    correlation_id = fields.String(required=True)


class PingSchema(Schema):
    pong = fields.Boolean(required=True)
