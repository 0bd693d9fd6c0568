"""The gate-keeping audit trail: every answer is stored before it is returned.

Group commit into pages: concurrent lookups each take a slot in the open page and wait; one
insert stores the whole page as one document (``{_id: page, answers: [...]}``), and one ledger
entry (``AnswersGiven``) covers it with a digest per answer. A store charges per document
(FerretDB 1.x serialises and scans per document), so a page of 64 answers costs about what one
answer used to. An answer id is ``<page>-<slot>``: ``find_answer`` reads it back with one
lookup by ``_id``. An answer id a gate-keeper holds always has its record: the request waits
for its page, and a page that cannot be stored fails every request in it (500, no answer id
handed out). What is stored is the answer's substance (per sector: may pass, and the ids of
the restrictions that said no), from which the full answer can be shown again.

Each answer's record is stored as its sorted-key JSON, zlib-compressed, next to its id and
who asked (``{answer_id, asked_by, record_z}``); the ledger's digest is the SHA-256 of exactly
those JSON bytes, so a stored record can be checked against the ledger byte for byte. FerretDB
charges per field: the substance of a batch of 1,000 codes as nested documents took 390 ms to
insert and 750 ms to read back; compressed (19 KB instead of 480 KB) 4 ms and 12 ms.
"""
from __future__ import annotations

import hashlib
import uuid
from functools import lru_cache

import eventlet
from eventlet.event import Event
from nameko.extensions import DependencyProvider

from shared.audit_pages import (answer_digest, find_answer, read_stored,  # noqa: F401
                                record_bytes, stored_digest, stored_form, verify_answers)
from shared.ledger import LedgerHub
from shared.mongo import connect, database_name

MAX_BATCH = 500


def summary(answer: dict) -> dict:
    sectors = answer["sectors"]
    if any(entry["measures"] for entry in sectors.values()):
        brief = {sector: {"may_pass": entry["may_pass"],
                          "restriction_ids": [m["restriction_id"] for m in entry["measures"]]}
                 for sector, entry in sectors.items()}
    else:
        brief = _clear_brief(tuple(sectors))
    return {"uscc": answer["uscc"], "as_of": answer["as_of"], "record": answer["record"],
            "may_pass": answer["may_pass"], "sectors": brief}


@lru_cache(maxsize=64)
def _clear_brief(sectors: tuple[str, ...]) -> dict:
    """Shared, read-only: the summary of sectors without a measure (most codes of a batch)."""
    return {sector: {"may_pass": True, "restriction_ids": []} for sector in sectors}


class _Page:
    def __init__(self):
        self.id = uuid.uuid4().hex
        self.answers: list[dict] = []
        self.done = Event()


class AuditLog:
    def __init__(self, collection, ledger=None):
        self.collection = collection
        self.ledger = ledger
        self.pages: list[_Page] = []  # waiting to be stored, oldest first; the last is open
        self.flusher = None

    def write(self, doc: dict) -> str:
        """Store ``doc`` (an answer's record) in the open page; returns its answer id once the
        page is stored. Raises what the store raised if it could not be."""
        if not self.pages or len(self.pages[-1].answers) >= MAX_BATCH:
            self.pages.append(_Page())
        page = self.pages[-1]
        answer_id = f"{page.id}-{len(page.answers)}"
        page.answers.append({"answer_id": answer_id, **doc})
        if self.flusher is None:
            self.flusher = eventlet.spawn(self._flush)
        page.done.wait()
        return answer_id

    def _flush(self) -> None:
        try:
            while self.pages:
                eventlet.sleep(0)  # let the requests already running join the page
                self._store(self.pages.pop(0))
        finally:
            self.flusher = None

    def _store(self, page: _Page) -> None:
        raws = [record_bytes(a) for a in page.answers]
        try:
            self.collection.insert_one({"_id": page.id, "answers": [
                stored_form(a, raw) for a, raw in zip(page.answers, raws)]})
        except Exception as exc:  # noqa: BLE001 - every waiter hears why
            page.done.send_exception(exc)
            return
        if self.ledger is not None:
            self.ledger.append("AnswersGiven", {"page": page.id, "answers": [
                {"answer_id": a["answer_id"], "asked_by": a.get("asked_by"),
                 "uscc": (a.get("answer") or {}).get("uscc"),
                 "digest": hashlib.sha256(raw).hexdigest()}
                for a, raw in zip(page.answers, raws)]})
        page.done.send(None)


class _LazyLedger:
    def __init__(self, hub):
        self.hub = hub

    def append(self, kind, data):
        self.hub.ledger.append(kind, data)


class Audit(DependencyProvider):
    """One audit log per container (its own client: it outlives single workers); every
    answer is also a decision in the service's ledger."""

    ledger_hub = LedgerHub()

    def setup(self):
        config = self.container.config
        self.client = connect(config.get("MONGO_URI"))
        self.log = AuditLog(self.client[database_name(config, "restrictions")].audit,
                            _LazyLedger(self.ledger_hub))

    def stop(self):
        self.client.close()

    kill = stop

    def get_dependency(self, worker_ctx):
        return self.log
