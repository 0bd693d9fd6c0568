"""The daily rescore: N generated entities with realistic histories scored again for a new day,
next to the time it takes just to read the same data from the store, in the same run.

Goal (issue: credit scoring): 1,000,000 entities within 10 minutes and 500 MB RSS.

The rescore is the service's own code (``services.scoring.rescore.Rescorer``): two streaming
cursors in ``_id`` order (facts and current scores), the model, batch inserts of a new score
generation, CreditChanged events staged in the run's collection and published with publisher
confirms to a real broker (a fresh vhost), then the pointer switch. Loading 1M documents into the
local store (FerretDB) takes long, so N is ``BENCH_RESCORE_ENTITIES`` (default 20,000) and the
figures are extrapolated linearly to 1M: streaming reads and batch inserts cost the same per
document whatever the collection size (measured), so the extrapolation holds for them; memory is
bounded by the batch size, not by N (the peak RSS is printed after each phase to show it).

Histories (per entity, seeded): 72% nothing recorded; 18% one violation (mostly general,
fines), 7% two to four; 2% on the serious violation list; a fifth of recorded violations
amended, a twentieth revoked; 1% of entities with a credit repair; 5% with a positive record.
Decisions spread over the last four years.
"""
from __future__ import annotations

import os
import random
import resource
import time
import uuid
from datetime import datetime, timedelta, timezone

from common import rate, report

import pymongo
from kombu import Connection, Queue
from nameko.standalone.events import event_dispatcher, get_event_exchange

from services.scoring import scores
from rules.score_model import ScoreModel, today
from services.scoring.rescore import Rescorer
from rules import uscc
from shared import broker_admin

N = int(os.environ.get("BENCH_RESCORE_ENTITIES", "20000"))
BATCH = int(os.environ.get("BENCH_RESCORE_BATCH", "1000"))
MONGO_URI = os.environ.get("MONGO_URI", "mongodb://127.0.0.1:27017/")
AMQP_URI = os.environ.get("AMQP_URI", "amqp://guest:guest@127.0.0.1:5672/")
TARGET = 1_000_000
GOAL_SECONDS, GOAL_MB = 600, 500
ALPHABET = uscc.ALPHABET
REGIONS = ["350102", "350103", "350104", "350200", "350500", "140105", "140106", "140200",
           "110105", "310115", "440300", "510000"]
CATEGORIES = ["food_safety", "product_quality", "false_advertising", "price_fraud",
              "tax_violation", "unlicensed_operation", "e_commerce_violation", "work_safety"]


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


def violation(rng: random.Random, code: str, i: int, now: datetime) -> dict:
    decided = now - timedelta(days=rng.randint(1, 4 * 365), minutes=rng.randint(0, 1439))
    severity = rng.choices(["minor", "general", "serious", "especially_serious"], [30, 50, 17, 3])[0]
    penalties = rng.choice([
        [{"type": "warning"}],
        [{"type": "fine", "amount": str(rng.randint(500, 9000))}],
        [{"type": "fine", "amount": str(rng.randint(10000, 500000))}],
        [{"type": "fine", "amount": "50000"}, {"type": "confiscation", "amount": "12000"}],
        [{"type": "suspension", "months": rng.randint(1, 12)}],
    ])
    vid = f"BENCH-{code[2:6]}/罚〔{decided.year}〕{i}号"
    listing = ({"list": "serious_violation", "listed_at": decided + timedelta(days=1)}
               if rng.random() < 0.08 else None)
    version = 1 + (rng.random() < 0.2)
    status = "revoked" if rng.random() < 0.05 else "active"
    return {"violation_id": vid, "version": version, "status": status, "fact": {
        "violation_id": vid, "agency_code": f"BENCH-{code[2:6]}", "document_number": vid[11:],
        "category": rng.choice(CATEGORIES), "severity": severity, "decided_at": decided,
        "penalties": penalties, "listing": listing}}


def entity(rng: random.Random, n: int, now: datetime) -> dict:
    code = uscc.make("91" + rng.choice(REGIONS) + f"{n:09d}")
    roll = rng.random()
    count = 0 if roll < 0.72 else 1 if roll < 0.90 else rng.randint(2, 4) if roll < 0.97 else 1
    violations = [violation(rng, code, k, now) for k in range(count)]
    if roll >= 0.98 and violations:  # on the serious violation list
        fact = violations[0]["fact"]
        fact["listing"] = {"list": "serious_violation",
                           "listed_at": fact["decided_at"] + timedelta(days=1)}
    repairs = []
    if violations and rng.random() < 0.04:
        v = violations[0]
        repairs.append({"application_id": f"app-{n}", "violation_id": v["violation_id"],
                        "scope": "publicity", "decided_by": "BENCH", "reason": "performed",
                        "decided_at": v["fact"]["decided_at"] + timedelta(days=rng.randint(180, 400))})
    positives = []
    if rng.random() < 0.05:
        positives.append({"record_id": f"GOV/{n}", "uscc": code, "kind": "honour",
                          "title": "守合同重信用", "issued_by": "GOV",
                          "awarded_at": now - timedelta(days=rng.randint(1, 900))})
    return {"_id": code, "name": f"bench entity {n}", "region_code": code[2:8],
            "entity_type": "enterprise", "violations": violations, "repairs": repairs,
            "positives": positives}


