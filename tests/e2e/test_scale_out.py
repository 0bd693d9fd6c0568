"""Three instances of every service end in the same state as one, even with an instance killed.

The same input runs twice: through a single instance of each service, then through three
instances of each (competing consumers on the intake, per-entity shards for events; see
``shared.shards``) with one restrictions instance and one violations instance killed with
SIGKILL half-way. The normalised final state of the stores must be equal, entity by entity.

Input (sizes from the environment): ``SCALE_VIOLATIONS`` violation records over
``SCALE_ENTITIES`` entities, published by an agency over AMQP in ``SCALE_WAVES`` waves. The
issue asks for 5,000 over 200; on this two-core machine, shared with the broker, the store and
other work, the pipeline handles about 1-2 violations per second end to end (FerretDB scans a
collection on every keyed write), so the defaults are 400 over 20 entities in 5 waves (20 per
entity, as many in flight per entity as 5,000/200): both runs together take about 10 minutes
here. ``SCALE_VIOLATIONS=5000 SCALE_ENTITIES=200`` runs the issue's size (hours here). Every
wave mixes new records for every entity (so many records of one entity are in flight at once)
with amendments of records of earlier waves and revocations. A wave is published once the
intake has taken the previous one, so that an amendment never overtakes its record: the
outcome of the input is then defined whatever order the services process it in.

The input is chosen so that the correct final state does not depend on processing order:
every serious violation is on the serious violation list and concerns food safety, so the
measures a violation triggers do not depend on its entity's risk class (which moves while
the records arrive, in a different order on every run). What a lost update would change, the
comparison sees: records missing from an entity's score document, a stale score or class, a
measure not imposed or not lifted, a violation id missing from an entity's list, a notice
missing. Scores fade day by day (``catalog/score_model.json``), so a stored score is compared
with the model applied to the stored records on the day it was computed, and the two runs'
scores and classes with the model applied to their records on one common day.
"""
from __future__ import annotations

import json
import os
import random
import time
import uuid
from collections import Counter
from datetime import date, datetime, timedelta, timezone

import pytest
import requests

from rules.score_model import ScoreModel, today
from services.scoring.scores import build as score_of
from services.scoring.scores import current as score_collection
from shared import broker_admin
from shared.agency_client import AgencyPublisher
from tests.factories import make_uscc
from tests.system import SERVICES, System, wait_for

pytestmark = pytest.mark.e2e

VIOLATIONS = int(os.environ.get("SCALE_VIOLATIONS", "400"))
ENTITIES = int(os.environ.get("SCALE_ENTITIES", "20"))
WAVES = int(os.environ.get("SCALE_WAVES", "5"))
SEED = int(os.environ.get("SCALE_SEED", "20261128"))
AGENCY = "FJAMR-350100"
MODEL = ScoreModel.load()
NOW = datetime.now(timezone.utc)
# Shards move between instances within seconds here (production: every 10 s).
# Every instance sees the subscriptions made before the first violation (cached 5 s otherwise).
# The daily rescore (a batch run on one instance, guarded by its day's lease) stays out of the
# comparison: its first check would come 10 minutes after the start.
FAST_REBALANCE = {"SHARD_REBALANCE_SECONDS": "2", "NOTIFY_SUBSCRIPTION_TTL_MS": "100",
                  "RESCORE_CHECK_SECONDS": "86400", "LOG_LEVEL": "WARNING"}


# -- the input -------------------------------------------------------------------------------

def _record(rng: random.Random, code: str, n: int, now: datetime) -> dict:
    decided = now - timedelta(days=rng.randint(2, 80), hours=rng.randint(0, 23))
    body = {
        "agency_code": AGENCY, "document_number": f"闽市监罚〔2026〕S{n}号", "uscc": code,
        "entity_name": f"福州规模测试{code[-6:]}有限公司",
        "legal_basis": {"law": "Food Safety Law (食品安全法)", "article": "124"},
        "occurred_at": (decided - timedelta(days=10)).isoformat(),
        "decided_at": decided.isoformat(), "first_offence": False, "corrected": False,
        "listing": None,
    }
    kind = rng.random()
    if kind < 0.66:  # scoring only, short publicity
        body.update(category="price_fraud", severity="minor",
                    penalties=[{"type": "fine", "amount": f"{rng.randint(5, 90) * 100}.00"}])
    elif kind < 0.92:
        body.update(category="false_advertising", severity="general",
                    penalties=[{"type": "warning"}])
    elif kind < 0.97:  # every measure of the serious list and of the food memorandum
        body.update(_serious(decided))
    else:  # abnormal operations list: three measures that last as long as the listing
        body.update(category="unlicensed_operation", severity="minor",
                    penalties=[{"type": "warning"}],
                    listing={"list": "abnormal_operations",
                             "listed_at": (decided + timedelta(hours=1)).isoformat()})
    return body


