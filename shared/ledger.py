"""The decision ledger: an append-only, hash-chained log that detects edits, insertions and
deletions.

Every event a service publishes (a violation accepted, amended or revoked; a restriction
imposed or lifted; a credit change; a repair decided; a notice delivered...) and every
gate-keeping answer is a decision. Each one is appended to the service's ``ledger`` collection
as an entry of a *chain*: one chain per running process (``<service>.<random id>``), so several
instances never contend for the head of one chain. Entry ``n`` of a chain stores the hash of
entry ``n - 1``; its own hash is SHA-256 over its canonical JSON. ``ledger_heads`` keeps each
chain's last sequence number and hash (written at most once a second, and at stop).

``verify`` walks every chain: a changed entry no longer matches its hash; an inserted or
removed entry breaks the sequence or the link to its predecessor; entries removed from the end
leave the chain shorter than its head. Someone able to rewrite both a chain and its head
consistently defeats any self-contained log: in production, copy the heads elsewhere (a
write-once bucket, another organisation) — the heads are small.

Appends are group-committed (one ``insert_many`` per batch, like the gate-keeping audit) from a
background greenthread: a decision is logged after it is made, not on its critical path; entries
waiting in memory when a process is killed are lost from the ledger (the decisions themselves
are not: they are in the store and the outbox). A batch the store refuses stays queued and is
retried.
"""
from __future__ import annotations

import hashlib
import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone

import eventlet
from nameko.extensions import SharedExtension

from shared.logging import get_logger
from shared.mongo import connect, database_name

GENESIS = "0" * 64
MAX_BATCH = 500
HEAD_INTERVAL = 1.0  # seconds between writes of a chain's head
_log = get_logger(component="ledger")


def canonical(value) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"),
                      default=str)


def entry_hash(entry: dict) -> str:
    body = {k: v for k, v in entry.items() if k != "hash"}
    return hashlib.sha256(canonical(body).encode("utf-8")).hexdigest()


def digest(value) -> str:
    return hashlib.sha256(canonical(value).encode("utf-8")).hexdigest()


def event_summary(event: dict) -> dict:
    """What the ledger keeps of an event: its identity, the subject it is about and a digest
    of the whole envelope (the event itself lives in the consumers' stores)."""
    payload = event.get("payload") or {}
    about = {k: payload[k] for k in ("uscc", "violation_id", "restriction_id", "notice_id",
                                     "application_id", "objection_id")
             if isinstance(payload.get(k), str)}
    restrictions = payload.get("restrictions")  # RestrictionsImposed: one decision's
    if isinstance(restrictions, list):
        about["restriction_ids"] = [r.get("restriction_id") for r in restrictions
                                    if isinstance(r, dict)]
    restriction = payload.get("restriction")
    if isinstance(restriction, dict) and "restriction_id" in restriction:
        about["restriction_id"] = restriction["restriction_id"]
        about["uscc"] = restriction.get("uscc")
    return {"event_id": event.get("event_id"), "correlation_id": event.get("correlation_id"),
            **about, "digest": digest(event)}