def load(db, n: int) -> float:
    rng, now = random.Random(2026), datetime.now(timezone.utc)
    start = time.perf_counter()
    batch = []
    for i in range(n):
        batch.append(entity(rng, i, now))
        if len(batch) == BATCH:
            db.records.insert_many(batch, ordered=False)
            batch = []
    if batch:
        db.records.insert_many(batch, ordered=False)
    return time.perf_counter() - start


def main() -> None:
    client = pymongo.MongoClient(MONGO_URI, tz_aware=True)
    db = client[f"bench{uuid.uuid4().hex[:6]}_scoring"]
    vhost = f"bench{uuid.uuid4().hex[:6]}"
    broker_admin.create_vhost(vhost)
    config = {"AMQP_URI": AMQP_URI.rstrip("/") + "/" + vhost}
    with Connection(config["AMQP_URI"]) as connection:  # a consumer's queue, as restrictions has
        Queue("bench.credit-changed", exchange=get_event_exchange("scoring", config),
              routing_key="CreditChanged", durable=True)(connection.default_channel).declare()
    dispatch = event_dispatcher(config)
    model = ScoreModel.load()
    published = []

    def publish(event):
        dispatch("scoring", event["type"], event)
        published.append(1)

    try:
        print(f"loading {N:,} entities ...", flush=True)
        t_load = load(db, N)
        rss_load = peak_mb()
        # Yesterday's generation: what a real day starts from (its events are not timed).
        Rescorer(db, model, lambda e: None, batch=BATCH).run(today() - timedelta(days=1))
        rss_first = peak_mb()

        start = time.perf_counter()
        count = Rescorer(db, model, publish, batch=BATCH).scan_only()
        t_read = time.perf_counter() - start
        rss_read = peak_mb()
        assert count == N, count

        start = time.perf_counter()
        now, day = datetime.now(timezone.utc), today()
        for record_doc, _ in Rescorer(db, model, publish, batch=BATCH).joined():
            scores.build(model, record_doc, day, now)
        t_score = time.perf_counter() - start

        start = time.perf_counter()
        result = Rescorer(db, model, publish, batch=BATCH).run(today())
        t_rescore = time.perf_counter() - start
        rss_rescore = peak_mb()
        assert result["entities"] == N and result["published"] == len(published)
    finally:
        client.drop_database(db.name)
        client.close()
        broker_admin.delete_vhost(vhost)

    factor = TARGET / N
    report(f"daily rescore of {N:,} entities (batch {BATCH})", [
        ("read only: facts + current scores, streamed", t_read, "s"),
        ("read + score, nothing written", t_score, "s"),
        ("rescore: read, score, write generation, publish", t_rescore, "s"),
    ], baseline="read only: facts + current scores, streamed")
    print(f"  of which build (read + score + batch insert): {result['build_seconds']:.1f} s, "
          f"publish {result['published']:,} CreditChanged (confirms): {result['publish_seconds']:.1f} s")
    print(f"  rates: read {rate(N, t_read):,.0f} entities/s, rescore {rate(N, t_rescore):,.0f} "
          f"entities/s, load (insert_many) {rate(N, t_load):,.0f} entities/s")
    print(f"  peak RSS (MB): after load {rss_load:.0f}, after first generation {rss_first:.0f}, "
          f"after read {rss_read:.0f}, after rescore {rss_rescore:.0f}  (goal <= {GOAL_MB})")
    print(f"  extrapolated to {TARGET:,} entities (linear: streaming reads and batch inserts cost "
          f"the same per document at any size):")
    print(f"    read only {t_read * factor / 60:.1f} min, scoring alone "
          f"{max(t_score - t_read, 0) * factor / 60:.1f} min, rescore {t_rescore * factor / 60:.1f} min "
          f"(goal <= {GOAL_SECONDS / 60:.0f} min: {'met' if t_rescore * factor <= GOAL_SECONDS else 'NOT met'} "
          f"on this store), memory stays at the batch size: "
          f"{'met' if rss_rescore <= GOAL_MB else 'NOT met'}")
    print("    the store's read rate is the floor: where reading 1M takes longer than the goal, no"
          " rescore can meet it on that store.")
    print("    not measured at 1M here: whether FerretDB keeps its _id-ordered scan streaming at that"
          " size; on MongoDB both cursors walk the _id index. Times on a shared machine vary"
          " with its load; the ratios, taken in one run, vary less.")


if __name__ == "__main__":
    main()
