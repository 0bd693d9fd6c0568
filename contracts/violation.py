"""The violation record an agency submits (AMQP, HTTP or bulk import: one validation path).

Field by field:

=====================  ===================================================================
agency_code            Recording agency, e.g. ``SAMR-350100`` (upper case, digits, ``-``).
document_number        Decision document number (文书号), unique within the agency.
                       (agency_code, document_number) is the record's natural key.
uscc                   Unified Social Credit Code of the entity, check character verified.
entity_name            Registered name of the entity as written in the decision.
category               One of ``CATEGORIES`` (food safety, tax violation, ...).
severity               ``minor`` | ``general`` | ``serious`` | ``especially_serious``.
penalties              Non-empty list of ``{type, amount?, months?}``; ``fine`` and
                       ``confiscation`` need ``amount`` (yuan, >= 0); ``suspension`` and
                       ``occupational_ban`` need ``months``.
legal_basis            ``{law, article}`` the decision applies.
occurred_at            When the violation happened (ISO 8601; no offset means UTC+8).
decided_at             When the decision was made; never before ``occurred_at`` nor in the
                       future.
first_offence          First violation of this kind by the entity (首违).
corrected              The entity corrected the violation promptly.
listing                Optional ``{list, listed_at}``: ``serious_violation`` (严重违法失信名单)
                       or ``abnormal_operations`` (经营异常名录).
region_code            Optional GB/T 2260 code of the deciding authority's region.
legal_representative   Optional ``{name, id_number}``: the resident identity number
                       (GB 11643, check character verified) is never stored, published or
                       logged in full: on load it becomes ``id_number_masked``
                       (``110101********123X``) and ``id_number_hash`` (HMAC-SHA256 keyed by
                       ``LIANCHEN_PII_PEPPER``), which is what every event and store carries.
=====================  ===================================================================
"""
from __future__ import annotations

import hashlib
import hmac
import os
from datetime import datetime, timezone

from marshmallow import RAISE, Schema, ValidationError, fields, post_load, pre_load, validate, validates_schema

from contracts.common import NUL_PROBLEM, USCC, Instant, nul_paths, reject_operator_keys, visible
from rules.vocabulary import CATEGORIES, LISTS, PENALTY_TYPES, SEVERITIES  # noqa: F401 (re-exported)

AGENCY_CODE = r"^[A-Z0-9][A-Z0-9-]{1,31}$"


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE

    @pre_load
    def _no_operator_keys(self, data, **kwargs):
        problems = {visible(path): ["keys starting with '$' or containing '.' are not allowed"]
                    for path in reject_operator_keys(data)}
        for path in nul_paths(data):
            problems.setdefault(path, []).append(NUL_PROBLEM)
        if problems:
            raise ValidationError(problems)
        return data


class PenaltySchema(StrictSchema):
    type = fields.String(required=True, validate=validate.OneOf(PENALTY_TYPES))
    amount = fields.Decimal(places=2, as_string=True, allow_nan=False,
                            validate=validate.Range(min=0, error="must not be negative"))
    months = fields.Integer(validate=validate.Range(min=1, max=600))

    @validates_schema
    def _amount_and_months(self, data, **kwargs):
        kind = data.get("type")
        if kind in ("fine", "confiscation") and data.get("amount") is None:
            raise ValidationError(f"a {kind} needs an amount", "amount")
        if kind in ("suspension", "occupational_ban") and data.get("months") is None:
            raise ValidationError(f"a {kind} needs a duration in months", "months")


class LegalBasisSchema(StrictSchema):
    law = fields.String(required=True, validate=validate.Length(min=2, max=200))
    article = fields.String(required=True, validate=validate.Length(min=1, max=100))


class ListingSchema(StrictSchema):
    list = fields.String(required=True, validate=validate.OneOf(LISTS))
    listed_at = Instant(required=True)


_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def id_number_problem(value: str) -> str | None:
    """Why ``value`` is not a valid 18-character resident identity number, or None."""
    if not isinstance(value, str) or len(value) != 18 or not value[:17].isdigit():
        return "must be 18 characters: 17 digits and a check character"
    check = _ID_CHECK[sum(int(c) * w for c, w in zip(value[:17], _ID_WEIGHTS)) % 11]
    if value[17].upper() != check:
        return "check character does not match"
    return None


