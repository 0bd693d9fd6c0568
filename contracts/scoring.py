"""Scoring's HTTP payloads: score views, positive records, inspection plans and results.

The risk class is not public. Views meant for every authenticated role (``PublicCreditView``,
``PublishedResults``) are dumped through schemas that have no class field at all, so a class can
never slip into them; only the regulator's views (``ScoreView``, ``Plan``) carry it.

Endpoints (scoring service):

=============================================  ==========================  ====================
``GET  /v1/scores/{uscc}``                     ``ScoreView``               regulator
``GET  /v1/scores/{uscc}/public``              ``PublicCreditView``        any role
``POST /v1/positive-records``                  ``PositiveRecordRequest``   agency, regulator
``POST /v1/inspection-plans``                  ``PlanRequest`` -> ``Plan``  regulator
``GET  /v1/inspection-plans/{id}``             ``Plan``                    regulator
``POST /v1/inspection-plans/{id}/results``     ``InspectionResult``        regulator
``POST /v1/inspection-plans/{id}/publication`` -> ``PublishedResults``     regulator
``GET  /v1/inspection-results/{id}``           ``PublishedResults``        any role
=============================================  ==========================  ====================
"""
from __future__ import annotations

from datetime import datetime, timezone

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from contracts.common import USCC, Instant
from contracts.violation import StrictSchema
from rules.inspections import DEFAULT_RATIOS  # noqa: F401 (re-exported)
from rules.vocabulary import CATEGORIES, RISK_CLASSES, SEVERITIES
OUTCOMES = (
    "no_problem_found",       # 未发现问题
    "problems_corrected",     # 发现问题已责令整改
    "violation_found",        # 发现违法行为, case opened
    "not_found_at_address",   # 通过登记的住所无法联系
    "inspection_refused",     # 不配合检查
)
INSPECTOR_ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
KEY = r"^[A-Za-z0-9][A-Za-z0-9_./:-]{0,99}$"


def _not_in_future(value: datetime) -> None:
    if value > datetime.now(timezone.utc):
        raise ValidationError("must not be in the future")


# -- positive records --------------------------------------------------------------------------

class PositiveRecordRequestSchema(StrictSchema):
    """An honour, a fulfilled commitment, ...: adds bounded credit while valid.

    ``key`` is the issuer's own identifier of the record: the same key again is a duplicate
    (nothing changes), a different record under the same key is a conflict (409). ``kind`` is one
    of the score model's ``positive_records.kinds``.
    """

    key = fields.String(required=True, validate=validate.Regexp(
        KEY, error="must be 1-100 characters of A-Z, a-z, 0-9 and _ . / : -"))
    uscc = USCC(required=True)
    kind = fields.String(required=True, validate=validate.Length(min=1, max=64))
    title = fields.String(required=True, validate=validate.Length(min=2, max=200))
    awarded_at = Instant(required=True, validate=_not_in_future)
    document_number = fields.String(load_default=None, validate=validate.Length(max=64))


# -- score views -------------------------------------------------------------------------------

def _doc(text: str) -> dict:
    return {"metadata": {"description": text}}


class PartSchema(Schema):
    rule = fields.String(required=True)
    points = fields.Float(required=True)
    repaired = fields.Boolean(required=True)


class ContributionSchema(Schema):
    """One line of the explanation. ``kind``: ``violation`` (a record's deduction, fading over
    its publicity window), ``positive`` (a positive record's credit) or ``adjustment`` (a bound
    of the model: floor, ceiling, positive maximum). ``points`` add up to the score."""

    kind = fields.String(required=True, validate=validate.OneOf(("violation", "positive", "adjustment")))
    points = fields.Float(required=True, **_doc("negative: deducted; positive: added"))
    rule = fields.String(**_doc("adjustment: the bound that applied"))
    violation_id = fields.String()
    agency_code = fields.String()
    document_number = fields.String()
    category = fields.String(validate=validate.OneOf(CATEGORIES))
    severity = fields.String(validate=validate.OneOf(SEVERITIES))
    penalties = fields.List(fields.String())
    decided_on = fields.String(**_doc("the decision's day (China time), YYYY-MM-DD"))
    publicity_ends_on = fields.String(**_doc("the day the deduction has faded to nothing"))
    state = fields.String(validate=validate.OneOf(
        ("fading", "faded", "repaired", "partly_repaired", "valid", "expired")))
    full_points = fields.Float(**_doc("the deduction before fading"))
    fade_factor = fields.Float(**_doc("share of the publicity window still to run"))
    parts = fields.List(fields.Nested(PartSchema))
    repaired_on = fields.Dict(keys=fields.String(), values=fields.String(),
                              **_doc("repair scope -> day it took effect"))
    record_id = fields.String()
    record_kind = fields.String()
    title = fields.String()
    issued_by = fields.String()
    awarded_on = fields.String()
    valid_until = fields.String()


