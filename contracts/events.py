"""Event envelope and the payload schema of every event the services exchange.

Every event on the wire is ``EnvelopeSchema`` with ``payload`` valid against the schema
registered for its ``type`` in ``PAYLOADS``. Producers build events with ``make_event``;
consumers read them with ``read_event``; both use the same schemas.
"""
from __future__ import annotations

import uuid
from datetime import datetime, timezone

from marshmallow import Schema, fields, post_load, pre_dump, validate

from contracts.common import USCC, Instant
from contracts.violation import ViolationSchema, registration_region
from rules.vocabulary import (EFFECTS, PERSON_ROLES, POSITIONS, RISK_CLASSES,  # noqa: F401
                              SECTORS, SEVERITIES, SUBJECTS)

SCHEMA_VERSION = 1  # of every event type not named in VERSIONS
# Event types at a later version: producers emit the last; consumers accept every version
# listed (old dead letters replay). RestrictionImposed / RestrictionLifted v2 (catalog format 2,
# issue 18) add each measure's effect, subject and bases.
# ViolationRecorded / Amended / Revoked v2 (record v2, issue 18 item 4): the record may carry
# place_code, procedure, published_at, persons and penalty type none, and the payload names the
# entity's registration_region; a v1 payload reads with the record's v1 defaults and the region
# of its USCC.
VERSIONS: dict[str, tuple[int, ...]] = {"RestrictionImposed": (1, 2), "RestrictionLifted": (1, 2),
                                        "ViolationRecorded": (1, 2), "ViolationAmended": (1, 2),
                                        "ViolationRevoked": (1, 2)}


# The longest id derived from a record's id (``contracts.violation.VIOLATION_ID_MAX``, 64) is a
# restriction's ``<id>#<measure>~<n>:imposed``: 64 + 1 + measure id (catalog: at most 18 today)
# + ~3 + 8; 128 leaves room (tests/unit/test_ids.py checks it against the catalog).
EVENT_ID_MAX = 128


class EnvelopeSchema(Schema):
    event_id = fields.String(required=True, validate=validate.Length(min=8, max=EVENT_ID_MAX))
    type = fields.String(required=True)
    schema_version = fields.Integer(required=True, validate=validate.Range(min=1))
    occurred_at = Instant(required=True)
    producer = fields.String(required=True)
    correlation_id = fields.String(required=True)
    payload = fields.Dict(required=True)


class ViolationEventSchema(Schema):
    """ViolationRecorded / ViolationAmended / ViolationRevoked."""

    violation_id = fields.String(required=True)
    version = fields.Integer(required=True, validate=validate.Range(min=1))
    status = fields.String(required=True, validate=validate.OneOf(("active", "revoked")))
    record = fields.Nested(ViolationSchema, required=True)
    reason = fields.String(allow_none=True, load_default=None)
    registration_region = fields.String(validate=validate.Regexp(r"^\d{6}$"), metadata={
        "description": "GB/T 2260 code of the entity's registration (USCC positions 3-8): the "
                       "region whose readers see the record, wherever it happened "
                       "(record.place_code) or who decided it (SAMR Order 45 art. 10)"})

    @pre_dump
    @post_load
    def _region(self, data, **kwargs):
        if "registration_region" not in data:  # v1 events; producers need not repeat it
            data = {**data, "registration_region": registration_region(data["record"]["uscc"])}
        return data


class FieldErrorSchema(Schema):
    field = fields.String(required=True)
    problem = fields.String(required=True)


class ViolationRejectedSchema(Schema):
    agency_code = fields.String(allow_none=True, load_default=None)
    document_number = fields.String(allow_none=True, load_default=None)
    message_id = fields.String(required=True)
    received_via = fields.String(required=True, validate=validate.OneOf(("amqp", "http", "import")))
    errors = fields.List(fields.Nested(FieldErrorSchema), required=True)


class EntityRegisteredSchema(Schema):
    uscc = USCC(required=True)
    name = fields.String(required=True)
    provisional = fields.Boolean(required=True)
    region_code = fields.String(required=True)
    entity_type = fields.String(allow_none=True)


class MembershipSchema(Schema):
    platform_id = fields.String(required=True)
    shop_id = fields.String(required=True)


class MembershipsChangedSchema(Schema):
    """An entity's platform memberships as they now are (the whole list, not the change):
    notifications keeps them as a read model instead of asking the registry per notice.
    ``version`` counts the entity's membership changes; a consumer keeps the newest."""

    uscc = USCC(required=True)
    version = fields.Integer(required=True, validate=validate.Range(min=1))
    memberships = fields.List(fields.Nested(MembershipSchema), required=True)


