"""Catalog migration (issue 18 item 6): re-decide every record under the catalog in force.

Run while the restrictions service is stopped (it refuses to start anyway while active
restrictions apply measures the catalog no longer has: ``rules.measures.orphans``):

    python -m services.restrictions.migrate        (or: lianchen catalog migrate)

For every stored record it runs the same reconciliation the service runs on an event: what
the catalog now gives is imposed, what it no longer gives is lifted, with the reason and the
article the new catalog follows (``REASONS``). Every write stages its event in the outbox
(``shared.outbox``) and leaves it there: the service's relay publishes them once it starts,
through its dispatcher, so each event reaches the ledger and the consumers (notifications
sends the notices) as any other. Idempotent: a second run changes nothing. A run is recorded
in ``migrations`` (catalog version, when, counts).
"""
from __future__ import annotations

import os
import sys
from datetime import datetime, timezone

from rules import loader
from rules.measures import orphans
from services.restrictions.lifecycle import Reconciler, ensure_indexes, lift_reason
from shared.mongo import connect, database_name
from shared.outbox import Outbox

# Why each measure of catalog format 1 is gone, with the article (rules/law/FINDINGS.md).
REASONS = {
    "MA-01": "a serious listing is an important consideration in licensing "
             "(市场监督管理严重违法失信名单管理办法 第十五条（一）: SL-LIC), not a refusal; 优化营商环境条例 "
             "第五十八条 and Order 44 第二十条 say nothing of licences",
    "MA-02": "a bar on persons, not on the entity (公司法 第一百七十八条（四）: after a business licence "
             "revocation with personal responsibility); persons are not imposed by the engine",
    "MA-03": "a food licence ban follows a food licence revocation only (食品安全法 第一百三十五条: "
             "FL-ENT); the drug-law bans need facts the record does not carry",
    "MA-04": "经营异常名录管理暂行办法 第十七条 is review and litigation; the abnormal list is a "
             "consideration for honours (企业信息公示暂行条例 第十九条: AO-HON)",
    "AP-01": "国发〔2016〕33号 is not held; no 告知承诺 follows from 市场监督管理严重违法失信名单管理办法 "
             "第十五条（三） (SL-NCP, stricter review)",
    "AP-02": "basis not held (国发〔2016〕33号; 发改财金〔2016〕1453号: rules/law/UNVERIFIED.md)",
    "CR-01": "basis not held (国发〔2016〕33号; no NFRA document named); 食品安全法 第一百一十三条 only "
             "lets the authority notify banks",
    "CR-02": "basis not held (发改财金〔2016〕1453号: rules/law/UNVERIFIED.md)",
    "TX-01": "tax credit is rated by tax authorities only (重大税收违法失信主体信息公布管理办法 第二条, "
             "第十五条); the list is shared with them (Order 44 第四条: SL-TAX)",
    "TX-02": "basis not held (税务总局公告2014年第40号); a tax authority's measure in any case",
    "PB-01": "exclusion from procurement needs a 重大违法记录 (政府采购法 第二十二条（五）; 实施条例 "
             "第十九条): GP-EXCL where the record shows one; the listing is a consideration "
             "(SL-PROC)",
    "PB-02": "招标投标法实施条例 第六十七条 concerns bid rigging and bribery; the listing is a "
             "consideration in bidding (第十五条（一）, 企业信息公示暂行条例 第十九条)",
    "PL-01": "no rule held obliges a platform to clear a merchant on a listing (电子商务法 "
             "第二十九条 concerns unlawful goods information); platforms are informed (SL-PLAT)",
    "PL-02": "no rule held ties platform sanctions to a severity or risk class (电子商务法 "
             "第二十九条, 第三十八条); platforms are informed",
    "PL-03": "the abnormal list reminds of the duty to disclose (企业经营异常名录管理办法 第二条); "
             "platforms are informed (AO-PLAT)",
}


class DeferredOutbox(Outbox):
    """Stages events and leaves them: the service's relay publishes them (with its ledger)."""

    def release(self, entry_id: str, events: list[dict], dispatch=None) -> None:
        """Keep the entry for the relay with only the writes that happened (a write that
        changed nothing, as on a second run, must not have its old events published again)."""
        if not events:
            self.collection.delete_one({"_id": entry_id})
            return
        keep = {event["event_id"] for event in events}
        entry = self.collection.find_one({"_id": entry_id}) or {"items": []}
        items = [item for item in entry["items"]
                 if all(event["event_id"] in keep for event in item["events"])]
        self.collection.update_one({"_id": entry_id}, {"$set": {"items": items}})


def migration_reason(version: str):
    def reason(measure_id: str, source: dict) -> str:
        if source.get("status") != "active" or source.get("repairs"):
            return lift_reason(source)
        why = REASONS.get(measure_id, f"measure {measure_id} is not what catalog {version} gives "
                                      f"for this record")
        return f"catalog migration to {version}: {why}"
    return reason


def migrate(db, catalog=None, correlation_id: str | None = None) -> dict:
    """Re-decide every stored record; returns ``{records, imposed, lifted, orphans_left}``."""
    catalog = catalog or loader.load().measures
    ensure_indexes(db)
    correlation_id = correlation_id or f"catalog-migrate-{catalog.version}"
    reconciler = Reconciler(db, catalog, None, correlation_id, outbox=DeferredOutbox(db, None),
                            lift_reason_for=migration_reason(catalog.version))
    counts = {"records": 0, "imposed": 0, "lifted": 0}
    for source in db.sources.find({}, {"_id": 1}).sort("_id", 1):
        result = reconciler.reconcile(source["_id"])
        counts["records"] += 1
        counts["imposed"] += result["imposed"]
        counts["lifted"] += result["lifted"]
    active = db.restrictions.distinct(
        "measure_id", {"lifted_at": None, "expiry_announced": {"$ne": True}})
    counts["orphans_left"] = len(orphans(catalog, active))
    db.migrations.update_one({"_id": catalog.version}, {"$set": {
        **counts, "ran_at": datetime.now(timezone.utc)}}, upsert=True)
    return counts


def main() -> int:
    config = {"DB_PREFIX": os.environ.get("DB_PREFIX")}
    client = connect(os.environ.get("MONGO_URI"))
    try:
        counts = migrate(client[database_name(config, "restrictions")])
    finally:
        client.close()
    print(f"catalog migration: {counts['records']} records re-decided, {counts['imposed']} "
          f"measures imposed, {counts['lifted']} lifted; events staged for the restrictions "
          f"service's outbox relay")
    if counts["orphans_left"]:
        print(f"error: {counts['orphans_left']} measure(s) still orphaned", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
