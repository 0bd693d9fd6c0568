"""The daily rescore: every entity's score for a day, as a new generation of scores.

Deductions fade day by day, so once a day every entity is scored again. On the local store
(FerretDB 1.x) an update by id scans the collection, so updating scores in place does not
scale; streaming reads and batch inserts do. A run therefore:

1. takes the day's lease (``rescore_runs``, inserted once per day and model version: one run,
   however many instances or restarts; a run whose heartbeat stopped for ``stale_after`` is
   started over);
2. streams ``records`` and the current score generation side by side in ``_id`` order (two
   cursors, bounded memory), scores each entity, and batch-inserts the new documents into a
   fresh generation; a CreditChanged event for each entity whose score or class moved is
   batch-inserted into the run's own event collection (its outbox) with the event id recorded in
   the score document;
3. moves the pointer ``meta/scores`` to the new generation (one small write);
4. publishes the run's events and drops their collection; a crash before this step is resumed by
   the next run of the timer (consumers are idempotent, republishing does no harm);
5. drops generations older than the previous one.

Entities whose facts change while a run builds are scored again by the service after the switch
(``ScoringService`` keeps the codes it touched), so no event-driven change is lost.
"""
from __future__ import annotations

import time
import uuid
from datetime import date, datetime, timedelta, timezone

from pymongo.errors import DuplicateKeyError

from services.scoring import scores
from rules.score_model import ScoreModel

RUNS = "rescore_runs"


class Rescorer:
    def __init__(self, db, model: ScoreModel, publish, *, batch: int = 1000,
                 correlation_id: str = "rescore", stale_after: timedelta = timedelta(minutes=10),
                 log=None):
        self.db = db
        self.model = model
        self.publish = publish  # publish(event envelope)
        self.batch = batch
        self.correlation_id = correlation_id
        self.stale_after = stale_after
        self.log = log

    def run(self, day: date) -> dict:
        run_id = f"{day.isoformat()}:{self.model.version}"
        now = datetime.now(timezone.utc)
        suffix = f"{day:%Y%m%d}_{uuid.uuid4().hex[:6]}"
        run = {"_id": run_id, "status": "building", "started_at": now,
               "target": f"scores_{suffix}", "events": f"credit_events_{suffix}"}
        try:
            self.db[RUNS].insert_one(run)
        except DuplicateKeyError:
            existing = self.db[RUNS].find_one({"_id": run_id})
            if existing["status"] == "done":
                return {"status": "done already", "run": run_id}
            if existing["status"] == "switched":
                return self._finish(existing, {"resumed": True})
            beat = existing.get("heartbeat_at") or existing["started_at"]
            if (beat if beat.tzinfo else beat.replace(tzinfo=timezone.utc)) > now - self.stale_after:
                return {"status": "running elsewhere", "run": run_id}
            for name in (existing["target"], existing["events"]):  # a crashed build: start over
                self.db.drop_collection(name)
            self.db[RUNS].update_one({"_id": run_id}, {"$set": {
                "started_at": now, "target": run["target"], "events": run["events"]}})
        stats = self._build(run, day, now)
        self.db[run["target"]].create_index("region_code")  # plan populations (MongoDB)
        previous = scores.current_name(self.db)
        self.db.meta.update_one({"_id": scores.POINTER_ID}, {"$set": {
            "current": run["target"], "previous": previous, "day": day.isoformat(),
            "model_version": self.model.version, "switched_at": datetime.now(timezone.utc)}},
            upsert=True)
        self.db[RUNS].update_one({"_id": run_id}, {"$set": {"status": "switched", **stats}})
        self._drop_old_generations(keep={run["target"], previous})
        return self._finish({**run, **stats}, stats)

    def _build(self, run: dict, day: date, now: datetime) -> dict:
        target, events = self.db[run["target"]], self.db[run["events"]]
        started = time.perf_counter()
        entities = changed = 0
        docs, pending = [], []
        for record_doc, old in self.joined():
            doc, _ = scores.build(self.model, record_doc, day, now)
            if scores.is_news(self.model, old, doc):
                event = scores.credit_changed(doc, old, f"fade:{day.isoformat()}",
                                              self.correlation_id)
                doc["event_ids"] = [event["event_id"]]
                pending.append({"_id": event["event_id"], "event": event})
            docs.append(doc)
            entities += 1
            if len(docs) >= self.batch:
                changed += self._flush(target, events, docs, pending)
                docs, pending = [], []
                if entities % (self.batch * 20) == 0:  # a run that stops beating is taken over
                    self.db[RUNS].update_one({"_id": run["_id"]}, {"$set": {
                        "heartbeat_at": datetime.now(timezone.utc), "entities": entities}})
        changed += self._flush(target, events, docs, pending)
        return {"entities": entities, "changed": changed,
                "build_seconds": round(time.perf_counter() - started, 3)}

    def joined(self):
        """``(records document, current score summary or None)`` for every entity, in id order,
        from two streaming cursors (memory stays bounded by the batch size)."""
        old_cursor = scores.current(self.db).find({}, {"score": 1, "risk_class": 1}) \
            .sort("_id", 1).batch_size(self.batch)
        old = next(old_cursor, None)
        for record_doc in self.db.records.find({}).sort("_id", 1).batch_size(self.batch):
            code = record_doc["_id"]
            while old is not None and old["_id"] < code:
                old = next(old_cursor, None)
            yield record_doc, (old if old is not None and old["_id"] == code else None)
        old_cursor.close()

    @staticmethod
    def _flush(target, events, docs, pending) -> int:
        if docs:
            target.insert_many(docs, ordered=False)
        if pending:
            events.insert_many(pending, ordered=False)
        time.sleep(0)  # let other green threads run between batches
        return len(pending)

    def _finish(self, run: dict, stats: dict) -> dict:
        started = time.perf_counter()
        published = 0
        for entry in self.db[run["events"]].find({}).batch_size(self.batch):
            self.publish(entry["event"])
            published += 1
        self.db.drop_collection(run["events"])
        stats = {**stats, "published": published,
                 "publish_seconds": round(time.perf_counter() - started, 3)}
        self.db[RUNS].update_one({"_id": run["_id"]}, {"$set": {
            "status": "done", "finished_at": datetime.now(timezone.utc), **stats}})
        if self.log is not None:
            self.log.info("daily rescore done", run=run["_id"], **stats)
        return {"status": "done", "run": run["_id"], **stats}

    def _drop_old_generations(self, keep: set[str]) -> None:
        for name in self.db.list_collection_names():
            if (name == scores.LEGACY or name.startswith("scores_")) and name not in keep:
                self.db.drop_collection(name)

    def scan_only(self) -> int:
        """Read exactly what a run reads, and nothing else (the benchmark's baseline)."""
        return sum(1 for _ in self.joined())