class ScoreViewSchema(Schema):
    """Regulator view: score, risk class, why (``class_reason``) and every contribution.

    ``score == base + sum(explanation[].points)`` exactly (decimal arithmetic)."""

    uscc = USCC(required=True)
    name = fields.String(allow_none=True)
    known = fields.Boolean(**_doc("false: nothing is known of the entity; the base score"))
    score = fields.Float(required=True)
    risk_class = fields.String(required=True, validate=validate.OneOf(RISK_CLASSES))
    class_reason = fields.String()
    base = fields.Float()
    region_code = fields.String(allow_none=True)
    entity_type = fields.String(allow_none=True)
    explanation = fields.List(fields.Nested(ContributionSchema), required=True)
    model_version = fields.String(required=True)
    day = fields.String(allow_none=True, **_doc("the day (China time) the score is for"))
    computed_at = Instant()
    record = fields.String(validate=validate.OneOf(("none",)), **_doc(
        "'none': nothing on record, the base score"))


class PublicCreditRecordSchema(Schema):
    """One public record that bears on the entity's credit (no points, no class)."""

    kind = fields.String(required=True, validate=validate.OneOf(("violation", "positive")))
    agency_code = fields.String()
    document_number = fields.String()
    category = fields.String()
    severity = fields.String()
    decided_on = fields.String()
    publicity_ends_on = fields.String()
    record_kind = fields.String()
    title = fields.String()
    issued_by = fields.String()
    awarded_on = fields.String()
    valid_until = fields.String()


class PublicCreditViewSchema(Schema):
    """Any authenticated role: the records in publicity (penalties not repaired, not yet faded
    and not warnings alone; valid positive records). Neither class nor score: with the
    published thresholds the score would give the class away."""

    uscc = USCC(required=True)
    name = fields.String(allow_none=True)
    day = fields.String(allow_none=True)
    records = fields.List(fields.Nested(PublicCreditRecordSchema), required=True)


class PositiveRecordAnswerSchema(Schema):
    record_id = fields.String(required=True, **_doc("issuer/key"))
    uscc = USCC(required=True)
    status = fields.String(required=True, validate=validate.OneOf(("recorded", "duplicate")))


# -- inspection plans (双随机、一公开) --------------------------------------------------------------

class InspectorSchema(StrictSchema):
    id = fields.String(required=True, validate=validate.Regexp(
        INSPECTOR_ID, error="must be 1-64 characters of A-Z, a-z, 0-9 and _ . -"))
    name = fields.String(load_default=None, validate=validate.Length(max=100))
    conflicts = fields.List(USCC(), load_default=list)


class PeriodSchema(StrictSchema):
    start = fields.Date(required=True)
    end = fields.Date(required=True)

    @validates_schema
    def _order(self, data, **kwargs):
        if data.get("start") and data.get("end") and data["end"] < data["start"]:
            raise ValidationError("must not be before start", "end")


class RatiosSchema(StrictSchema):
    A = fields.Float(validate=validate.Range(0, 1, error="must be between 0 and 1"))
    B = fields.Float(validate=validate.Range(0, 1, error="must be between 0 and 1"))
    C = fields.Float(validate=validate.Range(0, 1, error="must be between 0 and 1"))
    D = fields.Float(validate=validate.Range(0, 1, error="must be between 0 and 1"))


def _roster_size(roster) -> None:
    if not roster:
        raise ValidationError("must not be empty: list the inspectors to draw from")
    if len(roster) < 2:
        raise ValidationError("needs at least two inspectors (each target gets two)")