class CreditChangedSchema(Schema):
    uscc = USCC(required=True)
    old_score = fields.Float(allow_none=True)
    new_score = fields.Float(required=True)
    old_class = fields.String(allow_none=True, validate=validate.OneOf(RISK_CLASSES))
    new_class = fields.String(required=True, validate=validate.OneOf(RISK_CLASSES))
    model_version = fields.String(required=True)
    cause_event_id = fields.String(required=True)
    # When the score was computed: consumers keep the newest (events of one entity can arrive
    # out of order: a retry, or the outbox relay after an instance died). Absent in old events.
    computed_at = fields.AwareDateTime(load_default=None, allow_none=True)


class SourceSchema(Schema):
    violation_id = fields.String(required=True)
    agency_code = fields.String(required=True)
    document_number = fields.String(required=True)
    category = fields.String(required=True)
    severity = fields.String(required=True, validate=validate.OneOf(SEVERITIES))


class BasisSchema(Schema):
    """One legal basis of a measure, as the catalog gives it (checked against rules/law/)."""

    document = fields.String(required=True, metadata={"description": "title of the rule"})
    number = fields.String(allow_none=True, load_default=None,
                           metadata={"description": "document number; null for a law"})
    article = fields.String(required=True, metadata={"description": "e.g. 第十五条"})
    item = fields.String(allow_none=True, load_default=None,
                         metadata={"description": "item or paragraph, e.g. （一）"})
    quote = fields.String(required=True, metadata={"description": "the sentence relied on, verbatim"})
    law_file = fields.String(required=True, metadata={"description": "the file under rules/law/"})


class RestrictionV1Schema(Schema):
    """RestrictionImposed at schema version 1 (before catalog format 2): read, never written."""

    restriction_id = fields.String(required=True)
    uscc = USCC(required=True)
    entity_name = fields.String(required=True)
    sector = fields.String(required=True, validate=validate.OneOf(SECTORS))
    measure_id = fields.String(required=True)
    action = fields.String(required=True)
    legal_basis = fields.String(required=True)
    department = fields.String(required=True)
    memorandum = fields.String(required=True)
    source = fields.Nested(SourceSchema, required=True)
    starts_at = Instant(required=True)
    ends_at = Instant(allow_none=True)
    rule = fields.String(required=True)
    reason = fields.String(required=True)


class RestrictionSchema(RestrictionV1Schema):
    """RestrictionImposed v2: the measure's effect (only ``prohibit`` bars the entity), whom it
    binds and the bases it rests on."""

    effect = fields.String(required=True, validate=validate.OneOf(EFFECTS))
    subject = fields.String(required=True, validate=validate.OneOf(SUBJECTS))
    bases = fields.List(fields.Nested(BasisSchema), required=True)
    catalog_version = fields.String(allow_none=True, load_default=None, metadata={
        "description": "the measure catalog version it was decided under (null: not recorded)"})


class RestrictionsImposedSchema(Schema):
    """The measures one decision imposed on an entity (one reconciliation of one violation):
    one event instead of one ``RestrictionImposed`` per measure. Each restriction is the
    ``RestrictionImposed`` v2 payload; notices and ``/v1/changes`` stay per restriction."""

    uscc = USCC(required=True)
    violation_id = fields.String(required=True)
    restrictions = fields.List(fields.Nested(RestrictionSchema), required=True,
                               validate=validate.Length(min=1))


class RestrictionLiftedV1Schema(Schema):
    restriction = fields.Nested(RestrictionV1Schema, required=True)
    lifted_at = Instant(required=True)
    lift_reason = fields.String(required=True)


class RestrictionLiftedSchema(RestrictionLiftedV1Schema):
    restriction = fields.Nested(RestrictionSchema, required=True)


class CauseSchema(Schema):
    """The entity whose record caused a person measure."""

    uscc = USCC(required=True)
    entity_name = fields.String(required=True)
    violation_id = fields.String(required=True)
    agency_code = fields.String(required=True)
    document_number = fields.String(required=True)


