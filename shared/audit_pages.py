"""The stored form of restrictions' gate-keeping answers, and its check against the ledger.

Pure functions over the stored pages (``services/restrictions/audit.py`` writes them): the
service reads answers back with them, and ``lianchen audit`` verifies them without importing
the service. Each answer's record is stored as its sorted-key JSON, zlib-compressed; the
ledger's digest is the SHA-256 of exactly those JSON bytes.
"""
from __future__ import annotations

import hashlib
import zlib

import orjson
from bson import Binary


def record_bytes(record: dict) -> bytes:
    """An answer's record as stored: sorted-key JSON (orjson: the ledger's general ``digest``
    took 27 ms for a batch answer of 1,000 codes)."""
    return orjson.dumps(record, default=str, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)


def answer_digest(record: dict) -> str:
    """SHA-256 of an answer's stored record."""
    return hashlib.sha256(record_bytes(record)).hexdigest()


def stored_form(record: dict, raw: bytes) -> dict:
    return {"answer_id": record["answer_id"], "asked_by": record.get("asked_by"),
            "record_z": Binary(zlib.compress(raw, 1))}


def read_stored(entry: dict) -> dict:
    """The record of a stored answer (pages written before compression hold it as is)."""
    if "record_z" not in entry:
        return entry
    return orjson.loads(zlib.decompress(entry["record_z"]))


def stored_digest(entry: dict) -> str:
    """The digest the ledger holds for a stored answer, computed from what is stored."""
    if "record_z" not in entry:
        return answer_digest(entry)
    return hashlib.sha256(zlib.decompress(entry["record_z"])).hexdigest()


def find_answer(collection, answer_id: str) -> dict | None:
    """The stored record of one answer (``answer_id``, ``asked_by``, ``answer``, ...)."""
    page_id, _, slot = answer_id.rpartition("-")
    if not page_id or not slot.isdigit():
        return None
    page = collection.find_one({"_id": page_id})
    answers = (page or {}).get("answers") or []
    index = int(slot)
    if index >= len(answers) or answers[index].get("answer_id") != answer_id:
        return None
    return read_stored(answers[index])


def verify_answers(db, verdict) -> None:
    """Check every answer the ledger's ``AnswersGiven`` entries name against its stored
    record, byte for byte; add what differs or is missing to ``verdict.problems`` (a
    ``shared.ledger.Verdict``). Pages stored before compression are not comparable (their
    instants were truncated to milliseconds by the store) and are skipped."""
    for entry in db.ledger.find({"kind": "AnswersGiven"}):
        data = entry.get("data") or {}
        page = db.audit.find_one({"_id": data.get("page")})
        if page is None:
            verdict.problems.append(f"answer page {data.get('page')}: gone (deleted)")
            continue
        stored = {a.get("answer_id"): a for a in page.get("answers") or []}
        for given in data.get("answers") or []:
            record = stored.get(given.get("answer_id"))
            if record is None:
                verdict.problems.append(f"answer {given.get('answer_id')}: gone from its page")
            elif "record_z" in record and stored_digest(record) != given.get("digest"):
                verdict.problems.append(f"answer {given.get('answer_id')}: the stored record "
                                        "differs from the ledger (edited)")
