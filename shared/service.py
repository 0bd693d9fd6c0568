"""Pieces every service has: health endpoint, outbox relay timer, common dependencies."""
from __future__ import annotations

from nameko.events import EventDispatcher

from shared.entrypoints import json_response
from shared.ledger import LedgerHub, digest, event_summary


def health_body(service: str, db) -> dict:
    db.command("ping")
    return {"service": service, "status": "ok"}


class Dispatcher(EventDispatcher):
    """nameko's dispatcher (publisher confirms on), named for what it carries: envelopes.

    Every event published is a decision and is appended to the service's ledger
    (``shared.ledger``) once the broker confirmed it. An event re-published by the outbox
    relay is appended again: the ledger records publications, keyed by event id.
    """

    ledger_hub = LedgerHub()

    def get_dependency(self, worker_ctx):
        dispatch = super().get_dependency(worker_ctx)
        ledger = self.ledger_hub.ledger

        def dispatch_and_log(event_type, event_data):
            dispatch(event_type, event_data)
            ledger.append(event_type, event_summary(event_data)
                          if isinstance(event_data, dict) else {"digest": digest(event_data)})

        return dispatch_and_log


def health(service_name: str, db):
    try:
        return json_response(200, health_body(service_name, db))
    except Exception as exc:  # store down: say so, don't crash
        return json_response(503, {"service": service_name, "status": "degraded",
                                   "error": type(exc).__name__})
