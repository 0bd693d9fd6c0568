"""Transactional outbox without transactions.

FerretDB 1.x has no multi-document transactions, so the events a state change causes are stored
*inside the same document* (field ``outbox``) by the same single-document update. After the
write, ``flush`` publishes them and pulls them out; if the process dies in between, the
periodic ``sweep`` (a nameko timer) publishes what is still pending. Consumers are idempotent,
so an event published twice does no harm.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from shared.locks import doc_lock

OUTBOX = "outbox"


def push(*events: dict) -> dict:
    """The ``$push`` clause that appends events to a document's outbox."""
    return {OUTBOX: {"$each": list(events)}}


def flush(collection, doc_id, dispatch, events: list[dict] | None = None) -> int:
    """Publish and remove the pending events of one document. Returns how many were sent.

    A writer that has just stored ``events`` passes them, saving a read: on FerretDB 1.x every
    look-up scans the collection (its SQLite indexes are never used), so reads count.
    """
    with doc_lock(collection, doc_id):
        if events is None:
            doc = collection.find_one({"_id": doc_id}, {OUTBOX: 1})
            events = (doc or {}).get(OUTBOX) or []
        for event in events:
            dispatch(event["type"], event)
            # Pull the element exactly as stored: FerretDB 1.x's $pull matches whole values
            # only (a condition like {"event_id": ...} silently matches nothing there).
            collection.update_one({"_id": doc_id}, {"$pull": {OUTBOX: event}})
    return len(events)


def sweep(collection, dispatch, older_than_seconds: float = 2.0, limit: int = 500) -> int:
    """Publish events left pending by a crash between write and flush."""
    cutoff = (datetime.now(timezone.utc) - timedelta(seconds=older_than_seconds)).isoformat()
    sent = 0
    query = {f"{OUTBOX}.0": {"$exists": True}, f"{OUTBOX}.occurred_at": {"$lt": cutoff}}
    for doc in collection.find(query, {"_id": 1}).limit(limit):
        sent += flush(collection, doc["_id"], dispatch)
    return sent
