"""Transactional outbox without transactions: a staged intent per write.

FerretDB 1.x has no multi-document transactions, and its updates and look-ups scan the whole
collection (its SQLite indexes are never used), so the outbox is a separate, small collection
``outbox`` in the service's database, and state documents are written with plain inserts where
possible:

1. ``stage``: insert ``{events, ref}`` into ``outbox`` (the commit point of the intent);
2. the writer stores the state change, recording the events' ids in the state document's
   ``event_ids`` in the same single-document write;
3. ``release``: publish the events (publisher confirms) and delete the staged entry.

If the store does not answer during 2 (``ConnectionFailure``: the write may have been applied
with only its reply lost), the entry is kept for the relay; an ``insert_new`` that finds the
document already there with these very event ids publishes them again (the redelivery of a
command whose first attempt was applied heals itself). If the process dies after 1, the relay (``sweep``, a nameko timer) finds the entry: when the
state document carries the event ids, the change happened and the events are published; when
it does not after ``abandon_after`` seconds, the change never happened and the entry is dropped.
Consumers are idempotent, so an event published twice does no harm.
"""
from __future__ import annotations

import uuid
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

from pymongo.errors import BulkWriteError, ConnectionFailure

from shared.logging import get_logger

_log = get_logger(component="outbox")
PROCESS = uuid.uuid4().hex  # who staged an entry (``owner``)
_IN_FLIGHT: set[str] = set()  # entries this process staged and is still releasing
FOREIGN_AFTER = 10.0  # seconds before the relay takes over another process's entry


class Staged:
    def __init__(self, entry_id: str, items: list[dict]):
        self.entry_id = entry_id
        self.items = items
        self.dropped: set[int] = set()

    def cancel(self, index: int | None = None) -> None:
        """The write changed nothing (for item ``index``, or for all): publish nothing."""
        self.dropped |= set(range(len(self.items))) if index is None else {index}

    def events(self) -> list[dict]:
        """The events of the items not cancelled, each once (an event that several
        documents carry, ``insert_new_shared``, is in each of their items)."""
        return _once([event for i, item in enumerate(self.items) if i not in self.dropped
                      for event in item["events"]])


