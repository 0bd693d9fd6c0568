"""Scoring API: the regulator's view of an entity's credit score and its explanation."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from contracts.common import USCC, Instant
from contracts.events import RISK_CLASSES
from contracts.violation import CATEGORIES, SEVERITIES


class ContributionSchema(Schema):
    """One line of the explanation: a record's (fading) deduction, or a rule that applied."""

    agency_code = fields.String()
    document_number = fields.String()
    category = fields.String(validate=validate.OneOf(CATEGORIES))
    severity = fields.String(validate=validate.OneOf(SEVERITIES))
    deduction = fields.Float(required=True)
    full_deduction = fields.Float()
    fades_until = Instant()
    rule = fields.String()


class ScoreViewSchema(Schema):
    uscc = USCC(required=True)
    score = fields.Float(required=True)
    risk_class = fields.String(required=True, validate=validate.OneOf(RISK_CLASSES))
    explanation = fields.List(fields.Nested(ContributionSchema), required=True)
    model_version = fields.String(required=True)
    computed_at = Instant()
    record = fields.String(validate=validate.OneOf(("none",)), metadata={
        "description": "'none': no violation on record, the base score"})
