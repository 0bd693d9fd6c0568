"""The public record of an entity at an instant, with personal data masked.

Pure domain code. Only what is inside its publicity window at ``as_of`` appears: penalties
(``Rules.penalty_public``) and listings (``Rules.listing_public``). A record under an open
objection at ``as_of`` is marked ``under_review``. Personal data never leaves unmasked:
resident identity numbers and mobile numbers anywhere in the text, and the names and identity
numbers of natural persons under keys that name them.
"""
from __future__ import annotations

import re
from datetime import datetime

from rules.repair import RecordState, Rules
from shared import identity

_ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])(?:\d{17}[\dXx]|[A-Z]{3}\d{12})(?![0-9A-Za-z])")
_MOBILE = re.compile(r"(?<![0-9A-Za-z])(1[3-9]\d)\d{4}(\d{4})(?![0-9A-Za-z])")
_MASKED = re.compile(r"^[0-9A-Z]?\*+[0-9A-Z]?$")
_PERSON_KEYS = {"legal_representative", "operator", "person", "contact"}
_NAME_KEYS = {"name", "person_name"}
_ID_KEYS = {"id_number", "identity_number", "passport_number"}
# Identifiers of the entity and the decision: public by law, and digit runs in them are not
# phone numbers.
_IDENTIFIER_KEYS = {"uscc", "agency_code", "document_number"}


def mask_text(text: str) -> str:
    text = _ID_NUMBER.sub(lambda m: identity.mask(m.group(0)), text)
    return _MOBILE.sub(r"\1****\2", text)


def mask_name(name: str) -> str:
    return name[0] + "*" * (len(name) - 1) if name else name


def mask(value, person: bool = False):
    """A copy of ``value`` with personal data masked (``person``: inside a natural person's
    object, where ``name`` is a personal name)."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key in _ID_KEYS and isinstance(item, str):
                out[key] = item if _MASKED.match(item) else identity.mask(item)
            elif key in _IDENTIFIER_KEYS and not person:
                out[key] = item
            elif person and key in _NAME_KEYS and isinstance(item, str):
                out[key] = mask_name(item)
            else:
                out[key] = mask(item, person or key in _PERSON_KEYS)
        return out
    if isinstance(value, list):
        return [mask(item, person) for item in value]
    if isinstance(value, str):
        return mask_text(value)
    return value


def _representative(rep: dict | None) -> dict | None:
    """A natural person: the name masked and the identity number in its masked form only
    (the person id is for matching inside the platform, never published)."""
    if not rep:
        return None
    return {"name": mask_name(rep["name"]), "id_number": rep.get("id_masked")}


def public_record(uscc: str, states: list[RecordState], reviews: dict[str, list[tuple]],
                  as_of: datetime, rules: Rules) -> dict:
    """``reviews``: violation id -> ``[(opened_at, decided_at or None)]`` of its objections."""
    penalties, listings, names = [], [], []
    for state in sorted(states, key=lambda s: (s.record["decided_at"], s.violation_id)):
        record = state.record
        under_review = any(opened <= as_of and (decided is None or as_of < decided)
                           for opened, decided in reviews.get(state.violation_id, ()))
        shown = False
        window = rules.penalty_public(state, as_of)
        if window:
            shown = True
            penalties.append({
                "agency_code": record["agency_code"],
                "document_number": record["document_number"],
                "entity_name": record["entity_name"], "category": record["category"],
                "severity": record["severity"],
                "penalties": [{"type": p["type"],
                               "amount": str(p["amount"]) if p.get("amount") is not None else None,
                               "months": p.get("months")} for p in record["penalties"]],
                "legal_basis": dict(record["legal_basis"]),
                "decided_at": record["decided_at"], "published_from": window[0],
                "publication_assumed": rules.periods.publication_assumed(record),
                "published_until": window[1],
                "legal_representative": _representative(record.get("legal_representative")),
                "under_review": under_review})
        listing = rules.listing_public(state, as_of)
        if listing:
            shown = True
            listings.append({
                "list": record["listing"]["list"], "agency_code": record["agency_code"],
                "document_number": record["document_number"], "listed_at": listing[0],
                "listed_until": listing[1], "under_review": under_review})
        if shown:
            names.append(record["entity_name"])
    return mask({"uscc": uscc, "as_of": as_of, "entity_name": names[-1] if names else None,
                 "penalties": penalties, "listings": listings,
                 "rules_version": rules.version})
