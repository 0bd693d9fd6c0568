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
                       ``occupational_ban`` need ``months``. ``none`` records a decision not
                       to penalise (不予行政处罚, 行政处罚法 第三十三条): it stands alone,
                       without amount or months, and cannot carry a serious-violation listing
                       (SAMR Order 44 art. 2 lists after a 较重行政处罚).
legal_basis            ``{law, article}`` the decision applies.
occurred_at            When the violation happened (ISO 8601; no offset means UTC+8).
decided_at             When the decision was made; never before ``occurred_at`` nor in the
                       future.
first_offence          First violation of this kind by the entity (首违).
corrected              The entity corrected the violation promptly.
listing                Optional ``{list, listed_at}``: ``serious_violation`` (严重违法失信名单)
                       or ``abnormal_operations`` (经营异常名录).
region_code            Optional GB/T 2260 code of the deciding authority's region.
place_code             GB/T 2260 code (6 digits) of where the violation happened (违法行为发生地,
                       行政处罚法 第二十二条): what jurisdiction is checked against. Absent
                       (records before v2, v1 input): the entity's registration region,
                       positions 3-8 of its USCC, filled in on load.
procedure              ``summary`` (简易程序) | ``ordinary`` (普通程序); absent: ``ordinary``.
published_at           Optional: when the agency published the decision. Absent: not yet
                       reported (downstream assumes the deadline, 20 working days after
                       ``decided_at``); the agency reports it later with an amendment.
                       Never before ``decided_at`` nor in the future.
legal_representative   Optional ``{name, document_type, id_number, issuing_country?}``:
                       the document (resident identity card, residence permits, foreign
                       permanent resident card, travel permits, passports; validated per
                       type by ``shared.identity``) is never stored, published or logged in
                       full: on load it becomes ``person_id`` (HMAC-SHA256 keyed by
                       ``LIANCHEN_PII_KEY``) and ``id_masked`` (``1****************X``),
                       which is what every event and store carries.
persons                Optional list (at most 20) of persons responsible: ``{role, name,
                       document_type?, id_number, issuing_country?,
                       personal_responsibility?}``; ``role`` one of ``PERSON_ROLES``
                       (法定代表人, 负责人, 董事, 监事, 高级管理人员, 直接负责的主管人员,
                       其他直接责任人员); ``personal_responsibility`` (公司法 第一百七十八条
                       负有个人责任) defaults to false. The document is protected exactly like
                       ``legal_representative``'s: stored and published as ``{role, name,
                       document_type, person_id, id_masked, issuing_country?,
                       personal_responsibility}``.