class Outbox:
    def __init__(self, db, dispatch):
        self.db = db
        self.collection = db.outbox
        self.dispatch = dispatch

    def staged(self, ref_collection, ref_id, events: list[dict]):
        """Stage ``events`` around a write to ``ref_collection[ref_id]``; publish on success.

        The write must put ``event_ids(events)`` into the document's ``event_ids``.
        """
        return self.staged_many([(ref_collection, ref_id, events)])

    @contextmanager
    def staged_many(self, writes: list[tuple]):
        """One staged entry for several documents' writes ``[(collection, id, events)]``
        (a batch written with one ``insert_many``); ``cancel(i)`` the ones that did not
        happen."""
        entry_id = uuid.uuid4().hex
        items = [{"ref": [collection.name, ref_id], "events": events}
                 for collection, ref_id, events in writes]
        self.collection.insert_one({"_id": entry_id, "items": items, "owner": PROCESS,
                                    "created_at": datetime.now(timezone.utc)})
        stage = Staged(entry_id, items)
        # While this writer is at work (its write, then its publishes: a batch of 100
        # violations takes seconds to publish with confirms) the relay of this process leaves
        # the entry alone; it used to publish the whole batch a second time.
        _IN_FLIGHT.add(entry_id)
        try:
            try:
                yield stage
            except ConnectionFailure:
                # The store did not answer: the write may have been applied and only its
                # reply lost. Keep the entry: the relay publishes its events once it sees their
                # ids in the document, or drops it after ``abandon_after`` if the write never
                # happened. (Deleting it here lost the event for good: the redelivery found
                # the document and answered "duplicate" with nothing to publish.)
                raise
            except BaseException:
                self.collection.delete_one({"_id": entry_id})
                raise
            self.release(entry_id, stage.events())
        finally:
            _IN_FLIGHT.discard(entry_id)

    def insert_new(self, collection, docs: list[dict], events: list[list[dict]]) -> set[int]:
        """Insert ``docs`` (each carrying its events' ids) with one batch write and one staged
        entry; ``events[i]`` are published if ``docs[i]`` was new, or if the document already
        there carries those very event ids (the same write, applied before with its reply or
        its publication lost: publishing again is what makes a redelivery heal it; consumers
        are idempotent). Returns the indexes of the documents whose ``_id`` existed already."""
        with self.staged_many([(collection, doc["_id"], doc_events)
                               for doc, doc_events in zip(docs, events)]) as stage:
            existing = _insert_unordered(collection, docs)
            if existing:
                taken = [docs[i]["_id"] for i in existing]
                carried = {doc["_id"]: set(doc.get("event_ids") or ())
                           for doc in collection.find({"_id": {"$in": taken}},
                                                      {"event_ids": 1})}
                for index in existing:
                    if not set(event_ids(events[index])) <= carried.get(docs[index]["_id"],
                                                                       set()):
                        stage.cancel(index)
        return existing

    def insert_new_shared(self, collection, docs: list[dict], event: dict) -> set[int]:
        """Insert ``docs`` (each carrying ``event``'s id) with one batch write (unordered) and
        one staged entry for the one event they share (one decision's restrictions).

        The outcome per document of a partial failure: a duplicate key is "already there";
        any other error raises (the handler is retried: the documents inserted carry the
        event id, so the next attempt finds them there and publishes it). The event is
        published if any document is new, or if one already there carries its id (the same
        write applied before, its publication lost); when every document existed under other
        events, nothing is published. Returns the indexes of the documents that existed."""
        with self.staged_many([(collection, doc["_id"], [event]) for doc in docs]) as stage:
            existing = _insert_unordered(collection, docs)
            if len(existing) == len(docs) and not any(
                    event["event_id"] in (doc.get("event_ids") or ())
                    for doc in collection.find({"_id": {"$in": [d["_id"] for d in docs]}},
                                               {"event_ids": 1})):
                stage.cancel()
        return existing

    def release(self, entry_id: str, events: list[dict], dispatch=None) -> None:
        for event in events:
            (dispatch or self.dispatch)(event["type"], event)
        self.collection.delete_one({"_id": entry_id})

    def sweep(self, older_than: float = 2.0, abandon_after: float = 60.0, limit: int = 500,
              others_after: float = FOREIGN_AFTER) -> int:
        """Finish what a crash interrupted. Returns how many events were published.

        Entries this process is still releasing are skipped; another process's entries are
        taken once ``others_after`` old (that process may be alive and publishing)."""
        now = datetime.now(timezone.utc)
        published = 0
        busy = set(_IN_FLIGHT)  # before the query: released meanwhile is still not ours
        due = self.collection.find({"created_at": {"$lt": now - timedelta(seconds=older_than)}})
        foreign_before = now - timedelta(seconds=max(older_than, others_after))
        for entry in list(due.limit(limit)):
            if entry["_id"] in busy or entry["_id"] in _IN_FLIGHT or (
                    entry.get("owner") != PROCESS
                    and _aware(entry["created_at"]) >= foreign_before):
                continue
            happened, unknown = [], 0
            for item in entry["items"]:
                ref_name, ref_id = item["ref"]
                ref = self.db[ref_name].find_one({"_id": ref_id}, {"event_ids": 1}) or {}
                if set(event_ids(item["events"])) <= set(ref.get("event_ids") or ()):
                    happened.extend(item["events"])
                else:
                    unknown += 1
            abandoned = _aware(entry["created_at"]) < now - timedelta(seconds=abandon_after)
            if unknown and not abandoned:
                continue  # the writer may still be at work; look again later
            if unknown:
                _log.warning("dropping staged events whose write never happened",
                             entry=entry["_id"], items=unknown)
            happened = _once(happened)
            if happened and self.collection.find_one({"_id": entry["_id"]}, {"_id": 1}) is None:
                continue  # its writer (or another relay) finished it while this one looked
            # published as relayed (``Dispatcher``): the write may be another process's
            self.release(entry["_id"], happened, getattr(self.dispatch, "relay", None))
            published += len(happened)
        return published


def _once(events: list[dict]) -> list[dict]:
    seen: set = set()
    return [e for e in events if not (e["event_id"] in seen or seen.add(e["event_id"]))]


def event_ids(events: list[dict]) -> list[str]:
    return [event["event_id"] for event in events]


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _insert_unordered(collection, docs: list[dict]) -> set[int]:
    """One unordered batch insert: the indexes of the documents whose ``_id`` existed already
    (duplicate key); any other write error raises."""
    try:
        collection.insert_many(docs, ordered=False)
    except BulkWriteError as exc:
        existing = set()
        for error in exc.details.get("writeErrors", []):
            if error.get("code") != 11000:
                raise
            existing.add(error["index"])
        return existing
    return set()
