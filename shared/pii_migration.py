"""Migrating stored identity data from before issue 19 (``lianchen pii migrate``).

Before, violations kept ``{id_number_masked: "110101********123X", id_number_hash: HMAC under
a published pepper}`` and registry ``{id_masked: "350***********1234", id_hash: sha256}``.
Neither hash can be re-keyed without the number, and both can be brute-forced. So:

- every stored copy (any document of any collection of the deployment's databases, the
  ledger excepted) is **re-masked** (first and last character: the old masks kept both) and
  its hash replaced by ``legacy_ref`` = HMAC(identity key, old hash), which only the key
  holder can compute and nobody can brute-force; ``person_id`` is null and ``unmigrated``
  true until the source resends the number;
- whenever an intake receives a resident identity number it writes ``person_links``
  (``legacy_ref`` -> ``person_id``, both keyed, no number); a later run of the command fills
  ``person_id`` in every copy whose ``legacy_ref`` is linked;
- each changed document gets an entry in its ``pii_migrations`` list (when, which paths,
  and an HMAC of the document before the change) so that a ledger digest taken over the old
  form stays explainable: the key holder can show the entry that changed it.

The command reports how many copies stayed unmigrated. Run it with the services stopped (it
replaces whole documents) or at a quiet time.
"""
from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone

from shared import identity

SKIP_COLLECTIONS = {"ledger", "ledger_heads", "person_links"}


@dataclass
class Report:
    documents: int = 0
    changed: int = 0
    remasked: int = 0
    linked: int = 0
    unmigrated: int = 0
    by_collection: dict = field(default_factory=dict)


def _migrate_node(node: dict, key: bytes, links: dict) -> str | None:
    """Change one person sub-document in place; returns what was done, or None."""
    if "id_number_hash" in node or "id_hash" in node:
        old_hash = node.pop("id_number_hash", None) or node.pop("id_hash", None)
        old_mask = node.pop("id_number_masked", None) or node.get("id_masked")
        node["id_masked"] = identity.remask(old_mask) if old_mask else None
        node["legacy_ref"] = identity.legacy_ref(str(old_hash), key)
        node.setdefault("person_id", None)
        node["unmigrated"] = True
        done = "remasked"
    elif node.get("unmigrated") and node.get("legacy_ref"):
        done = None
    else:
        return None
    person = links.get(node["legacy_ref"])
    if person:
        node["person_id"] = person
        node.pop("legacy_ref")
        node.pop("unmigrated")
        return "linked"
    return done or "unmigrated"


def _walk(value, key, links, path, seen: list):
    if isinstance(value, dict):
        done = _migrate_node(value, key, links)
        if done:
            seen.append((path, done))
        for k, item in value.items():
            _walk(item, key, links, f"{path}.{k}" if path else k, seen)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _walk(item, key, links, f"{path}.{i}", seen)


def migrate(client, prefix: str, key: bytes, dry_run: bool = False) -> Report:
    report = Report()
    names = sorted(n for n in client.list_database_names() if n.startswith(prefix + "_"))
    links = {}
    for name in names:
        if "person_links" in client[name].list_collection_names():
            links.update({d["_id"]: d["person_id"] for d in client[name].person_links.find({})})
    now = datetime.now(timezone.utc)
    for name in names:
        db = client[name]
        for collection in sorted(set(db.list_collection_names()) - SKIP_COLLECTIONS):
            for doc in db[collection].find({}):
                report.documents += 1
                before = hmac.new(key, json.dumps(doc, sort_keys=True, default=str,
                                                  ensure_ascii=False).encode("utf-8"),
                                  hashlib.sha256).hexdigest()
                seen: list = []
                _walk(doc, key, links, "", seen)
                changes = [(p, d) for p, d in seen if d in ("remasked", "linked")]
                report.unmigrated += sum(d in ("remasked", "unmigrated") for _, d in seen)
                if not changes:
                    continue
                report.changed += 1
                report.remasked += sum(d == "remasked" for _, d in changes)
                report.linked += sum(d == "linked" for _, d in changes)
                where = f"{name}.{collection}"
                report.by_collection[where] = report.by_collection.get(where, 0) + 1
                doc.setdefault("pii_migrations", []).append({
                    "at": now, "paths": [p for p, _ in changes],
                    "what": sorted({d for _, d in changes}), "before_hmac": before})
                if not dry_run:
                    db[collection].replace_one({"_id": doc["_id"]}, doc)
    return report


def link_legacy(db, holder, number: str, person_id: str) -> None:
    """Record that the legacy hashes of ``number`` belong to ``person_id`` (keyed refs only),
    so ``migrate`` can complete records stored before issue 19."""
    for ref in holder.legacy_refs(number):
        db.person_links.update_one({"_id": ref}, {"$setOnInsert": {"person_id": person_id}},
                                   upsert=True)