=====================  ===================================================================
"""
from __future__ import annotations

from datetime import datetime, timezone

from marshmallow import RAISE, Schema, ValidationError, fields, post_load, pre_load, validate, validates_schema

from shared import identity
from contracts.common import NUL_PROBLEM, USCC, Instant, nul_paths, reject_operator_keys, visible
from rules.vocabulary import (CATEGORIES, LISTS, MAX_PERSONS, NO_PENALTY,  # noqa: F401 (re-exported)
                              PENALTY_TYPES, PERSON_ROLES, PROCEDURES, SEVERITIES)

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
        if kind == NO_PENALTY:
            for name in ("amount", "months"):
                if data.get(name) is not None:
                    raise ValidationError(f"a decision not to penalise (none) has no {name}",
                                          name)


class LegalBasisSchema(StrictSchema):
    law = fields.String(required=True, validate=validate.Length(min=2, max=200))
    article = fields.String(required=True, validate=validate.Length(min=1, max=100))


class ListingSchema(StrictSchema):
    list = fields.String(required=True, validate=validate.OneOf(LISTS))
    listed_at = Instant(required=True)


class LegalRepresentativeSchema(StrictSchema):
    """Input: ``{name, document_type, id_number, issuing_country?}`` (``document_type``
    defaults to ``resident_id_card``; ``issuing_country`` is for passports). Stored and
    published: ``{name, document_type, person_id, id_masked, issuing_country?}``: the number is
    turned into the keyed person id and the mask on load (``shared.identity``; only a process
    holding the identity key can load the input form). Also read: the protected form (events,
    stores, a dead letter whose number was replaced), an unmigrated record (``person_id``
    null, ``legacy_ref``) and the form before issue 19 (``id_number_masked`` and
    ``id_number_hash``), which is re-masked and loses its hash on load."""

    name = fields.String(required=True, validate=validate.Length(min=1, max=50))
    document_type = fields.String(validate=validate.OneOf(identity.DOCUMENT_TYPES))
    id_number = fields.String(load_only=True)
    issuing_country = fields.String(validate=validate.Regexp(
        r"^[A-Za-z]{3}$", error="must be an ISO 3166-1 alpha-3 code"))
    person_id = fields.String(allow_none=True, validate=validate.Regexp(
        identity.PERSON_ID, error="must be a person id (p1_ and 64 hex digits)"))
    id_masked = fields.String(validate=validate.Regexp(
        r"^[0-9A-Z]?\*+[0-9A-Z]?$", error="must be a masked number (first and last character)"))
    legacy_ref = fields.String(validate=validate.Regexp(r"^l1_[0-9a-f]{64}$"))
    unmigrated = fields.Boolean()
    # before issue 19 (read only, converted on load)
    id_number_masked = fields.String(load_only=True)
    id_number_hash = fields.String(load_only=True)

    @validates_schema
    def _one_form(self, data, **kwargs):
        protected = {"person_id", "id_masked", "legacy_ref", "unmigrated"} & set(data)
        legacy = {"id_number_masked", "id_number_hash"} & set(data)
        if "id_number" in data:
            if protected or legacy:
                raise ValidationError("send id_number without person_id or id_masked",
                                      "id_number")
            try:
                identity.document(data.get("document_type", "resident_id_card"),
                                  data["id_number"], data.get("issuing_country"))
            except identity.DocumentProblem as exc:
                raise ValidationError(exc.problem, exc.field) from None
        elif legacy:
            if len(legacy) != 2:
                raise ValidationError("id_number_masked and id_number_hash go together",
                                      "id_number_hash")
        elif "id_masked" not in data:
            raise ValidationError("an identity document number is required", "id_number")
        elif not data.get("person_id") and not data.get("unmigrated"):
            raise ValidationError("a protected document needs its person id", "person_id")

    @post_load
    def _protect(self, data, **kwargs):
        raw = data.pop("id_number", None)
        if raw is not None:
            doc = identity.document(data.pop("document_type", "resident_id_card"), raw,
                                    data.pop("issuing_country", None))
            data.update(identity.protect(doc))
        elif "id_number_masked" in data:
            data["id_masked"] = identity.remask(data.pop("id_number_masked"))
            data.pop("id_number_hash", None)
            data.update(person_id=None, unmigrated=True)
        return data


class PersonSchema(LegalRepresentativeSchema):
    """One person responsible named on the record: a role, and a document protected exactly
    as the legal representative's (``person_id`` and ``id_masked``, never the number)."""

    role = fields.String(required=True, validate=validate.OneOf(PERSON_ROLES))
    personal_responsibility = fields.Boolean(load_default=False, dump_default=False)


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
    persons = fields.List(fields.Nested(PersonSchema), validate=validate.Length(
        max=MAX_PERSONS, error=f"at most {MAX_PERSONS} persons on one record"))
    place_code = fields.String(validate=validate.Regexp(
        r"^[1-9]\d{5}$", error="must be a GB/T 2260 region code: 6 digits, not starting with 0"))
    procedure = fields.String(load_default="ordinary", validate=validate.OneOf(PROCEDURES))
    published_at = Instant()

    @post_load
    def _v1_defaults(self, data, **kwargs):
        """A record before v2 happened, as far as we know, where the entity is registered."""
        if "place_code" not in data and data.get("uscc"):
            data["place_code"] = registration_region(data["uscc"])
        return data

    @validates_schema
    def _no_penalty_alone(self, data, **kwargs):
        types = [p.get("type") for p in data.get("penalties") or ()]
        if NO_PENALTY in types and len(types) > 1:
            raise ValidationError(
                "a decision not to penalise (none: 不予行政处罚, 行政处罚法 第三十三条) stands "
                "alone: no other penalty on the same record", "penalties")
        if NO_PENALTY in types and (data.get("listing") or {}).get("list") == "serious_violation":
            raise ValidationError(
                "a record with penalty none cannot list as serious_violation: SAMR Order 44 "
                "art. 2 lists after a 较重行政处罚", "listing")

    @validates_schema
    def _id_length(self, data, **kwargs):
        _bounded_id(data)

    @validates_schema
    def _dates(self, data, **kwargs):
        occurred, decided = data.get("occurred_at"), data.get("decided_at")
        if occurred and decided and decided < occurred:
            raise ValidationError("must not be before occurred_at", "decided_at")
        if decided and decided > datetime.now(timezone.utc):
            raise ValidationError("must not be in the future", "decided_at")
        published = data.get("published_at")
        if published and decided and published < decided:
            raise ValidationError("must not be before decided_at", "published_at")
        if published and published > datetime.now(timezone.utc):
            raise ValidationError("must not be in the future", "published_at")


class AmendmentSchema(StrictSchema):
    """An agency's correction: the full corrected record plus why it changed."""

    violation = fields.Nested(ViolationSchema, required=True)
    reason = fields.String(required=True, validate=validate.Length(min=2, max=500))


class RevocationSchema(StrictSchema):
    agency_code = fields.String(required=True, validate=validate.Regexp(AGENCY_CODE))
    document_number = fields.String(required=True, validate=validate.Length(min=1, max=64))
    reason = fields.String(required=True, validate=validate.Length(min=2, max=500))
    revoked_at = Instant(load_default=None)

    @validates_schema
    def _id_length(self, data, **kwargs):
        _bounded_id(data)


# ``<agency_code>/<document_number>`` is the record's id and the stem of every event id and
# document id downstream (``<id>@v<n>``, ``<id>#<measure>~<n>:imposed``, ``<id>:supervision``);
# bounded here so that those stay within ``contracts.events.EVENT_ID_MAX``: a longer one was
# "recorded" by intake and then dead-lettered by every consumer.
VIOLATION_ID_MAX = 64
ID_TOO_LONG = (f"agency_code and document_number together make the record's id "
               f"'<agency_code>/<document_number>': at most {VIOLATION_ID_MAX} characters")


def _bounded_id(data) -> None:
    agency, document = data.get("agency_code"), data.get("document_number")
    if agency and document and len(violation_key(agency, document)) > VIOLATION_ID_MAX:
        raise ValidationError(f"{ID_TOO_LONG} (got {len(violation_key(agency, document))})",
                              "document_number")


def registration_region(uscc: str) -> str:
    """The GB/T 2260 code of the entity's registration: positions 3-8 of its USCC."""
    return uscc[2:8]


# What a v1 record (or v1 input) means by leaving a v2 field out. ``fingerprint`` (intake)
# drops a field equal to its default, so the same record sent before and after v2 is one record.
def v1_defaults(record: dict) -> dict:
    return {"place_code": registration_region(record["uscc"]), "procedure": "ordinary"}


def violation_key(agency_code: str, document_number: str) -> str:
    """The natural key of a record, used as its document id everywhere downstream."""
    return f"{agency_code}/{document_number}"
