"""Transactional outbox without transactions: a staged intent per write.

FerretDB 1.x has no multi-document transactions, and its updates and look-ups scan the whole
collection (its SQLite indexes are never used), so the outbox is a separate, small collection
``outbox`` in the service's database, and state documents are written with plain inserts where
possible:

1. ``stage``: insert ``{events, ref}`` into ``outbox`` (the commit point of the intent);
2. the writer stores the state change, recording the events' ids in the state document's
   ``event_ids`` in the same single-document write;
3. ``release``: publish the events (publisher confirms) and delete the staged entry.

If the process dies after 1, the relay (``sweep``, a nameko timer) finds the entry: when the
state document carries the event ids, the change happened and the events are published; when
it does not after ``abandon_after`` seconds, the change never happened and the entry is dropped.
Consumers are idempotent, so an event published twice does no harm.
"""
from __future__ import annotations

import uuid
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

from shared.logging import get_logger

_log = get_logger(component="outbox")


class Staged:
    def __init__(self, entry_id: str, events: list[dict]):
        self.entry_id = entry_id
        self.events = events
        self.cancelled = False

    def cancel(self) -> None:
        """The write changed nothing: publish nothing."""
        self.cancelled = True


class Outbox:
    def __init__(self, db, dispatch):
        self.db = db
        self.collection = db.outbox
        self.dispatch = dispatch

    @contextmanager
    def staged(self, ref_collection, ref_id, events: list[dict]):
        """Stage ``events`` around a write to ``ref_collection[ref_id]``; publish on success.

        The write must put ``event_ids(events)`` into the document's ``event_ids``.
        """
        entry_id = uuid.uuid4().hex
        self.collection.insert_one({
            "_id": entry_id, "events": events, "ref": [ref_collection.name, ref_id],
            "created_at": datetime.now(timezone.utc)})
        stage = Staged(entry_id, events)
        try:
            yield stage
        except BaseException:
            self.collection.delete_one({"_id": entry_id})
            raise
        if stage.cancelled:
            self.collection.delete_one({"_id": entry_id})
        else:
            self.release(entry_id, events)

    def release(self, entry_id: str, events: list[dict]) -> None:
        for event in events:
            self.dispatch(event["type"], event)
        self.collection.delete_one({"_id": entry_id})

    def sweep(self, older_than: float = 2.0, abandon_after: float = 60.0, limit: int = 500) -> int:
        """Finish what a crash interrupted. Returns how many entries were published."""
        now = datetime.now(timezone.utc)
        published = 0
        due = self.collection.find({"created_at": {"$lt": now - timedelta(seconds=older_than)}})
        for entry in list(due.limit(limit)):
            ref_name, ref_id = entry["ref"]
            ref = self.db[ref_name].find_one({"_id": ref_id}, {"event_ids": 1}) or {}
            if set(event_ids(entry["events"])) <= set(ref.get("event_ids") or ()):
                self.release(entry["_id"], entry["events"])
                published += 1
            elif _aware(entry["created_at"]) < now - timedelta(seconds=abandon_after):
                _log.warning("dropping staged events whose write never happened",
                             ref=ref_name, events=event_ids(entry["events"]))
                self.collection.delete_one({"_id": entry["_id"]})
        return published


def event_ids(events: list[dict]) -> list[str]:
    return [event["event_id"] for event in events]


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