def _serious(decided: datetime) -> dict:
    return {"category": "food_safety", "severity": "serious",
            "penalties": [{"type": "fine", "amount": "50000.00"}],
            "listing": {"list": "serious_violation",
                        "listed_at": (decided + timedelta(days=1)).isoformat()}}


def _amended(rng: random.Random, body: dict) -> dict:
    """Same dates, other facts: measures lifted, imposed, or only the score moves."""
    decided = datetime.fromisoformat(body["decided_at"])
    new = dict(body)
    if body["severity"] == "serious":
        new.update(severity="general", listing=None, penalties=[{"type": "warning"}])
    elif rng.random() < 0.4:
        new.update(_serious(decided))
    else:
        new.update(severity="general", penalties=[{"type": "fine", "amount": "9000.00"}])
    return new


def workload(violations: int, entities: int, waves: int, seed: int):
    """``waves``: lists of ``(command, body, message_id)``, and the expected violation state
    ``{key: (version, status)}`` after each wave; the entity codes, and each key's entity."""
    rng = random.Random(seed)
    now = datetime.now(timezone.utc)
    codes = [make_uscc("350100", rng) for _ in range(entities)]
    per_wave = -(-violations // waves)
    state: dict[str, tuple[int, str]] = {}
    bodies: dict[str, dict] = {}
    born: dict[str, int] = {}  # key -> wave of its last change
    out, expected = [], []
    n = 0
    for wave in range(waves):
        messages = []
        for _ in range(min(per_wave, violations - n)):
            body = _record(rng, codes[n % entities], n, now)
            key = f"{AGENCY}/{body['document_number']}"
            messages.append(("record", body, f"rec-{n}"))
            state[key], bodies[key], born[key] = (1, "active"), body, wave
            n += 1
        ready = sorted(k for k, (version, status) in state.items()
                       if status == "active" and born[k] < wave)
        for key in rng.sample(ready, min(len(ready), per_wave // 10)):
            roll = rng.random()
            version = state[key][0]
            if version == 1 and roll < 0.55:
                bodies[key] = _amended(rng, bodies[key])
                messages.append(("amend", {"violation": bodies[key], "reason": "corrected"},
                                 f"amend-{key}"))
                state[key] = (2, "active")
            else:
                body = bodies[key]
                messages.append(("revoke", {"agency_code": AGENCY,
                                            "document_number": body["document_number"],
                                            "reason": "decision withdrawn on review"},
                                 f"revoke-{key}"))
                state[key] = (version + 1, "revoked")
            born[key] = wave
        rng.shuffle(messages)
        out.append(messages)
        expected.append(dict(state))
    return codes, out, expected, {key: body["uscc"] for key, body in bodies.items()}


# -- running it ------------------------------------------------------------------------------

def prepare(system: System, codes: list[str]) -> None:
    """Subscribers before the first violation: a department for every sector, and a platform
    on which every fifth entity sells (memberships are read when a notice is made)."""
    regulator, platform = system.session("regulator", "samr"), system.session("platform", "mall")
    for code in codes[::5]:
        assert regulator.put(system.url("registry", f"/v1/registry/entities/{code}"),
                             json={"name": f"福州规模测试{code[-6:]}有限公司"}).status_code in (200, 201)
        assert platform.post(system.url("registry", f"/v1/registry/entities/{code}/memberships"),
                             json={"platform_id": "mall", "shop_id": f"shop-{code[-6:]}"}).ok
    assert platform.post(system.url("notifications", "/v1/subscriptions"),
                         json={"subscriber_id": "mall", "kind": "platform",
                               "platform_id": "mall"}).ok
    assert system.session("regulator", "credit-desk").post(
        system.url("notifications", "/v1/subscriptions"),
        json={"subscriber_id": "credit-dept", "kind": "department"}).ok


def run(system: System, codes, waves, expected, on_wave=None) -> None:
    prepare(system, codes)
    violations = system.db("violations").violations
    with AgencyPublisher(system.agency_uri("FJAMR"), system.key("agency", "FJAMR")) as agency:
        for index, messages in enumerate(waves):
            for command, body, message_id in messages:
                agency.publish(body, command, message_id=message_id)
            target = expected[index]
            wait_for(lambda: _intake_done(violations, target), timeout=600, interval=1,
                     message=f"the intake to take wave {index + 1} of {len(waves)}")
            if on_wave is not None:
                on_wave(index)
    settle(system)


def _intake_done(violations, target: dict) -> bool:
    seen = {d["_id"]: (d["version"], d["status"])
            for d in violations.find({}, {"version": 1, "status": 1})}
    return all(seen.get(key) == state for key, state in target.items())


def settle(system: System, quiet_polls: int = 4) -> None:
    """Wait until nothing moves: every queue empty (ready and unacknowledged) and every outbox
    empty, several polls in a row spanning more than the management API's stats interval."""
    quiet = 0
    deadline = time.monotonic() + 1800
    while quiet < quiet_polls:
        assert time.monotonic() < deadline, "the system never settled"
        time.sleep(4)
        depths = broker_admin.queue_depths(system.vhost)
        busy = {q: n for q, n in depths.items() if n and not q.startswith("dlq.")}
        outboxes = sum(system.db(s).outbox.count_documents({}) for s in SERVICES)
        quiet = quiet + 1 if not busy and not outboxes else 0


def kill_busiest(system: System, service: str) -> int:
    """SIGKILL the instance of ``service`` that is active on the most shards (the one
    serving the intake for violations); returns its index."""
    if service == "violations":
        index = 1
    else:
        base, auth = broker_admin.management_url()
        consumers = requests.get(f"{base}/api/consumers/{system.vhost}", auth=auth,
                                 timeout=10).json()
        active = Counter(c["consumer_tag"].split("|")[0].rsplit(".", 2)[1] for c in consumers
                         if c["queue"]["name"].startswith(f"{service}.shard.") and c["active"])
        pids = [system.by_name[(service, i)].pid for i in range(system.instances)]
        index = max(range(len(pids)), key=lambda i: active.get(str(pids[i]), 0))
        assert active.get(str(pids[index])), f"no {service} instance is active on a shard"
    system.kill(service, index)
    return index


# -- the state compared ----------------------------------------------------------------------

def snapshot(system: System, day: date) -> dict:
    db = system.db
    facts = {d["_id"]: d for d in db("scoring").records.find({})}
    records = {code: sorted((r["violation_id"], r["version"], r["status"])
                            for r in doc["violations"]) for code, doc in facts.items()}
    scores = {}
    for doc in score_collection(db("scoring")).find({}):
        own, _ = score_of(MODEL, facts[doc["_id"]], date.fromisoformat(doc["day"]), NOW)
        assert (doc["score"], doc["risk_class"]) == (own["score"], own["risk_class"]), \
            f"stored score of {doc['_id']} is not its records' score: a lost update"
        common, _ = score_of(MODEL, facts[doc["_id"]], day, NOW)
        scores[doc["_id"]] = (common["score"], common["risk_class"])
    restrictions = {
        d["_id"]: (d["uscc"], d["source"]["violation_id"], d["measure_id"], d["sector"],
                   d["starts_at"], d["ends_at"], d["rule"],
                   "lifted" if d.get("lifted_at") else "active", d.get("lift_reason"))
        for d in db("restrictions").restrictions.find({})}
    sources = {d["_id"]: (d["version"], d["status"], sorted(d.get("imposed", [])))
               for d in db("restrictions").sources.find({})}
    entities = {d["_id"]: (sorted(d.get("violation_ids", [])), d.get("risk_class"))
                for d in db("restrictions").entities.find({})}
    notices = {}
    for d in db("notifications").notices.find({}):
        body = json.loads(d["body"])
        notices[d["key"]] = (d["subscriber_id"], d["kind"], d["uscc"], d["measure_id"],
                             d["restriction_id"], body["reason"], body["merchant"]["shop_id"])
    registry = {d["_id"]: (d["version"], d["status"], d["uscc"])
                for d in db("registry").entity_violations.find({})}
    return {"records": records, "scores": scores, "restrictions": restrictions,
            "sources": sources, "entities": entities, "notices": notices,
            "registry": registry}


def assert_complete(snap: dict, final: dict, owners: dict) -> None:
    """What every run must hold whatever the order: each violation's final version reached
    each consumer, and each entity's documents list each of its violations."""
    assert {k: (v, s) for k, (v, s, _) in snap["registry"].items()} == final
    assert {k: (v, s) for k, (v, s, _) in snap["sources"].items()} == final
    by_entity: dict[str, list] = {}
    for key, (version, status) in final.items():
        by_entity.setdefault(owners[key], []).append((key, version, status))
    assert snap["records"] == {code: sorted(rows) for code, rows in by_entity.items()}, \
        "scoring lost a record (or kept a stale version)"
    assert {code: ids for code, (ids, _) in snap["entities"].items()} == \
        {code: sorted(k for k, _, _ in rows) for code, rows in by_entity.items()}, \
        "restrictions lost a violation from an entity's list"


def dead_letters(system: System) -> dict:
    return {q: n for q, n in broker_admin.queue_depths(system.vhost).items()
            if q.startswith("dlq.") and n}


# -- the test --------------------------------------------------------------------------------

@pytest.mark.timeout(int(os.environ.get("SCALE_TIMEOUT", "2400")))
def test_three_instances_end_where_one_does_even_with_instances_killed(tmp_path):
    codes, waves, expected, owners = workload(VIOLATIONS, ENTITIES, WAVES, SEED)
    day = today()
    final = expected[-1]

    single = System(instances=1, extra_env=FAST_REBALANCE).start(timeout=180)
    try:
        run(single, codes, waves, expected)
        one = snapshot(single, day)
        assert dead_letters(single) == {}
    finally:
        single.stop()

    killed = []

    def chaos(wave: int) -> None:
        if wave == len(waves) // 3:
            killed.append(("restrictions", kill_busiest(triple, "restrictions")))
        if wave == 2 * len(waves) // 3:
            killed.append(("violations", kill_busiest(triple, "violations")))

    triple = System(instances=3, extra_env=FAST_REBALANCE).start(timeout=300)
    try:
        run(triple, codes, waves, expected, on_wave=chaos)
        three = snapshot(triple, day)
        assert dead_letters(triple) == {}
    finally:
        triple.stop()

    assert [s for s, _ in killed] == ["restrictions", "violations"]
    # the input really exercised what it is meant to
    assert len(one["registry"]) == len(final) == VIOLATIONS
    statuses = Counter(status for _, status in final.values())
    assert statuses["revoked"] > 0 and any(v == 2 for v, _ in final.values())
    lifted = [r for r in one["restrictions"].values() if r[7] == "lifted"]
    assert lifted and len(lifted) < len(one["restrictions"])
    assert {n[1] for n in one["notices"].values()} == {"imposed", "lifted"}
    assert {n[0] for n in one["notices"].values()} == {"mall", "credit-dept"}
    assert len(one["scores"]) == len(codes)
    assert {v for v, _ in one["scores"].values()} != {0.0}  # scores are not all saturated
    assert_complete(one, final, owners)
    assert_complete(three, final, owners)
    # A restriction from a superseded version may exist, lifted, in one run only (see
    # assert_equal_apart_from), and so may its notices; everything else is identical.
    superseded = set(one["restrictions"]) ^ set(three["restrictions"])
    allowed = {"restrictions": lambda row: row[7] == "lifted",
               "notices": lambda row: row[4] in superseded}
    for name in one:
        assert_equal_apart_from(name, one[name], three[name], allowed.get(name))


def assert_equal_apart_from(name: str, one: dict, three: dict, may_differ=None) -> None:
    """``one`` and ``three`` equal, except rows present in one run only that ``may_differ``
    accepts. Why restrictions may: whether version 1 of a violation is applied before version
    2 or 3 supersedes it depends on delivery order, and an older version is then ignored.
    Seen in CI, the same violation each time: two measures imposed from version 1 and lifted by
    the revocation with one instance, never imposed with three. The violations instance killed
    half-way had stored version 1 but not published it; its outbox entry is published by the
    relay (``shared.outbox.sweep``, seconds later), and the next wave, published as soon as the
    store shows the previous one, got the revocation out first. A retry with backoff can do the
    same. What holds at the end, and everything both runs have, is identical."""
    if may_differ is None:
        assert three == one, f"{name} differs between one and three instances"
        return
    for k in set(one) ^ set(three):
        assert may_differ(one.get(k) or three.get(k)), \
            f"{name}: {k} is in one run only and may not be"
    common = set(one) & set(three)
    assert {k: three[k] for k in common} == {k: one[k] for k in common}, \
        f"{name} differs between one and three instances"
