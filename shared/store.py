"""Storage patterns that work on MongoDB and FerretDB alike.

Unique-key inserts are atomic on both; updates are atomic only on MongoDB, so updates here run
under ``shared.locks.doc_lock``.
"""
from __future__ import annotations

from pymongo.errors import DuplicateKeyError

from shared.locks import doc_lock


def apply_versioned(collection, doc_id: str, version: int, fields: dict) -> bool:
    """Store ``fields`` for ``doc_id`` only if ``version`` is newer than the stored one.

    This is how consumers stay idempotent and order-tolerant: a redelivered or stale event
    (same or older version) changes nothing. Returns True when the document changed.
    The first version is a plain insert (an upsert costs ~25x more on FerretDB).
    """
    try:
        collection.insert_one({"_id": doc_id, **fields, "version": version})
        return True
    except DuplicateKeyError:
        pass
    with doc_lock(collection, doc_id):
        result = collection.update_one(
            {"_id": doc_id, "version": {"$lt": version}},
            {"$set": {**fields, "version": version}},
        )
    return result.modified_count == 1


def insert_once(collection, doc_id: str, fields: dict) -> bool:
    """Create ``doc_id`` with ``fields`` unless it exists. True when this call created it.

    A plain insert: the unique ``_id`` makes it atomic on every store, and unlike an upsert
    it needs no look-up (which scans the collection on FerretDB 1.x). A duplicate key error
    means "already there", the same outcome as a redelivery or a lost race.
    """
    try:
        collection.insert_one({"_id": doc_id, **fields})
    except DuplicateKeyError:
        return False
    return True