class PersonRestrictionSchema(Schema):
    """PersonRestrictionImposed: a person measure on one person id (issue 21). Never in the
    entity's gate-keeping answer: the entity's ``may_pass`` does not depend on it."""

    restriction_id = fields.String(required=True)
    person_id = fields.String(required=True, validate=validate.Regexp(r"^p1_[0-9a-f]{64}$"))
    role = fields.String(required=True, validate=validate.OneOf(PERSON_ROLES),
                         metadata={"description": "the person's role on the record"})
    name = fields.String(required=True)
    id_masked = fields.String(required=True)
    measure_id = fields.String(required=True)
    effect = fields.String(required=True, validate=validate.OneOf(EFFECTS))
    bars = fields.List(fields.String(validate=validate.OneOf(POSITIONS)), required=True,
                       metadata={"description": "the positions the person may not take"})
    other_entities_only = fields.Boolean(required=True, metadata={
        "description": "the bar spares the entity of the cause (其他企业)"})
    action = fields.String(required=True)
    bases = fields.List(fields.Nested(BasisSchema), required=True)
    legal_basis = fields.String(required=True)
    department = fields.String(required=True)
    memorandum = fields.String(required=True)
    cause = fields.Nested(CauseSchema, required=True)
    starts_at = Instant(required=True)
    ends_at = Instant(allow_none=True)
    rule = fields.String(required=True)
    reason = fields.String(required=True)


class PersonRestrictionLiftedSchema(Schema):
    restriction = fields.Nested(PersonRestrictionSchema, required=True)
    lifted_at = Instant(required=True)
    lift_reason = fields.String(required=True)


class BarredAppointmentRecordedSchema(Schema):
    """A registration recorded an appointment of a person barred from the position (issue 21):
    kept, since it happened, and flagged for regulators, with the override reason if given."""

    uscc = USCC(required=True)
    role = fields.String(required=True)
    person_id = fields.String(required=True)
    id_masked = fields.String(required=True)
    effective_from = Instant(required=True)
    restriction_ids = fields.List(fields.String(), required=True)
    legal_basis = fields.String(required=True)
    override_reason = fields.String(allow_none=True, load_default=None)
    recorded_by = fields.String(required=True)


class SupervisionActionSchema(Schema):
    uscc = USCC(required=True)
    violation_id = fields.String(required=True)
    actions = fields.List(fields.String(), required=True)
    rule = fields.String(required=True)
    reason = fields.String(required=True)


class RecordRepairedSchema(Schema):
    """Credit repair approved by the listing agency (emitted by the repair service).

    ``scope`` says what the repair ends: ``publicity`` (the penalty is no longer published and
    the measures that depended on the record end) or ``serious_list`` (removal from the serious
    violation list). Consumers: restrictions lift what depended on the record, scoring stops
    deducting for it, notifications tell subscribers.
    """

    application_id = fields.String(required=True)
    uscc = USCC(required=True)
    violation_id = fields.String(required=True)
    scope = fields.String(required=True, validate=validate.OneOf(("publicity", "serious_list")))
    decided_by = fields.String(required=True)
    decided_at = Instant(required=True)
    reason = fields.String(required=True)


class ObjectionSchema(Schema):
    """ObjectionOpened / ObjectionDecided (emitted by the repair service).

    While an objection is open the record is ``under review``: gate-keeping answers say so.
    ``outcome`` is set on decision: ``upheld`` (the record stands), ``corrected`` (the agency
    amended it through violation intake) or ``revoked`` (the agency revoked it through intake).
    """

    objection_id = fields.String(required=True)
    uscc = USCC(required=True)
    violation_id = fields.String(required=True)
    opened_at = Instant(required=True)
    outcome = fields.String(allow_none=True, load_default=None,
                            validate=validate.OneOf(("upheld", "corrected", "revoked")))
    decided_at = Instant(allow_none=True, load_default=None)
    reason = fields.String(allow_none=True, load_default=None)


class MeasureRefSchema(Schema):
    id = fields.String(required=True)
    sector = fields.String(required=True, validate=validate.OneOf(SECTORS))
    action = fields.String(required=True)
    legal_basis = fields.String(required=True)
    department = fields.String(required=True)
    memorandum = fields.String(allow_none=True, load_default=None)
    effect = fields.String(allow_none=True, load_default=None, validate=validate.OneOf(EFFECTS),
                           metadata={"description": "null in notices before catalog format 2"})


class RestrictionRefSchema(Schema):
    restriction_id = fields.String(required=True)
    starts_at = Instant(required=True)
    ends_at = Instant(allow_none=True)
    reason = fields.String(required=True)
    source = fields.Nested(SourceSchema, required=True)


class MerchantClearedSchema(Schema):
    """A platform reported it cleared (清退) a merchant (emitted by notifications when the
    platform posts feedback on a notice); the other platforms where the merchant is a member
    are told (互认, mutual recognition)."""

    uscc = USCC(required=True)
    entity_name = fields.String(required=True)
    platform_id = fields.String(required=True)
    notice_id = fields.String(required=True)
    measure = fields.Nested(MeasureRefSchema, required=True)
    restriction = fields.Nested(RestrictionRefSchema, required=True)
    cleared_at = Instant(required=True)
    reference = fields.String(allow_none=True, load_default=None)