class PlanRequestSchema(StrictSchema):
    """``region``: a GB/T 2260 code from ``catalog/regions.json`` (province ``xx0000``, city
    ``xxxx00`` or county); ``industry``: one of its industries; ``seed``: the public random seed
    (the same request over the same population gives the same plan); ``ratios``: share of each
    class to inspect (defaults A 5%, B 20%, C 60%, D 100%)."""

    region = fields.String(required=True, validate=validate.Regexp(r"^\d{6}$", error="must be 6 digits"))
    industry = fields.String(required=True, validate=validate.Length(min=1, max=64))
    period = fields.Nested(PeriodSchema, required=True)
    seed = fields.Integer(required=True, strict=True, validate=validate.Range(
        0, 2**63 - 1, error="must be a whole number from 0 to 2^63-1"))
    roster = fields.List(fields.Nested(InspectorSchema), required=True, validate=_roster_size)
    ratios = fields.Nested(RatiosSchema, load_default=dict)

    @validates_schema
    def _unique_inspectors(self, data, **kwargs):
        ids = [i["id"] for i in data.get("roster") or ()]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValidationError(f"inspector ids must be unique: {', '.join(dupes)}", "roster")


class RecordedResultSchema(Schema):
    outcome = fields.String(required=True, validate=validate.OneOf(OUTCOMES))
    finding = fields.String(required=True)
    inspected_at = Instant(required=True)
    recorded_by = fields.String(required=True)
    recorded_at = Instant(required=True)


class TargetSchema(Schema):
    uscc = USCC(required=True)
    name = fields.String(allow_none=True)
    risk_class = fields.String(required=True, validate=validate.OneOf(RISK_CLASSES))
    inspectors = fields.List(fields.String(), required=True)
    result = fields.Nested(RecordedResultSchema, allow_none=True)


class ClassSampleSchema(Schema):
    population = fields.Integer(required=True)
    ratio = fields.Float(required=True)
    sample = fields.Integer(required=True)


class PeriodViewSchema(Schema):
    start = fields.String(required=True)
    end = fields.String(required=True)


class RosterEntrySchema(Schema):
    id = fields.String(required=True)
    name = fields.String(allow_none=True)
    conflicts = fields.List(fields.String(), required=True)


class PlanSchema(Schema):
    """Regulator view of a plan: per class the population, ratio and sample; targets with their
    class and inspectors; results recorded so far. ``population_digest``: SHA-256 of the sorted
    ``uscc:class`` lines drawn from, so the draw can be checked with the seed."""

    plan_id = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(("planned", "published")))
    region = fields.String(required=True)
    region_name = fields.String(required=True)
    industry = fields.String(required=True)
    period = fields.Nested(PeriodViewSchema, required=True)
    seed = fields.Integer(required=True)
    ratios = fields.Dict(keys=fields.String(validate=validate.OneOf(RISK_CLASSES)),
                         values=fields.Float(), required=True)
    roster = fields.List(fields.Nested(RosterEntrySchema), required=True)
    classes = fields.Dict(keys=fields.String(validate=validate.OneOf(RISK_CLASSES)),
                          values=fields.Nested(ClassSampleSchema), required=True)
    population_digest = fields.String(required=True)
    model_version = fields.String(required=True)
    targets = fields.List(fields.Nested(TargetSchema), required=True)
    created_at = Instant(required=True)
    created_by = fields.String(required=True)
    published_at = Instant(allow_none=True)


class InspectionResultSchema(StrictSchema):
    uscc = USCC(required=True)
    outcome = fields.String(required=True, validate=validate.OneOf(OUTCOMES))
    finding = fields.String(required=True, validate=validate.Length(min=2, max=2000))
    inspected_at = Instant(required=True, validate=_not_in_future)


class ResultAnswerSchema(Schema):
    plan_id = fields.String(required=True)
    uscc = USCC(required=True)
    status = fields.String(required=True, validate=validate.OneOf(
        ("recorded", "corrected", "duplicate")))


class PublicResultSchema(Schema):
    uscc = USCC(required=True)
    name = fields.String(allow_none=True)
    outcome = fields.String(required=True, validate=validate.OneOf(OUTCOMES))
    finding = fields.String(required=True)
    inspected_at = Instant(required=True)


class PublishedResultsSchema(Schema):
    """The 公开 part: what was inspected and found. No class, no inspector."""

    plan_id = fields.String(required=True)
    region = fields.String(required=True)
    region_name = fields.String(required=True)
    industry = fields.String(required=True)
    period = fields.Nested(PeriodViewSchema, required=True)
    published_at = Instant(required=True)
    results = fields.List(fields.Nested(PublicResultSchema), required=True)