def pii_pepper() -> bytes:
    return os.environ.get("LIANCHEN_PII_PEPPER", "lianchen-development-pepper").encode()


def protect_id_number(value: str) -> dict:
    value = value.upper()
    return {"id_number_masked": f"{value[:6]}********{value[-4:]}",
            "id_number_hash": hmac.new(pii_pepper(), value.encode(), hashlib.sha256).hexdigest()}


class LegalRepresentativeSchema(StrictSchema):
    """Input: ``{name, id_number}``; stored and published: ``{name, id_number_masked,
    id_number_hash}`` (the protected form is accepted on load too, e.g. from an event)."""

    name = fields.String(required=True, validate=validate.Length(min=1, max=50))
    id_number = fields.String(load_only=True)
    id_number_masked = fields.String(validate=validate.Regexp(r"^\d{6}\*{8}\d{3}[\dX]$"))
    id_number_hash = fields.String(validate=validate.Regexp(r"^[0-9a-f]{64}$"))

    @validates_schema
    def _one_form(self, data, **kwargs):
        if "id_number" in data:
            problem = id_number_problem(data["id_number"])
            if problem:
                raise ValidationError(problem, "id_number")
            if "id_number_masked" in data or "id_number_hash" in data:
                raise ValidationError("send id_number only", "id_number")
        elif ("id_number_masked" in data) != ("id_number_hash" in data):
            raise ValidationError("id_number_masked and id_number_hash go together",
                                  "id_number_hash")

    @post_load
    def _protect(self, data, **kwargs):
        raw = data.pop("id_number", None)
        if raw is not None:
            data.update(protect_id_number(raw))
        return data


class ViolationSchema(StrictSchema):
    agency_code = fields.String(required=True, validate=validate.Regexp(
        AGENCY_CODE, error="must be 2-32 characters of A-Z, 0-9 and '-'"))
    document_number = fields.String(required=True, validate=validate.Length(min=1, max=64))
    uscc = USCC(required=True)
    entity_name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    category = fields.String(required=True, validate=validate.OneOf(CATEGORIES))
    severity = fields.String(required=True, validate=validate.OneOf(SEVERITIES))
    penalties = fields.List(fields.Nested(PenaltySchema), required=True,
                            validate=validate.Length(min=1, error="at least one penalty"))
    legal_basis = fields.Nested(LegalBasisSchema, required=True)
    occurred_at = Instant(required=True)
    decided_at = Instant(required=True)
    first_offence = fields.Boolean(load_default=False)
    corrected = fields.Boolean(load_default=False)
    listing = fields.Nested(ListingSchema, allow_none=True, load_default=None)
    region_code = fields.String(validate=validate.Regexp(r"^\d{6}$", error="must be 6 digits"))
    legal_representative = fields.Nested(LegalRepresentativeSchema, allow_none=True)

    @validates_schema
    def _dates(self, data, **kwargs):
        occurred, decided = data.get("occurred_at"), data.get("decided_at")
        if occurred and decided and decided < occurred:
            raise ValidationError("must not be before occurred_at", "decided_at")
        if decided and decided > datetime.now(timezone.utc):
            raise ValidationError("must not be in the future", "decided_at")


class AmendmentSchema(StrictSchema):
    """An agency's correction: the full corrected record plus why it changed."""

    violation = fields.Nested(ViolationSchema, required=True)
    reason = fields.String(required=True, validate=validate.Length(min=2, max=500))


class RevocationSchema(StrictSchema):
    agency_code = fields.String(required=True, validate=validate.Regexp(AGENCY_CODE))
    document_number = fields.String(required=True, validate=validate.Length(min=1, max=64))
    reason = fields.String(required=True, validate=validate.Length(min=2, max=500))
    revoked_at = Instant(load_default=None)


def violation_key(agency_code: str, document_number: str) -> str:
    """The natural key of a record, used as its document id everywhere downstream."""
    return f"{agency_code}/{document_number}"
