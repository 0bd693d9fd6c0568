"""Natural persons: identity documents validated per type, one opaque person id, one mask.

A person (a legal representative, later an operator or a responsible person) is referred to
everywhere by a **person id**: ``p1_`` + HMAC-SHA256, keyed by a secret of at least 32 random
bytes (``LIANCHEN_PII_KEY``, hex or base64), over the document's namespace and number. The same
document gives the same id in every service; without the key the id reveals nothing and cannot
be brute-forced from the mask.

Who holds the key: only the processes that receive identity documents, i.e. the two intakes
(violations: AMQP, HTTP, bulk import; registry: a regulator's ``PUT`` of an entity). They declare
``IdentityKey``, which loads the key at start and refuses to start without it (unless
``LIANCHEN_DEV=1``, set only by ``make run``/``infra/local/services.sh`` and the tests). Every
other service, every event and every store carries the person id and the mask only.

The mask (``mask``) keeps the first and the last character: it reveals neither the birth date
nor the region of a resident identity number (characters 1-6 and 7-14).

Validation per document type (sources named in ``docs/personal-data.md``):

- ``resident_id_card`` (居民身份证): python-stdnum's ``cn.ric`` (length, GB 11643 MOD 11-2
  check character, birth date, region code valid in the birth year); a birth date in the
  future is refused too.
- ``hk_macau_residence_permit`` / ``taiwan_residence_permit`` (港澳/台湾居民居住证): 18 digits
  with address code 810000 (Hong Kong), 820000 (Macau) or 830000 (Taiwan), birth date, the
  same check character.
- ``foreign_permanent_resident_card`` (外国人永久居留身份证): the 2023 format (18 characters,
  first ``9``, MOD 11-2 check character like GB 11643) or the 2017 format (3 Latin letters +
  12 digits; no check rule could be verified, so the shape only).
- ``hk_macau_travel_permit`` (港澳居民来往内地通行证): ``H``/``M`` + an 8-digit lifelong number
  (+ 2 digits counting renewals, which the person id ignores); ``taiwan_travel_permit``
  (台湾居民来往大陆通行证): 8 digits, shape only (no public rule found).
- ``passport``: the issuing country (ISO 3166-1 alpha-3) is required; the number is the ICAO
  9303 machine-readable document number (up to 9 of ``A-Z0-9``); for ``CHN`` (ordinary
  passports), ``G``/``E`` + 8 digits or ``E`` + a letter other than I and O + 7 digits.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from nameko.extensions import DependencyProvider
from stdnum.cn import ric
from stdnum.exceptions import InvalidChecksum, InvalidComponent, InvalidFormat, InvalidLength

KEY_ENV = "LIANCHEN_PII_KEY"
DEV_ENV = "LIANCHEN_DEV"
MIN_KEY_BYTES = 32
PERSON_ID = r"^p1_[0-9a-f]{64}$"
# Development only (LIANCHEN_DEV=1 and no key set): a published key protects nothing.
_DEV_KEY = hashlib.sha256(b"lianchen development identity key - never in production").digest()
# The keys the old code used (issue 19): needed to recognise a resent number as the one an
# unmigrated record was hashed from. Both are published; they protect nothing.
LEGACY_PEPPER_ENV = "LIANCHEN_PII_PEPPER"
_LEGACY_PEPPER_DEFAULT = "lianchen-development-pepper"

DOCUMENT_TYPES = (
    "resident_id_card",
    "hk_macau_residence_permit",
    "taiwan_residence_permit",
    "foreign_permanent_resident_card",
    "hk_macau_travel_permit",
    "taiwan_travel_permit",
    "passport",
)
# Documents numbered in one space (公民身份号码 for residents and for residence-permit holders)
# share a namespace, so a mislabelled type still yields the same person id.
_NAMESPACE = {"resident_id_card": "gmsfhm", "hk_macau_residence_permit": "gmsfhm",
              "taiwan_residence_permit": "gmsfhm"}
_CHINA_TZ = timezone(timedelta(hours=8))
_ALPHA3 = re.compile(r"^[A-Z]{3}$")
# Ordinary passports of the PRC: 1 letter + 8 digits, ``G`` before the 2012 e-passport, ``E``
# after; then ``E`` + a letter (A-Z without I and O) + 7 digits (Guangzhou PSB exit-entry
# answer "请问中国护照号码按照什么规则编制?", 2024-02-19).
_PASSPORT = {"CHN": re.compile(r"^(?:[EG]\d{8}|E[A-HJ-NP-Z]\d{7})$")}
_ICAO_NUMBER = re.compile(r"^[0-9A-Z]{5,9}$")


class DocumentProblem(ValueError):
    """An identity document that does not validate: ``field`` names the field at fault."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class IdentityKeyMissing(RuntimeError):
    pass


