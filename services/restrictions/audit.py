"""The gate-keeping audit trail: every answer is stored before it is returned.

Group commit: concurrent lookups queue their records and one ``insert_many`` stores them all;
each request waits for its batch, so an answer id a gate-keeper holds always has its record.
What is stored is the answer's substance (per sector: may pass, and the ids of the
restrictions that said no), from which the full answer can be shown again.
"""
from __future__ import annotations

import eventlet
from eventlet.event import Event
from nameko.extensions import DependencyProvider

from shared.ledger import LedgerHub, digest
from shared.mongo import connect, database_name

MAX_BATCH = 500


def summary(answer: dict) -> dict:
    return {
        "uscc": answer["uscc"], "as_of": answer["as_of"], "record": answer["record"],
        "may_pass": answer["may_pass"],
        "sectors": {sector: {"may_pass": entry["may_pass"],
                             "restriction_ids": [m["restriction_id"] for m in entry["measures"]]}
                    for sector, entry in answer["sectors"].items()},
    }


class AuditLog:
    def __init__(self, collection, ledger=None):
        self.collection = collection
        self.ledger = ledger
        self.pending: list[tuple[dict, Event]] = []
        self.flusher = None

    def write(self, doc: dict) -> None:
        done = Event()
        self.pending.append((doc, done))
        if self.flusher is None:
            self.flusher = eventlet.spawn(self._flush)
        done.wait()  # raises if the batch could not be stored

    def _flush(self) -> None:
        try:
            while self.pending:
                batch, self.pending = self.pending[:MAX_BATCH], self.pending[MAX_BATCH:]
                try:
                    self.collection.insert_many([doc for doc, _ in batch], ordered=False)
                except Exception as exc:  # noqa: BLE001 - every waiter hears why
                    for _, done in batch:
                        done.send_exception(exc)
                    continue
                if self.ledger is not None:
                    for doc, _ in batch:
                        self.ledger.append("AnswerGiven", {
                            "answer_id": doc["_id"], "asked_by": doc.get("asked_by"),
                            "uscc": (doc.get("answer") or {}).get("uscc"),
                            "digest": digest(doc)})
                for _, done in batch:
                    done.send(None)
        finally:
            self.flusher = None


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
