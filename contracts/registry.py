"""Entity registry API: what a regulator or platform sends, and the entity view returned."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from contracts.common import USCC, Instant
from contracts.violation import (CATEGORIES, LISTS, SEVERITIES, LegalRepresentativeSchema,
                                 StrictSchema)

ENTITY_STATUSES = ("operating", "suspended", "deregistered", "revoked")
PLATFORM_ID = r"^[a-z0-9][a-z0-9_-]{1,63}$"


def _doc(text: str) -> dict:
    return {"metadata": {"description": text}}


class EntityRepresentativeSchema(LegalRepresentativeSchema):
    """The legal representative a regulator registers: a document of any type
    (``document_type``, default ``resident_id_card``), validated per type; kept only as the
    person id (keyed HMAC) and the mask."""

    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    id_number = fields.String(required=True, load_only=True,
                              **_doc("stored only as the person id and a mask"))


# The positions the registry records with their history (issue 21).
OFFICER_ROLES = ("principal", "director", "supervisor", "senior_manager")


class OfficerSchema(EntityRepresentativeSchema):
    """A 负责人, director, supervisor or senior manager: a document like the legal
    representative's, kept only as the person id and the mask."""

    role = fields.String(required=True, validate=validate.OneOf(OFFICER_ROLES))


class EntitySchema(StrictSchema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    industry = fields.String(load_default=None, validate=validate.Length(max=100))
    status = fields.String(load_default="operating", validate=validate.OneOf(ENTITY_STATUSES))
    legal_representative = fields.Nested(EntityRepresentativeSchema, load_default=None)
    officers = fields.List(fields.Nested(OfficerSchema), validate=validate.Length(max=50), **_doc(
        "the entity's 负责人, directors, supervisors and senior managers; absent: unchanged"))
    effective_from = Instant(**_doc("when the registered appointments take effect (default: "
                                    "now); the history ends the replaced ones then"))
    override_reason = fields.String(validate=validate.Length(min=5, max=500), **_doc(
        "why an appointment of a barred person is registered anyway: recorded with its flag"))


class MembershipSchema(StrictSchema):
    platform_id = fields.String(required=True, validate=validate.Regexp(
        PLATFORM_ID, error="must be 2-64 of a-z, 0-9, '_' and '-'"))
    shop_id = fields.String(required=True, validate=validate.Length(min=1, max=100))


class MembershipViewSchema(Schema):
    platform_id = fields.String(required=True)
    shop_id = fields.String(required=True)


class MembershipsAnswerSchema(Schema):
    uscc = USCC(required=True)
    memberships = fields.List(fields.Nested(MembershipViewSchema), required=True)


class RepresentativeViewSchema(Schema):
    name = fields.String(required=True, **_doc("masked in the public view"))
    document_type = fields.String(allow_none=True)
    issuing_country = fields.String()
    id_masked = fields.String(required=True, **_doc("first and last character only"))
    person_id = fields.String(allow_none=True, **_doc(
        "full view only; null for a record not yet migrated (docs/personal-data.md)"))
    unmigrated = fields.Boolean()


class OfficerViewSchema(RepresentativeViewSchema):
    role = fields.String(required=True, validate=validate.OneOf(OFFICER_ROLES))


class BarFlagSchema(Schema):
    """A person measure that bars the appointed person from the position (the appointment is
    recorded anyway, flagged; BarredAppointmentRecorded tells regulators)."""

    restriction_id = fields.String(required=True)
    measure_id = fields.String(required=True)
    legal_basis = fields.String(required=True)
    ends_at = Instant(required=True, allow_none=True)
    cause_uscc = USCC(required=True, **_doc("the entity whose record caused the bar"))


class BarredAppointmentSchema(Schema):
    role = fields.String(required=True)
    person_id = fields.String(required=True)
    id_masked = fields.String(required=True)
    flags = fields.List(fields.Nested(BarFlagSchema), required=True)
    override_reason = fields.String(required=True, allow_none=True)


class AppointmentViewSchema(Schema):
    uscc = USCC(required=True)
    role = fields.String(required=True)
    person_id = fields.String(required=True)
    name = fields.String(required=True)
    id_masked = fields.String(required=True)
    document_type = fields.String(required=True, allow_none=True)
    from_ = Instant(required=True, data_key="from", **_doc("when the appointment took effect"))
    to = Instant(required=True, allow_none=True, **_doc("null: current"))
    recorded_at = Instant(required=True)
    recorded_by = fields.String(required=True)
    ended_by = fields.String()
    flags = fields.List(fields.Nested(BarFlagSchema), required=True)
    override_reason = fields.String(required=True, allow_none=True)


class AppointmentsAnswerSchema(Schema):
    uscc = USCC(required=True)
    appointments = fields.List(fields.Nested(AppointmentViewSchema), required=True,
                               **_doc("every appointment ever recorded, earliest first"))


class AppointmentsQuerySchema(Schema):
    purpose = fields.String(required=True, validate=validate.Length(min=5, max=200), **_doc(
        "why the caller looks the entity's persons up; logged with who asked (person_access)"))


class EntityViolationSchema(Schema):
    violation_id = fields.String(required=True)
    version = fields.Integer(required=True)
    status = fields.String(required=True, validate=validate.OneOf(("active", "revoked")))
    agency_code = fields.String(required=True)
    document_number = fields.String(required=True)
    category = fields.String(required=True, validate=validate.OneOf(CATEGORIES))
    severity = fields.String(required=True, validate=validate.OneOf(SEVERITIES))
    decided_at = Instant(required=True)
    listing = fields.String(required=True, allow_none=True, validate=validate.OneOf(LISTS))


class EntityViewSchema(Schema):
    uscc = USCC(required=True)
    name = fields.String(required=True)
    provisional = fields.Boolean(required=True, **_doc(
        "created from a violation record, not yet registered by a regulator"))
    status = fields.String(required=True, validate=validate.OneOf(ENTITY_STATUSES))
    industry = fields.String(allow_none=True)
    entity_type = fields.String(required=True, allow_none=True)
    region_code = fields.String(required=True)
    authority = fields.String(required=True)
    legal_representative = fields.Nested(RepresentativeViewSchema)
    created_at = Instant(required=True)
    updated_at = Instant(required=True)
    violations = fields.List(fields.Nested(EntityViolationSchema), required=True,
                             **_doc("newest decision first"))
    memberships = fields.List(fields.Nested(MembershipViewSchema), required=True)
    officers = fields.List(fields.Nested(OfficerViewSchema), **_doc(
        "current 负责人, directors, supervisors, senior managers (names masked in the public "
        "view); their history: GET .../appointments"))
    barred_appointments = fields.List(fields.Nested(BarredAppointmentSchema), **_doc(
        "answer to a registration only: the appointments it recorded of barred persons"))


class EntityQuerySchema(Schema):
    view = fields.String(validate=validate.OneOf(("public", "full")),
                         **_doc("public (default) masks the legal representative's name"))
    purpose = fields.String(validate=validate.Length(min=5, max=200), **_doc(
        "required with view=full when the entity has a legal representative: a lookup of a "
        "person, logged with who asked and why"))


class PersonQuerySchema(Schema):
    purpose = fields.String(required=True, validate=validate.Length(min=5, max=200), **_doc(
        "why the caller looks the person up; logged with who asked (person_access)"))


class PersonViolationSchema(Schema):
    violation_id = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(("active", "revoked")))


class PersonViewSchema(Schema):
    person_id = fields.String(required=True)
    document_type = fields.String(required=True, allow_none=True)
    id_masked = fields.String(required=True, **_doc("first and last character only"))
    name = fields.String(required=True)
    entities = fields.List(USCC(), required=True, **_doc("entities they represent"))
    violations = fields.List(fields.Nested(PersonViolationSchema), required=True)
    ended_at = Instant(allow_none=True, **_doc(
        "since when nothing current refers to the person; deleted after the retention "
        "period (catalog/personal_data.json)"))