@dataclass(frozen=True)
class Document:
    """A validated identity document (never stored, published or logged: see ``protect``)."""

    document_type: str
    number: str
    issuing_country: str | None = None

    def __repr__(self) -> str:  # a traceback or a debug print never shows the number
        return f"Document({self.document_type}, {mask(self.number)})"

    __str__ = __repr__


# -- validation ----------------------------------------------------------------------------
def _mod11_2(number: str) -> bool:
    return number[-1] == ric.calc_check_digit(number)


def _birth_date(number: str, field: str) -> date:
    try:
        born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise DocumentProblem(field, "the birth date in the number (characters 7-14) is not a "
                                     "real date") from None
    if born > datetime.now(_CHINA_TZ).date() or born.year < 1850:
        raise DocumentProblem(field, "the birth date in the number (characters 7-14) is "
                                     "impossible")
    return born


def _eighteen(number: str, field: str) -> None:
    if len(number) != 18 or not number[:17].isdigit() or not (number[17].isdigit()
                                                                or number[17] == "X"):
        raise DocumentProblem(field, "must be 18 characters: 17 digits and a check character")
    if not _mod11_2(number):
        raise DocumentProblem(field, "check character does not match")


def _resident(number: str, field: str) -> None:
    _eighteen(number, field)
    _birth_date(number, field)
    try:
        ric.validate(number)
    except InvalidChecksum:
        raise DocumentProblem(field, "check character does not match") from None
    except (InvalidLength, InvalidFormat):
        raise DocumentProblem(field, "must be 18 characters: 17 digits and a check "
                                     "character") from None
    except InvalidComponent:
        raise DocumentProblem(field, "the region code (characters 1-6) was not valid in the "
                                     "birth year") from None


def _residence_permit(prefixes: tuple[str, ...]):
    def check(number: str, field: str) -> None:
        _eighteen(number, field)
        if number[:6] not in prefixes:
            raise DocumentProblem(field, f"must start with {' or '.join(prefixes)}")
        _birth_date(number, field)
    return check


def _foreign_permanent(number: str, field: str) -> None:
    if len(number) == 18:
        _eighteen(number, field)
        if number[0] != "9":
            raise DocumentProblem(field, "an 18-character card number starts with 9")
    elif not re.fullmatch(r"[A-Z]{3}\d{12}", number):
        raise DocumentProblem(field, "must be 18 characters starting with 9 (2023 card) or 3 "
                                     "letters and 12 digits (2017 card)")


def _shape(pattern: str, text: str):
    compiled = re.compile(pattern)

    def check(number: str, field: str) -> None:
        if not compiled.fullmatch(number):
            raise DocumentProblem(field, text)
    return check


_CHECKS = {
    "resident_id_card": _resident,
    "hk_macau_residence_permit": _residence_permit(("810000", "820000")),
    "taiwan_residence_permit": _residence_permit(("830000",)),
    "foreign_permanent_resident_card": _foreign_permanent,
    "hk_macau_travel_permit": _shape(r"[HM](\d{8}|\d{10})", "must be H or M and 8 or 10 digits"),
    "taiwan_travel_permit": _shape(r"\d{8}", "must be 8 digits"),
}


