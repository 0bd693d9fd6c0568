"""Pieces every service has: health endpoint, outbox relay timer, common dependencies."""
from __future__ import annotations

from nameko.events import EventDispatcher

from shared.entrypoints import json_response


def health_body(service: str, db) -> dict:
    db.command("ping")
    return {"service": service, "status": "ok"}


class Dispatcher(EventDispatcher):
    """nameko's dispatcher (publisher confirms on), named for what it carries: envelopes."""


def health(service_name: str, db):
    try:
        return json_response(200, health_body(service_name, db))
    except Exception as exc:  # store down: say so, don't crash
        return json_response(503, {"service": service_name, "status": "degraded",
                                   "error": type(exc).__name__})
