"""Per-document locks inside one process.

FerretDB 1.x (SQLite backend) applies an update as read, modify, write without a transaction
(FerretDB issue #3040): two concurrent ``update_one`` calls on one document can lose one of
the writes, even ``$inc`` and even a compare-and-set filter (measured here: 28 of 400
concurrent increments survived). Inserts with a unique ``_id`` *are* atomic.

So every read-modify-write of a document goes through ``doc_lock``: within a process,
writers of one document take turns. Each collection is written by exactly one service, and
several instances of a service get disjoint entities (routing by USCC, see
docs/architecture.md), so a process-local lock is enough. On MongoDB the updates are atomic
anyway and the lock costs a dictionary look-up.
"""
from __future__ import annotations

from contextlib import contextmanager

from eventlet.semaphore import Semaphore

_locks: dict[tuple[str, object], list] = {}  # key -> [semaphore, holders+waiters]


@contextmanager
def doc_lock(collection, doc_id):
    key = (collection.full_name, doc_id)
    entry = _locks.get(key)
    if entry is None:
        entry = _locks[key] = [Semaphore(1), 0]
    entry[1] += 1
    try:
        with entry[0]:
            yield
    finally:
        entry[1] -= 1
        if entry[1] == 0:
            _locks.pop(key, None)


def held() -> int:
    """How many documents are locked or awaited right now (for tests and metrics)."""
    return len(_locks)