def document(document_type: str, number, issuing_country=None, *,
             field: str = "id_number") -> Document:
    """The validated document; raises ``DocumentProblem`` naming the field at fault."""
    if document_type not in DOCUMENT_TYPES:
        raise DocumentProblem("document_type", f"must be one of {', '.join(DOCUMENT_TYPES)}")
    if not isinstance(number, str) or not number.strip():
        raise DocumentProblem(field, "a document number is required")
    number = re.sub(r"[\s-]", "", number).upper()
    if len(number) > 32:
        raise DocumentProblem(field, "is longer than any identity document number")
    if document_type == "passport":
        country = issuing_country.upper() if isinstance(issuing_country, str) else None
        if not country or not _ALPHA3.match(country):
            raise DocumentProblem("issuing_country", "a passport needs its issuing country "
                                                     "(ISO 3166-1 alpha-3, e.g. CHN, USA)")
        pattern = _PASSPORT.get(country, _ICAO_NUMBER)
        if not pattern.match(number):
            raise DocumentProblem(field, f"is not a {country} passport number"
                                  if country in _PASSPORT
                                  else "must be 5-9 letters and digits (ICAO 9303)")
        return Document(document_type, number, country)
    if issuing_country not in (None, "", "CHN"):
        raise DocumentProblem("issuing_country", "only passports take an issuing country")
    _CHECKS[document_type](number, field)
    return Document(document_type, number)


# -- the mask ------------------------------------------------------------------------------
def mask(number: str) -> str:
    """First and last character, the rest starred: ``110101199003078031`` -> ``1****************1``.
    Neither the birth date nor the region is shown; the length stays (it tells the type)."""
    if not isinstance(number, str) or not number:
        return ""
    if len(number) <= 4:
        return "*" * len(number)
    return number[0] + "*" * (len(number) - 2) + number[-1]


def remask(masked: str) -> str:
    """An old mask (``110101********123X``, ``110***********123X``) in today's form: the first
    and the last character are the number's own, so no number is needed."""
    return mask(masked) if isinstance(masked, str) else masked


# -- the key and the person id -------------------------------------------------------------
def parse_key(text: str) -> bytes:
    """A key written as hex or base64; at least 32 bytes."""
    text = text.strip()
    raw = None
    if re.fullmatch(r"(?:[0-9a-fA-F]{2})+", text):
        raw = bytes.fromhex(text)
    else:
        try:
            raw = base64.b64decode(text + "=" * (-len(text) % 4),
                                   altchars=b"-_" if ("-" in text or "_" in text) else None,
                                   validate=True)
        except (binascii.Error, ValueError):
            raw = None
    if raw is None:
        raise IdentityKeyMissing(f"{KEY_ENV} must be hex or base64")
    if len(raw) < MIN_KEY_BYTES:
        raise IdentityKeyMissing(f"{KEY_ENV} must hold at least {MIN_KEY_BYTES} random bytes "
                                 f"(it has {len(raw)}); make one with: "
                                 "python -c 'import secrets; print(secrets.token_hex(32))'")
    if raw == _DEV_KEY:
        raise IdentityKeyMissing(f"{KEY_ENV} is the published development key")
    return raw


def load_key(environ=None) -> bytes:
    """The identity key from the environment. Without one: the development key when
    ``LIANCHEN_DEV=1``, else ``IdentityKeyMissing``."""
    environ = os.environ if environ is None else environ
    text = environ.get(KEY_ENV)
    if text:
        return parse_key(text)
    if environ.get(DEV_ENV) == "1":
        return _DEV_KEY
    raise IdentityKeyMissing(
        f"{KEY_ENV} is not set: this service turns identity documents into person ids and "
        f"will not start without the key (development only: {DEV_ENV}=1)")


_key: bytes | None = None


def install(key: bytes) -> None:
    """Set this process's key (``IdentityKey.setup``). Set once; the same value after."""
    global _key
    _key = key


def current_key() -> bytes:
    global _key
    if _key is None:
        _key = load_key()
    return _key


def person_id(doc: Document, key: bytes | None = None) -> str:
    namespace = _NAMESPACE.get(doc.document_type, doc.document_type)
    number = doc.number
    if doc.document_type == "hk_macau_travel_permit":
        # 11 characters: H/M + an 8-digit lifelong number + 2 digits counting renewals (MPS,
        # 港澳居民来往内地通行证号码规则, 2010): the first 9 are the holder's, kept across renewals
        number = number[:9]
    message = f"v1|{namespace}|{doc.issuing_country or ''}|{number}".encode("utf-8")
    return "p1_" + hmac.new(key or current_key(), message, hashlib.sha256).hexdigest()


