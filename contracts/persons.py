"""Person status for registration and licence offices (restrictions service, issue 21).

``POST /v1/persons:status``: the registrar sends identity documents in the body (never in a
path or query), at most 1,000, with the purpose of the check; the answer says, per position
(``POSITIONS``), whether each person may take it at ``as_of``, and which person measures say
no: basis, end, and the entity whose record caused them. The number is keyed into the person
id on load (``shared.identity``) and never stored, logged or answered: the answer gives the
person id and the mask. Audited like a gate-keeping answer (``answer_id``).
"""
from __future__ import annotations

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from contracts.common import USCC, Instant
from contracts.events import BasisSchema, CauseSchema
from rules.vocabulary import PERSON_ROLES, POSITIONS
from shared import identity

MAX_PERSONS = 1000


def _doc(text: str) -> dict:
    return {"metadata": {"description": text}}


class PersonDocumentSchema(Schema):
    class Meta:
        unknown = RAISE

    document_type = fields.String(load_default="resident_id_card",
                                  validate=validate.OneOf(identity.DOCUMENT_TYPES))
    id_number = fields.String(required=True, load_only=True, **_doc(
        "the document's number: keyed into the person id, never stored or answered"))
    issuing_country = fields.String(validate=validate.Regexp(
        r"^[A-Za-z]{3}$", error="must be an ISO 3166-1 alpha-3 code"))
    for_uscc = USCC(**_doc("the entity the person would join: a bar on other enterprises only "
                           "(其他企业) does not count at the entity that caused it"))

    @validates_schema
    def _valid_document(self, data, **kwargs):
        if "id_number" not in data:
            return
        try:
            identity.document(data.get("document_type", "resident_id_card"), data["id_number"],
                              data.get("issuing_country"))
        except identity.DocumentProblem as exc:
            raise ValidationError(exc.problem, exc.field) from None


class PersonsStatusRequestSchema(Schema):
    class Meta:
        unknown = RAISE

    persons = fields.List(fields.Nested(PersonDocumentSchema), required=True,
                          validate=validate.Length(min=1, max=MAX_PERSONS))
    positions = fields.List(fields.String(validate=validate.OneOf(POSITIONS)),
                            validate=validate.Length(min=1),
                            **_doc("only these positions (default: every position)"))
    as_of = Instant(**_doc("the instant asked about (default: now); no offset means UTC+8"))
    purpose = fields.String(required=True, validate=validate.Length(min=5, max=200), **_doc(
        "why the office checks these persons (the registration or licence application); "
        "stored with the answer (个人信息保护法 第六条: 「处理个人信息应当具有明确、合理的目的」)"))


class PersonMeasureViewSchema(Schema):
    restriction_id = fields.String(required=True)
    measure_id = fields.String(required=True)
    action = fields.String(required=True)
    role = fields.String(required=True, validate=validate.OneOf(PERSON_ROLES),
                         **_doc("the role the person had on the record that caused it"))
    bases = fields.List(fields.Nested(BasisSchema), required=True)
    legal_basis = fields.String(required=True)
    starts_at = Instant(required=True)
    ends_at = Instant(required=True, allow_none=True, **_doc("the person may take it from then"))
    except_at = USCC(required=True, allow_none=True, **_doc(
        "the bar is for other enterprises only: at this entity (the cause) it does not apply"))
    cause = fields.Nested(CauseSchema, required=True)
    under_review = fields.Boolean(required=True, **_doc(
        "the record that caused it has an open objection (异议); the measure still applies"))


class PositionAnswerSchema(Schema):
    may_take = fields.Boolean(required=True)
    measures = fields.List(fields.Nested(PersonMeasureViewSchema), required=True)


class PersonStatusSchema(Schema):
    person_id = fields.String(required=True)
    id_masked = fields.String(required=True)
    document_type = fields.String(required=True)
    as_of = Instant(required=True)
    for_uscc = USCC(required=True, allow_none=True)
    may_take_all = fields.Boolean(required=True)
    positions = fields.Dict(keys=fields.String(validate=validate.OneOf(POSITIONS)),
                            values=fields.Nested(PositionAnswerSchema), required=True)


class PersonsStatusAnswerSchema(Schema):
    answer_id = fields.String(required=True)
    catalog_version = fields.String(required=True)
    as_of = Instant(required=True)
    purpose = fields.String(required=True)
    results = fields.List(fields.Nested(PersonStatusSchema), required=True,
                          **_doc("in the order asked; one per document"))


class PersonChangeSchema(Schema):
    change = fields.String(required=True, validate=validate.OneOf(("imposed", "lifted")))
    at = Instant(required=True)
    restriction_id = fields.String(required=True)
    person_id = fields.String(required=True)
    id_masked = fields.String(required=True)
    measure_id = fields.String(required=True)
    bars = fields.List(fields.String(validate=validate.OneOf(POSITIONS)), required=True)
    cause = fields.Nested(CauseSchema, required=True)
    starts_at = Instant(required=True)
    ends_at = Instant(required=True, allow_none=True)
    lifted_at = Instant(required=True, allow_none=True)
    lift_reason = fields.String(required=True, allow_none=True)


class PersonChangesPageSchema(Schema):
    changes = fields.List(fields.Nested(PersonChangeSchema), required=True)
    next = fields.String(required=True, allow_none=True, **_doc(
        "pass as `since` to resume; unchanged when nothing new happened"))
