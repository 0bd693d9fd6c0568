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
from contracts.events import RISK_CLASSES
from contracts.violation import StrictSchema

DEFAULT_RATIOS = {"A": 0.05, "B": 0.20, "C": 0.60, "D": 1.00}
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

class ScoreViewSchema(Schema):
    """Regulator view: score, risk class, why (``class_reason``) and every contribution.

    ``score == base + sum(contribution.points)`` exactly (decimal arithmetic)."""

    uscc = fields.String()
    name = fields.String(allow_none=True)
    known = fields.Boolean()
    score = fields.Float()
    risk_class = fields.String(validate=validate.OneOf(RISK_CLASSES))
    class_reason = fields.String()
    base = fields.Float()
    explanation = fields.List(fields.Dict())
    model_version = fields.String()
    day = fields.String(allow_none=True)
    computed_at = fields.Raw(allow_none=True)


class PublicRecordSchema(Schema):
    """One public record that bears on the entity's credit (no points, no class)."""

    kind = fields.String()
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
    """Any authenticated role: the records in publicity (penalties not repaired and not yet
    faded; valid positive records). Neither class nor score: with the published thresholds
    the score would give the class away."""

    uscc = fields.String()
    name = fields.String(allow_none=True)
    day = fields.String(allow_none=True)
    records = fields.List(fields.Nested(PublicRecordSchema))


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


class TargetSchema(Schema):
    uscc = fields.String()
    name = fields.String(allow_none=True)
    risk_class = fields.String()
    inspectors = fields.List(fields.String())
    result = fields.Dict(allow_none=True)


class PlanSchema(Schema):
    """Regulator view of a plan: per class the population, ratio and sample; targets with their
    class and inspectors; results recorded so far."""

    plan_id = fields.String()
    status = fields.String()
    region = fields.String()
    region_name = fields.String()
    industry = fields.String()
    period = fields.Dict()
    seed = fields.Integer()
    ratios = fields.Dict()
    classes = fields.Dict()
    population_digest = fields.String()
    model_version = fields.String()
    targets = fields.List(fields.Nested(TargetSchema))
    created_at = fields.Raw()
    created_by = fields.String()
    published_at = fields.Raw(allow_none=True)


class InspectionResultSchema(StrictSchema):
    uscc = USCC(required=True)
    outcome = fields.String(required=True, validate=validate.OneOf(OUTCOMES))
    finding = fields.String(required=True, validate=validate.Length(min=2, max=2000))
    inspected_at = Instant(required=True, validate=_not_in_future)


class PublicResultSchema(Schema):
    uscc = fields.String()
    name = fields.String(allow_none=True)
    outcome = fields.String()
    finding = fields.String()
    inspected_at = fields.Raw()


class PublishedResultsSchema(Schema):
    """The 公开 part: what was inspected and found. No class, no inspector."""

    plan_id = fields.String()
    region = fields.String()
    region_name = fields.String()
    industry = fields.String()
    period = fields.Dict()
    published_at = fields.Raw()
    results = fields.List(fields.Nested(PublicResultSchema))