def protect(doc: Document, key: bytes | None = None) -> dict:
    """What is kept of a document: its type, the person id and the mask (never the number)."""
    out = {"document_type": doc.document_type, "person_id": person_id(doc, key),
           "id_masked": mask(doc.number)}
    if doc.issuing_country:
        out["issuing_country"] = doc.issuing_country
    return out


# -- legacy hashes (before issue 19) -------------------------------------------------------
def legacy_hashes(number: str, environ=None) -> list[str]:
    """The hashes the old code stored for a resident identity number: violations' HMAC under
    the pepper, registry's unkeyed sha256."""
    environ = os.environ if environ is None else environ
    pepper = environ.get(LEGACY_PEPPER_ENV, _LEGACY_PEPPER_DEFAULT).encode()
    number = number.upper()
    return [hmac.new(pepper, number.encode(), hashlib.sha256).hexdigest(),
            hashlib.sha256(("lianchen-id:" + number).encode()).hexdigest()]


def legacy_ref(legacy_hash: str, key: bytes | None = None) -> str:
    """A legacy hash keyed under the identity key: kept instead of the hash (which, under a
    published pepper, can be brute-forced) so a resent number can still be matched."""
    return "l1_" + hmac.new(key or current_key(), legacy_hash.encode(),
                            hashlib.sha256).hexdigest()


class IdentityKey(DependencyProvider):
    """Declared by the services that turn documents into person ids: loads the key at start
    (the container, and so the service, does not start without it) and hands workers the key
    holder's two verbs."""

    def setup(self):
        install(load_key())

    def get_dependency(self, worker_ctx):
        return Keyholder(current_key())


@dataclass(frozen=True)
class Keyholder:
    key: bytes

    def __repr__(self) -> str:
        return "Keyholder(***)"

    def protect(self, doc: Document) -> dict:
        return protect(doc, self.key)

    def legacy_refs(self, number: str) -> list[str]:
        return [legacy_ref(h, self.key) for h in legacy_hashes(number)]


# -- redaction of raw bodies (retry and dead-letter copies) --------------------------------
def redact(value, key: bytes | None = None):
    """A copy of a submitted body with every ``id_number`` replaced: a valid document by its
    protected form (so a replay still records it), an invalid one by its mask (a replay is
    refused again, naming the field). Numbers anywhere else in the text are masked too."""
    from shared.logging import mask_id_numbers  # shared.logging imports this module
    if isinstance(value, dict):
        out = {k: redact(v, key) for k, v in value.items() if k != "id_number"}
        if "id_number" in value:
            try:
                doc = document(value.get("document_type", "resident_id_card"),
                               value["id_number"], value.get("issuing_country"))
            except DocumentProblem:
                out["id_number"] = mask(value["id_number"]) if isinstance(
                    value["id_number"], str) else None
            else:
                for name in ("document_type", "issuing_country"):
                    out.pop(name, None)
                out.update(protect(doc, key))
        return out
    if isinstance(value, list):
        return [redact(item, key) for item in value]
    if isinstance(value, str):
        return mask_id_numbers(value)
    return value


def mask_documents(value):
    """A copy of ``value`` with every ``id_number`` masked and numbers in text masked: for
    places without the key (the importer's rejected-records file, on the agency's side)."""
    from shared.logging import mask_id_numbers
    if isinstance(value, dict):
        return {k: (mask(v) if k == "id_number" and isinstance(v, str) else mask_documents(v))
                for k, v in value.items()}
    if isinstance(value, list):
        return [mask_documents(item) for item in value]
    if isinstance(value, str):
        return mask_id_numbers(value)
    return value


def redact_body(body: bytes, key: bytes | None = None) -> bytes:
    """``redact`` over a JSON body; a body that is not JSON keeps only masked numbers."""
    import json
    from shared.logging import mask_id_numbers
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return mask_id_numbers(body.decode("utf-8", "replace")).encode("utf-8")
    return json.dumps(redact(value, key), ensure_ascii=False).encode("utf-8")