PAYLOADS: dict[str, type[Schema]] = {
    "ViolationRecorded": ViolationEventSchema,
    "ViolationAmended": ViolationEventSchema,
    "ViolationRevoked": ViolationEventSchema,
    "ViolationRejected": ViolationRejectedSchema,
    "EntityRegistered": EntityRegisteredSchema,
    "MembershipsChanged": MembershipsChangedSchema,
    "CreditChanged": CreditChangedSchema,
    "RestrictionImposed": RestrictionSchema,
    "RestrictionsImposed": RestrictionsImposedSchema,
    "RestrictionLifted": RestrictionLiftedSchema,
    "SupervisionActionRecorded": SupervisionActionSchema,
    "PersonRestrictionImposed": PersonRestrictionSchema,
    "PersonRestrictionLifted": PersonRestrictionLiftedSchema,
    "BarredAppointmentRecorded": BarredAppointmentRecordedSchema,
    "RecordRepaired": RecordRepairedSchema,
    "ObjectionOpened": ObjectionSchema,
    "ObjectionDecided": ObjectionSchema,
    "MerchantCleared": MerchantClearedSchema,
}


# Older versions of a payload: (type, version) -> schema. A v1 restriction payload is given
# to consumers as v2 with the defaults of a format-1 measure (it was imposed as a prohibition
# of the entity, with its bases in ``legal_basis`` only).
OLD_PAYLOADS: dict[tuple[str, int], type[Schema]] = {
    ("RestrictionImposed", 1): RestrictionV1Schema,
    ("RestrictionLifted", 1): RestrictionLiftedV1Schema,
}
V1_MEASURE_DEFAULTS = {"effect": "prohibit", "subject": "entity", "bases": []}


class UnknownEventType(ValueError):
    pass


class UnsupportedSchemaVersion(ValueError):
    pass


def version_of(event_type: str) -> int:
    """The schema version a producer writes for ``event_type``."""
    return VERSIONS.get(event_type, (SCHEMA_VERSION,))[-1]


def make_event(event_type: str, payload: dict, *, producer: str, correlation_id: str,
               event_id: str | None = None, occurred_at: datetime | None = None) -> dict:
    """Validate ``payload`` (already in its loaded form) and wrap it in an envelope, JSON-safe."""
    schema = _payload_schema(event_type)
    body = schema.dump(payload)
    schema.load(body)  # a producer never emits what a consumer would refuse
    envelope = {
        "event_id": event_id or str(uuid.uuid4()),
        "type": event_type,
        "schema_version": version_of(event_type),
        "occurred_at": occurred_at or datetime.now(timezone.utc),
        "producer": producer,
        "correlation_id": correlation_id,
        "payload": body,
    }
    return _ENVELOPE.dump(envelope)


def read_event(body: dict, expected_type: str | None = None) -> tuple[dict, dict]:
    """Validate an envelope and its payload; returns ``(envelope, payload)`` loaded."""
    envelope = _ENVELOPE.load(body)
    kind, version = envelope["type"], envelope["schema_version"]
    if expected_type and kind != expected_type:
        raise UnknownEventType(f"expected {expected_type}, got {kind}")
    accepted = VERSIONS.get(kind, (SCHEMA_VERSION,))
    if kind in PAYLOADS and version not in accepted:
        raise UnsupportedSchemaVersion(f"{kind} schema_version {version} is not one of "
                                       f"{', '.join(map(str, accepted))}")
    if (kind, version) in OLD_PAYLOADS:
        payload = _old_schema(kind, version).load(envelope["payload"])
        if kind == "RestrictionImposed":
            payload = {**V1_MEASURE_DEFAULTS, **payload}
        else:
            payload = {**payload, "restriction": {**V1_MEASURE_DEFAULTS, **payload["restriction"]}}
        return envelope, payload
    payload = _payload_schema(kind).load(envelope["payload"])
    return envelope, payload


_INSTANCES: dict[str, Schema] = {}
_OLD_INSTANCES: dict[tuple[str, int], Schema] = {}


def _old_schema(kind: str, version: int) -> Schema:
    schema = _OLD_INSTANCES.get((kind, version))
    if schema is None:
        schema = _OLD_INSTANCES[(kind, version)] = OLD_PAYLOADS[(kind, version)]()
    return schema
_ENVELOPE = EnvelopeSchema()


def _payload_schema(event_type: str) -> Schema:
    """One schema instance per type: marshmallow schemas are reusable, and building one
    costs more than using it."""
    try:
        return _INSTANCES[event_type]
    except KeyError:
        if event_type not in PAYLOADS:
            raise UnknownEventType(f"unknown event type {event_type!r}") from None
        schema = _INSTANCES[event_type] = PAYLOADS[event_type]()
        return schema