class Ledger:
    def __init__(self, db, service: str):
        self.entries = db.ledger
        self.heads = db.ledger_heads
        self.chain = f"{service}.{uuid.uuid4().hex[:12]}"
        self.seq = 0
        self.prev = GENESIS
        self.pending: list[tuple[str, dict, str]] = []
        self.flusher = None
        self.head_written = False
        self.head_at = 0.0  # monotonic time of the last head write
        self.head_timer = None
        self.written_seq = 0

    def append(self, kind: str, data: dict) -> None:
        self.pending.append((kind, data, datetime.now(timezone.utc).isoformat()))
        if self.flusher is None:
            self.flusher = eventlet.spawn(self._flush_loop)

    def flush(self) -> None:
        """Write everything pending now (tests, shutdown)."""
        while self.pending:
            if not self._flush_once():
                break
        if self.head_timer is not None:
            self.head_timer.cancel()
        self._write_head()

    def _flush_loop(self) -> None:
        try:
            failures = 0
            while self.pending:
                if self._flush_once():
                    failures = 0
                else:
                    failures += 1
                    eventlet.sleep(min(5.0, 0.1 * 2 ** failures))
        finally:
            self.flusher = None

    def _flush_once(self) -> bool:
        batch = self.pending[:MAX_BATCH]
        docs, seq, prev = [], self.seq, self.prev
        for kind, data, at in batch:
            seq += 1
            doc = {"_id": f"{self.chain}:{seq:012d}", "chain": self.chain, "seq": seq,
                   "kind": kind, "at": at, "data": data, "prev": prev}
            doc["hash"] = prev = entry_hash(doc)
            docs.append(doc)
        try:
            self.entries.insert_many(docs, ordered=True)
        except Exception as exc:  # noqa: BLE001 - keep the batch, find what landed, retry
            landed = {d["_id"] for d in self.entries.find(
                {"_id": {"$in": [d["_id"] for d in docs]}}, {"_id": 1})}
            kept = [d for d in docs if d["_id"] in landed]
            if len(kept) != len(docs):
                _log.warning("ledger batch not stored; will retry", error=str(exc)[:200],
                             stored=len(kept), pending=len(self.pending))
            if kept and kept == docs[:len(kept)]:
                self._advance(kept, len(kept))
            return False
        self._advance(docs, len(batch))
        return True

    def _advance(self, docs: list[dict], count: int) -> None:
        self.seq, self.prev = docs[-1]["seq"], docs[-1]["hash"]
        del self.pending[:count]
        # The head is an update (on FerretDB 1.x a scan of ledger_heads): at most one per
        # HEAD_INTERVAL, the last one deferred, so a burst of batches costs one head write.
        wait = self.head_at + HEAD_INTERVAL - time.monotonic()
        if wait <= 0:
            self._write_head()
        elif self.head_timer is None:
            self.head_timer = eventlet.spawn_after(wait, self._write_head)

    def _write_head(self) -> None:
        self.head_timer = None
        if self.written_seq == self.seq:
            return
        self.head_at = time.monotonic()
        seq, head = self.seq, {"seq": self.seq, "hash": self.prev, "at": datetime.now(timezone.utc)}
        try:
            if not self.head_written:
                self.heads.insert_one({"_id": self.chain, **head})
                self.head_written = True
            else:
                self.heads.update_one({"_id": self.chain}, {"$set": head})
            self.written_seq = max(self.written_seq, seq)
        except Exception as exc:  # noqa: BLE001 - the chain is intact; the head catches up
            _log.warning("ledger head not updated", error=str(exc)[:200])


class LedgerHub(SharedExtension):
    """One ledger per container: every extension of the container appends to the same chain."""

    client = None
    _ledger = None

    @property
    def ledger(self) -> Ledger:
        """Created on first use (extensions set up in no fixed order)."""
        if self._ledger is None:
            config = self.container.config
            self.client = connect(config.get("MONGO_URI"))
            self._ledger = Ledger(
                self.client[database_name(config, self.container.service_name)],
                self.container.service_name)
        return self._ledger

    def stop(self):
        try:
            if self._ledger is not None:
                self._ledger.flush()
        finally:
            self.kill()

    def kill(self):
        if self._ledger is not None and self._ledger.head_timer is not None:
            self._ledger.head_timer.cancel()  # it would write through the closed client
        if self.client is not None:
            self.client.close()


@dataclass
class Verdict:
    chains: int = 0
    entries: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(db) -> Verdict:
    """Check every chain in ``db.ledger`` against itself and ``db.ledger_heads``."""
    verdict = Verdict()
    chains: dict[str, list[dict]] = {}
    for doc in db.ledger.find({}):
        chains.setdefault(doc.get("chain", "?"), []).append(doc)
    heads = {h["_id"]: h for h in db.ledger_heads.find({})}
    for chain in sorted(set(chains) | set(heads)):
        verdict.chains += 1
        docs = sorted(chains.get(chain, []), key=lambda d: d.get("seq", 0))
        verdict.entries += len(docs)
        prev = GENESIS
        for expected_seq, doc in enumerate(docs, start=1):
            where = f"{chain} entry {doc.get('seq')}"
            if doc.get("seq") != expected_seq:
                verdict.problems.append(f"{chain}: entry {expected_seq} is missing "
                                        f"(found {doc.get('seq')} next): deleted or inserted")
                break
            if doc.get("_id") != f"{chain}:{expected_seq:012d}":
                verdict.problems.append(f"{where}: its id does not match its place")
            if doc.get("prev") != prev:
                verdict.problems.append(f"{where}: does not link to entry {expected_seq - 1}")
                break
            if entry_hash(doc) != doc.get("hash"):
                verdict.problems.append(f"{where}: content does not match its hash (edited)")
                break
            prev = doc["hash"]
        head = heads.get(chain)
        if head is not None and docs and len(docs) < head["seq"]:
            verdict.problems.append(f"{chain}: has {len(docs)} entries but its head says "
                                    f"{head['seq']}: entries deleted from the end")
        elif head is not None and not docs:
            verdict.problems.append(f"{chain}: every entry is gone (head at {head['seq']})")
        elif head is not None and docs and len(docs) >= head["seq"]:
            at_head = docs[head["seq"] - 1]
            if at_head.get("hash") != head["hash"]:
                verdict.problems.append(f"{chain}: entry {head['seq']} differs from its head")
    return verdict
