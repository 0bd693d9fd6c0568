"""The merchants' platform memberships, as a read model of the registry's.

A notice goes to the platforms the merchant sells on. Asking the registry per restriction
event (an RPC: a request and a reply through the broker, a worker on each side) was a third of
all broker deliveries per violation (bench/b70_cost.py). Instead the registry publishes
``MembershipsChanged`` (the entity's whole list with a version) and this service keeps
``memberships`` (one document per entity that has any: ``{_id: uscc, version, memberships}``),
newest version wins.

- Order: the event is routed by the entity's code, like the restriction events, so it reaches
  the same notifications shard; a membership set before a violation is applied before its
  restrictions' notices.
- Bootstrap and reconciliation: ``reconcile`` pages through the registry's
  ``memberships_page`` RPC and writes what differs; at start and every
  ``MEMBERSHIPS_RECONCILE_SECONDS`` (default 600: covers an event lost or dead-lettered, and
  the memberships set before this read model existed). Until the first pass completed
  (``meta`` document ``memberships``), an entity without a document is asked for by RPC as
  before: its absence may only mean "not loaded yet".
"""
from __future__ import annotations

import os
import time
from datetime import datetime, timezone

from nameko.extensions import DependencyProvider

from shared.mongo import Mongo
from shared.store import apply_versioned

RECONCILE_SECONDS = float(os.environ.get("MEMBERSHIPS_RECONCILE_SECONDS", "600"))
PAGE = 1000


class MembershipsModel:
    """One per container (the flag and the clock are shared by its workers)."""

    def __init__(self, db, reconcile_seconds: float = RECONCILE_SECONDS):
        self.db = db
        self.reconcile_seconds = reconcile_seconds
        self.bootstrapped: bool | None = None  # read from ``meta`` on first use
        self.reconciled_at = 0.0  # monotonic
        self.running = False

    def is_bootstrapped(self) -> bool:
        if not self.bootstrapped:
            self.bootstrapped = self.db.meta.find_one({"_id": "memberships"}) is not None
        return self.bootstrapped

    def of(self, code: str, ask_registry) -> dict[str, str] | None:
        """platform id -> shop id for ``code``; ``ask_registry(code)`` (the RPC's answer)
        only while the read model is not bootstrapped."""
        doc = self.db.memberships.find_one({"_id": code})
        if doc is not None:
            return {m["platform_id"]: m["shop_id"] for m in doc["memberships"]}
        if self.is_bootstrapped():
            return {}
        return {m["platform_id"]: m["shop_id"] for m in ask_registry(code)}

    def apply(self, code: str, version: int, memberships: list[dict]) -> bool:
        """Keep the newest version; True when the stored list changed."""
        return apply_versioned(self.db.memberships, code, version, {"memberships": [
            {"platform_id": m["platform_id"], "shop_id": m["shop_id"]} for m in memberships]})

    def due(self) -> bool:
        return not self.running and (
            not self.is_bootstrapped()
            or time.monotonic() - self.reconciled_at >= self.reconcile_seconds)

    def reconcile(self, fetch_page) -> int:
        """One pass over the registry's pages (``fetch_page(after, limit)``); writes only what
        differs from what is stored. Returns how many entities were written."""
        self.running = True
        try:
            written, after = 0, ""
            while after is not None:
                page = fetch_page(after, PAGE)
                entities = page["entities"]
                stored = {d["_id"]: d for d in self.db.memberships.find(
                    {"_id": {"$in": [e["uscc"] for e in entities]}})} if entities else {}
                for entity in entities:
                    have = stored.get(entity["uscc"])
                    if have is not None and (have.get("version", 0) >= entity["version"]):
                        continue
                    written += self.apply(entity["uscc"], entity["version"],
                                          entity["memberships"])
                after = page["next"]
            if not self.is_bootstrapped():
                self.db.meta.update_one({"_id": "memberships"}, {"$set": {
                    "bootstrapped_at": datetime.now(timezone.utc)}}, upsert=True)
                self.bootstrapped = True
            self.reconciled_at = time.monotonic()
            return written
        finally:
            self.running = False


class Memberships(DependencyProvider):
    def setup(self):
        self.model = None

    def get_dependency(self, worker_ctx):
        if self.model is None:
            for provider in self.container.dependencies:
                if isinstance(provider, Mongo):
                    self.model = MembershipsModel(provider.db, float(self.container.config.get(
                        "MEMBERSHIPS_RECONCILE_SECONDS", RECONCILE_SECONDS)))
                    break
        return self.model
