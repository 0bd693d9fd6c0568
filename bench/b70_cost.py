"""What one violation costs, all processes together, next to the floor measured in the same run
and the "before" figures of commit ebfc64d (``bench/baselines/b70_ebfc64d.json``).

The run, on a private broker and store (``bench/infra.py``: counters are global to a server,
and other tests use the developer's own):

1. the floor's unit costs: ``b00_broker_store``'s raw store operations and confirmed publishes
   against the same private servers, with the CPU and PostgreSQL commits they took;
2. the six services (``INSTANCES`` each, default 1); K platforms (``BENCH_COST_PLATFORMS``,
   default 3) with a webhook subscription each, served by a receiver in this process
   (``tests.notify_support.Receiver``, every signature verified); N entities
   (``BENCH_COST_N`` or the first argument, default 1,000) registered, each selling on all K;
3. N violations (seed ``BENCH_COST_SEED``), one per entity: 40 % serious food safety on the
   serious violation list, 10 % especially serious (product quality), 10 % food licence
   revocation, 20 % minor and corrected (soft tools only), 20 % general; posted through
   ``POST /v1/violations:batch`` in batches of 100;
4. complete when every notice has arrived and every queue is empty; then checked: every
   expected restriction (``Catalog.decide`` with the entity's final risk class) in the gate's
   answer (``POST /v1/status:batch``) and nothing else, every platform notice once, every
   score written with its violation, every outbox empty, ``lianchen audit verify`` clean;
5. the latency of one serious listed violation on the idle system (median of 3): posted ->
   its notices at every platform, its measures at the gate and its score written.

Printed per violation: CPU ms by process (``/proc``, each process tree), PostgreSQL commits and
rows of FerretDB's database (``pg_stat_database``), broker publishes and deliveries of the
run's vhost (management API), deliveries by queue; violations/s end to end (first POST -> last notice, restriction
or score stored); and the same system's idle use over the run's duration ("net" = gross minus
that). The floor: the writes the outcome needs at least (the violation, each restriction, each
notice, the score; one publish per violation and one per decision with measures, delivered to
scoring, restrictions and notifications) times the unit costs of step 1.
``BENCH_COST_SAVE=path.json`` writes this run's figures (how the baseline was made).
"""
from __future__ import annotations

import json
import os
import random
import re
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from functools import lru_cache

from common import ROOT, cpu_seconds
from infra import PrivateInfra, settle

N = int(os.environ.get("BENCH_COST_N", "1000"))  # or the first argument
K = int(os.environ.get("BENCH_COST_PLATFORMS", "3"))
SEED = int(os.environ.get("BENCH_COST_SEED", "2026"))
INSTANCES = int(os.environ.get("INSTANCES", "1"))
CPUS = os.environ.get("BENCH_COST_CPUS")  # e.g. "0,1": taskset every process of the run
# The webhook receiver is on loopback, which notifications refuse unless allowed
# (services/notifications/targets.py); the services inherit this environment.
os.environ.setdefault("NOTIFY_ALLOW_TARGETS", "127.0.0.0/8,::1/128")
BASELINE = ROOT / "bench" / "baselines" / "b70_ebfc64d.json"
BATCH = 100
SECRET = "bench-cost-webhook-secret-0123"
MIX = (("serious_listed", 40), ("especially_serious", 10), ("licence_revocation", 10),
       ("minor_corrected", 20), ("general", 20))
STATS_LAG = 11.0  # PostgreSQL backends flush idle statistics within 10 s; the broker every 5 s


# -- the records --------------------------------------------------------------------------------
def record(kind: str, code: str, i: int, rng: random.Random) -> dict:
    from tests.factories import violation
    decided = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(
        days=rng.randint(5, 90), minutes=rng.randint(0, 1439))
    dates = {"occurred_at": (decided - timedelta(days=30)).isoformat(),
             "decided_at": decided.isoformat()}
    listing = {"list": "serious_violation", "listed_at": (decided + timedelta(days=1)).isoformat()}
    base = {"uscc": code, "document_number": f"闽市监罚〔2026〕C{SEED}-{i}号",
            "entity_name": f"福州成本测试商贸有限公司{i}", **dates, "listing": None}
    shapes = {
        "serious_listed": {"listing": listing},
        "especially_serious": {"category": "product_quality", "severity": "especially_serious",
                               "penalties": [{"type": "fine", "amount": "300000.00"}],
                               "legal_basis": {"law": "Product Quality Law (产品质量法)",
                                               "article": "49"}},
        "licence_revocation": {"severity": "general",
                               "penalties": [{"type": "licence_revocation"}]},
        "minor_corrected": {"severity": "minor", "first_offence": True, "corrected": True,
                            "penalties": [{"type": "warning"}]},
        "general": {"category": "false_advertising", "severity": "general",
                    "penalties": [{"type": "fine", "amount": "8000.00"}],
                    "legal_basis": {"law": "Advertising Law (广告法)", "article": "55"}},
    }
    return violation(**{**base, **shapes[kind]})


def population(n: int) -> list[tuple[str, dict]]:
    from tests.factories import make_uscc
    rng = random.Random(SEED)
    kinds = [kind for kind, weight in MIX for _ in range(weight)]
    out, codes = [], set()
    for i in range(n):
        code = make_uscc("350100", rng)
        while code in codes:
            code = make_uscc("350100", rng)
        codes.add(code)
        kind = kinds[i * len(kinds) // n] if n >= len(kinds) else rng.choice(kinds)
        out.append((kind, record(kind, code, i, rng)))
    rng.shuffle(out)
    return out


def vid(body: dict) -> str:
    return f"{body['agency_code']}/{body['document_number']}"


def expected_measures(body: dict, risk_class: str | None) -> dict[str, str]:
    """restriction id -> sector, as the catalog decides for this record and class."""
    from contracts.violation import ViolationSchema
    from services.restrictions.lifecycle import restriction_id
    try:
        from rules.measures import Catalog
    except ImportError:  # before the rules/ package (the "before" commit, ebfc64d)
        from services.restrictions.catalog import Catalog
    catalog = _catalog(Catalog)
    decision = catalog.decide(ViolationSchema().load(body), risk_class)
    # Catalog format 2: only the entity's measures are imposed (person measures are data).
    measures = getattr(decision, "entity_measures", decision.measures)
    return {restriction_id(vid(body), m["measure"].id): m["measure"].sector for m in measures}


@lru_cache(maxsize=None)
def _catalog(cls):
    return cls.load()


# -- counting -----------------------------------------------------------------------------------
class Counters:
    """CPU by process tree, store and broker counters: snapshots and their differences."""

    def __init__(self, infra: PrivateInfra, system):
        self.infra, self.system = infra, system

    def snapshot(self) -> dict:
        vhost = self.system.vhost if self.system else None
        return {"at": time.monotonic(), "cpu": cpu_seconds(self.system, self.infra.roots()),
                "store": self.infra.store_counters(),
                "broker": self.infra.broker_counters(vhost),
                "queues": self.infra.deliveries_by_queue(vhost) if vhost else {}}

    @staticmethod
    def delta(a: dict, b: dict) -> dict:
        return {"seconds": b["at"] - a["at"],
                **{part: {k: b[part][k] - a[part].get(k, 0) for k in b[part]}
                   for part in ("cpu", "store", "broker", "queues")}}


def queue_group(name: str) -> str:
    """A queue's name without what differs from run to run or shard to shard."""
    name = re.sub(r"-[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$|-[0-9a-f]{32}$", "", name)
    return re.sub(r"\.shard\.\d+$", ".shard.*", name)


def per_unit(delta: dict, units: float, idle: dict | None = None) -> dict:
    """Per-violation figures of a delta; with ``idle`` (a delta of the idle system), net of
    what the idle system used over the same duration."""
    scale = delta["seconds"] / idle["seconds"] if idle else 0.0

    def net(part: str, key: str) -> float:
        value = delta[part].get(key, 0)
        return value - (idle[part].get(key, 0) * scale if idle else 0)

    cpu = {k: net("cpu", k) * 1000 / units for k in delta["cpu"]}
    grouped: dict[str, float] = {}
    for name, value in delta["queues"].items():
        grouped[queue_group(name)] = grouped.get(queue_group(name), 0) + value / units
    queues = {k: v for k, v in sorted(grouped.items(), key=lambda kv: -kv[1]) if v}
    return {"cpu_ms": cpu, "cpu_ms_total": sum(cpu.values()), "delivered_by_queue": queues,
            "store": {k: net("store", k) / units for k in delta["store"]},
            "broker": {k: net("broker", k) / units for k in delta["broker"]}}


def pin(infra: PrivateInfra, system) -> None:
    pids = [p.pid for p in system.processes] + list(infra.roots().values()) + [os.getpid()]
    for pid in pids:
        subprocess.run(["taskset", "-a", "-pc", CPUS, str(pid)], check=True,
                       stdout=subprocess.DEVNULL)
    print(f"  pinned {len(pids)} processes (and their threads) to cores {CPUS}")


# -- the floor ----------------------------------------------------------------------------------
def unit_costs(infra: PrivateInfra) -> dict:
    """b00's store and broker figures on the private servers, with what they cost."""
    os.environ.setdefault("BENCH_N", "1000")
    import b00_broker_store as b00
    counters = Counters(infra, None)
    settle(STATS_LAG)
    a = counters.snapshot()
    store = dict((name, value) for name, value, _ in b00.store_figures())
    settle(STATS_LAG)
    b = counters.snapshot()
    broker = dict((name, value) for name, value, _ in b00.broker_figures())
    settle(STATS_LAG)
    c = counters.snapshot()
    store_ops, publishes = 3 * b00.N, 2 * b00.N  # insert, find, update; plain, confirmed
    d_store, d_broker = Counters.delta(a, b), Counters.delta(b, c)
    return {
        "ops": b00.N,
        "insert_per_s": store["store insert_one"],
        "publish_confirmed_per_s": broker["raw pika publish, durable queue, confirms"],
        "cpu_ms_per_store_op": sum(d_store["cpu"].values()) * 1000 / store_ops,
        "commits_per_store_op": d_store["store"]["xact_commit"] / store_ops,
        "cpu_ms_per_publish": sum(d_broker["cpu"].values()) * 1000 / publishes,
    }


def floor(outcomes: list[dict], units: dict) -> dict:
    """Per violation, averaged over the run: what the outcome needs at the least."""
    n = len(outcomes)
    writes = sum(2 + o["restrictions"] + o["notices"] for o in outcomes) / n
    publishes = sum(1 + (o["restrictions"] > 0) for o in outcomes) / n
    deliveries = sum(2 + (o["restrictions"] > 0) for o in outcomes) / n
    seconds = writes / units["insert_per_s"] + publishes / units["publish_confirmed_per_s"]
    return {"writes": writes, "commits": writes * units["commits_per_store_op"],
            "published": publishes, "delivered": deliveries,
            "cpu_ms_total": writes * units["cpu_ms_per_store_op"]
            + publishes * units["cpu_ms_per_publish"],
            "violations_per_s": 1 / seconds}


# -- the run ------------------------------------------------------------------------------------
class World:
    """The running system, its platforms and their receiver."""

    def __init__(self, infra: PrivateInfra):
        from tests.notify_support import NotifySystem, Receiver
        self.infra = infra
        # The daily rescore (every entity again, first checked 600 s after start) is not a
        # violation's cost: kept out of the run.
        self.system = NotifySystem(instances=INSTANCES,
                                   extra_env={"RESCORE_CHECK_SECONDS": "86400"}).start(120)
        self.receiver = Receiver().start()
        self.platforms = [f"bench-mall-{k}" for k in range(K)]
        self.local = threading.local()
        for platform in self.platforms:
            self.receiver.secrets[self.hook(platform)] = SECRET
            self.system.session("platform", platform).post(
                self.system.url("notifications", "/v1/subscriptions"), json={
                    "kind": "platform", "platform_id": platform, "webhook_secret": SECRET,
                    "webhook_url": self.receiver.url(self.hook(platform))}).raise_for_status()

    @staticmethod
    def hook(platform: str) -> str:
        return f"/hooks/{platform}"

    def stop(self) -> None:
        self.receiver.stop()
        self.system.stop()

    def session(self, role: str, subject: str):
        sessions = self.local.__dict__.setdefault("sessions", {})
        if (role, subject) not in sessions:
            sessions[(role, subject)] = self.system.session(role, subject)
        return sessions[(role, subject)]

    def register(self, code: str, name: str) -> None:
        self.session("regulator", "samr").put(
            self.system.url("registry", f"/v1/registry/entities/{code}"),
            json={"name": name}).raise_for_status()
        for platform in self.platforms:
            self.session("platform", platform).post(
                self.system.url("registry", f"/v1/registry/entities/{code}/memberships"),
                json={"platform_id": platform, "shop_id": f"shop-{code[-6:]}"}).raise_for_status()

    def register_all(self, bodies: list[dict]) -> None:
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda b: self.register(b["uscc"], b["entity_name"]), bodies))

    def quiet(self, timeout: float = 600) -> None:
        """Every queue of the run's vhost empty in two readings a statistics interval apart."""
        deadline, zeros = time.monotonic() + timeout, 0
        while zeros < 2:
            zeros = zeros + 1 if self.infra.queued(self.system.vhost) == 0 else 0
            if time.monotonic() > deadline:
                raise SystemExit(f"the system did not become quiet within {timeout:.0f} s")
            time.sleep(5.5 if zeros else 1)

    def imposed(self, platform: str) -> dict[str, float]:
        """restriction id -> arrival (monotonic) of the first imposition notice."""
        return {r.json()["restriction"]["restriction_id"]: r.at
                for r in self.receiver.unique(self.hook(platform)).values() if r.kind == "imposed"}

    def post(self, bodies: list[dict]) -> None:
        agency = self.session("agency", "FJAMR")
        for start in range(0, len(bodies), BATCH):
            answer = agency.post(self.system.url("violations", "/v1/violations:batch"),
                                 json={"records": bodies[start:start + BATCH]}, timeout=600)
            answer.raise_for_status()
            bad = [r for r in answer.json()["results"] if r["status"] != "recorded"]
            if bad:
                raise SystemExit(f"violations not recorded: {bad[:3]}")

    def classes(self, codes: list[str]) -> dict[str, dict]:
        from services.scoring.scores import current
        scores = current(self.system.db("scoring"))
        return {d["_id"]: d for d in scores.find({"_id": {"$in": codes}})}

    def gate(self, codes: list[str]) -> dict[str, set[str]]:
        http = self.session("gatekeeper", "bench-bank")
        out = {}
        for start in range(0, len(codes), 1000):
            answer = http.post(self.system.url("restrictions", "/v1/status:batch"),
                               json={"codes": codes[start:start + 1000]}, timeout=120)
            answer.raise_for_status()
            for result in answer.json()["results"]:
                out[result["uscc"]] = {m["restriction_id"] for s in result["sectors"].values()
                                       for m in s["measures"]}
        return out


def scored(scores: dict[str, dict], body: dict) -> bool:
    """The entity's score counts this violation."""
    return any(c.get("violation_id") == vid(body)
               for c in (scores.get(body["uscc"]) or {}).get("explanation", ()))


def check(world: World, bodies: list[dict]) -> tuple[list[str], list[dict]]:
    """Problems with the outcome (none when complete), and each violation's expected outcome."""
    codes = [b["uscc"] for b in bodies]
    scores, at_gate = world.classes(codes), world.gate(codes)
    problems, outcomes = [], []
    platform_expected: set[str] = set()
    for body in bodies:
        score = scores.get(body["uscc"])
        if not scored(scores, body):
            problems.append(f"no score with {vid(body)} for {body['uscc']}")
        want = expected_measures(body, (score or {}).get("risk_class"))
        if at_gate.get(body["uscc"], set()) != set(want):
            problems.append(f"gate for {body['uscc']}: {sorted(at_gate.get(body['uscc'], ()))} "
                            f"!= expected {sorted(want)}")
        on_platforms = {r for r, sector in want.items() if sector == "platforms"}
        platform_expected |= on_platforms
        outcomes.append({"restrictions": len(want), "notices": len(on_platforms) * K})
    for platform in world.platforms:
        got = set(world.imposed(platform))
        if got != platform_expected:
            problems.append(f"{platform}: {len(got & platform_expected)} of "
                            f"{len(platform_expected)} notices, {len(got - platform_expected)} "
                            f"unexpected")
        if world.receiver.duplicates(world.hook(platform)):
            problems.append(f"{platform}: {world.receiver.duplicates(world.hook(platform))} "
                            f"duplicate notices")
    for service in world.system.services:
        staged = world.system.db(service).outbox.count_documents({})
        if staged:
            problems.append(f"{service}: {staged} outbox entries")
    if world.infra.queued(world.system.vhost):
        problems.append("messages still queued")
    audit = subprocess.run([sys.executable, "-m", "shared.cli", "audit", "verify"], cwd=ROOT,
                           capture_output=True, text=True, timeout=600,
                           env={**os.environ, "DB_PREFIX": world.system.db_prefix})
    if audit.returncode != 0:
        problems.append(f"audit verify failed: {audit.stdout[-500:]} {audit.stderr[-500:]}")
    return problems, outcomes


def finished_at(world: World, bodies: list[dict], start_wall: float,
                start_mono: float) -> dict[str, float]:
    """Seconds from the first POST to the last notice, restriction and score stored."""
    from services.scoring.scores import current
    notices = max((at for p in world.platforms for at in world.imposed(p).values()),
                  default=start_mono) - start_mono
    codes = [b["uscc"] for b in bodies]
    restrictions = [d["imposed_at"] for d in world.system.db("restrictions").restrictions.find(
        {}, {"imposed_at": 1})]
    scores = [d["computed_at"] for d in current(world.system.db("scoring")).find(
        {"_id": {"$in": codes}}, {"computed_at": 1})]
    return {"notices": notices,
            "restrictions": max(t.timestamp() for t in restrictions) - start_wall,
            "scores": max(t.timestamp() for t in scores) - start_wall}


def wait_complete(world: World, bodies: list[dict], expected_notices: int,
                  timeout: float = 3600) -> None:
    deadline = time.monotonic() + timeout
    while sum(len(world.imposed(p)) for p in world.platforms) < expected_notices:
        if time.monotonic() > deadline or world.system.dead():
            raise SystemExit(f"incomplete after {timeout:.0f} s: "
                             f"{sum(len(world.imposed(p)) for p in world.platforms)} of "
                             f"{expected_notices} notices; dead: {world.system.dead()}")
        time.sleep(1)
    world.quiet(timeout)


def idle_latency(world: World, runs: int = 3) -> list[float]:
    """Seconds from POST to notices, gate and score, one serious listed violation at a time."""
    rng = random.Random(SEED + 1)
    from tests.factories import make_uscc
    bodies = [record("serious_listed", make_uscc("350100", rng), 900_000 + i, rng)
              for i in range(runs)]
    world.register_all(bodies)
    world.quiet()
    agency, out = world.session("agency", "FJAMR"), []
    for body in bodies:
        want = expected_measures(body, None)
        notices = {r for r, s in want.items() if s == "platforms"}
        settle(3)
        start = time.perf_counter()
        agency.post(world.system.url("violations", "/v1/violations"), json=body,
                    timeout=60).raise_for_status()
        seen = {"notices": False, "gate": False, "score": False}
        while not all(seen.values()):
            if time.perf_counter() - start > 120:
                raise SystemExit(f"one violation not through within 120 s: {seen}")
            seen["notices"] = seen["notices"] or all(
                notices <= set(world.imposed(p)) for p in world.platforms)
            seen["gate"] = seen["gate"] or set(want) <= world.gate([body["uscc"]])[body["uscc"]]
            seen["score"] = seen["score"] or scored(world.classes([body["uscc"]]), body)
            time.sleep(0.01)
        out.append(time.perf_counter() - start)
    return out


# -- printing -----------------------------------------------------------------------------------
ROWS = (  # label, path into the per-violation figures, format
    ("CPU ms, all processes", ("cpu_ms_total",), "{:,.1f}"),
    ("store commits (PostgreSQL under FerretDB)", ("store", "xact_commit"), "{:,.1f}"),
    ("store transactions rolled back", ("store", "xact_rollback"), "{:,.1f}"),
    ("store rows inserted", ("store", "tup_inserted"), "{:,.1f}"),
    ("store rows updated", ("store", "tup_updated"), "{:,.1f}"),
    ("store rows deleted", ("store", "tup_deleted"), "{:,.1f}"),
    ("store rows fetched (by index)", ("store", "tup_fetched"), "{:,.1f}"),
    ("store rows read by scans (tup_returned)", ("store", "tup_returned"), "{:,.0f}"),
    ("broker messages published", ("broker", "published"), "{:,.1f}"),
    ("broker messages delivered", ("broker", "delivered"), "{:,.1f}"),
)
FLOOR_KEYS = {("cpu_ms_total",): "cpu_ms_total", ("store", "xact_commit"): "commits",
              ("broker", "published"): "published", ("broker", "delivered"): "delivered"}


def dig(figures: dict | None, path: tuple) -> float | None:
    for key in path:
        if not isinstance(figures, dict) or key not in figures:
            return None
        figures = figures[key]
    return figures


def show(result: dict, before: dict | None) -> None:
    def cell(value, fmt="{:,.1f}"):
        return f"{fmt.format(value):>12}" if value is not None else f"{'-':>12}"

    print(f"\n== cost per violation: {result['n']:,} violations, {result['platforms']} platforms, "
          f"{result['instances']} instance(s) per service, {result['cores']} cores")
    print(f"  {'':<44}{'this run':>12}{'net of idle':>12}{'floor':>12}"
          f"{'before':>12}")
    for label, path, fmt in ROWS:
        print(f"  {label:<44}{cell(dig(result['gross'], path), fmt)}"
              f"{cell(dig(result['net'], path), fmt)}"
              f"{cell(dig(result['floor'], (FLOOR_KEYS[path],)) if path in FLOOR_KEYS else None)}"
              f"{cell(dig((before or {}).get('gross'), path), fmt)}")
    print(f"  {'violations/s end to end':<44}{cell(result['violations_per_s'])}{cell(None)}"
          f"{cell(result['floor']['violations_per_s'])}"
          f"{cell((before or {}).get('violations_per_s'))}")
    print(f"  {'one violation on the idle system, s (median)':<44}"
          f"{cell(result['idle_latency_s'], '{:,.2f}')}{cell(None)}{cell(None)}"
          f"{cell((before or {}).get('idle_latency_s'), '{:,.2f}')}")
    print("  CPU ms per violation by process (this run / net of idle / before):")
    for name, value in sorted(result["gross"]["cpu_ms"].items(), key=lambda kv: -kv[1]):
        print(f"    {name:<42}{value:>10,.1f}{result['net']['cpu_ms'][name]:>12,.1f}"
              f"{cell(dig((before or {}).get('gross'), ('cpu_ms', name)))}")
    for label, figures in (("this run", result), ("before", before)):
        if figures and "delivered_by_queue" in figures["gross"]:
            print(f"  deliveries per violation by queue, {label}: " + ", ".join(
                f"{name} {value:.2f}" for name, value in figures["gross"]["delivered_by_queue"].items()))
    f, u = result["floor"], result["unit_costs"]
    print(f"  floor: {f['writes']:.1f} store writes (violation, restrictions, notices, score) and "
          f"{f['published']:.1f} publishes per violation at b00's {u['insert_per_s']:,.0f} "
          f"inserts/s and {u['publish_confirmed_per_s']:,.0f} confirmed publishes/s; "
          f"{u['cpu_ms_per_store_op']:.2f} ms CPU and {u['commits_per_store_op']:.2f} commits "
          f"per store operation, {u['cpu_ms_per_publish']:.2f} ms CPU per publish")
    print(f"  idle system: {result['idle_cpu_ms_per_s']:,.0f} ms CPU, "
          f"{result['idle_commits_per_s']:,.1f} commits, "
          f"{result['idle_delivered_per_s']:,.1f} deliveries per second; the run took "
          f"{result['seconds']:,.0f} s; after the first POST the last notice arrived at "
          f"{result['completed_parts_s']['notices']:,.1f} s, the last restriction was stored at "
          f"{result['completed_parts_s']['restrictions']:,.1f} s, the last score at "
          f"{result['completed_parts_s']['scores']:,.1f} s")
    if before:
        print(f"  before: commit {before['commit']}, {before['n']:,} violations, "
              f"{before['when']}: {before.get('note', '')}")
    print(f"  (CPU and times from a machine shared with other work: {os.cpu_count()} cores, load "
          f"average {os.getloadavg()[0]:.1f} at the end; the counts are the stable figures)")


def main() -> None:
    started = datetime.now(timezone.utc)
    with PrivateInfra("b70") as infra:
        units = unit_costs(infra)
        world = World(infra)
        try:
            if CPUS:
                pin(infra, world.system)
            bodies = [body for _, body in population(N)]
            print(f"  registering {N:,} entities on {K} platforms ...", flush=True)
            world.register_all(bodies)
            world.quiet()
            counters = Counters(infra, world.system)
            settle(STATS_LAG)
            idle_a = counters.snapshot()
            time.sleep(20)
            idle = Counters.delta(idle_a, counters.snapshot())
            expected_notices = sum(len({r for r, s in expected_measures(b, None).items()
                                        if s == "platforms"}) for b in bodies) * K
            print(f"  posting {N:,} violations ({expected_notices:,} notices expected) ...",
                  flush=True)
            before = counters.snapshot()
            start_wall, start_mono = time.time(), time.monotonic()
            world.post(bodies)
            wait_complete(world, bodies, expected_notices)
            settle(STATS_LAG)
            run = Counters.delta(before, counters.snapshot())
            completed = finished_at(world, bodies, start_wall, start_mono)
            problems, outcomes = check(world, bodies)
            if problems:
                raise SystemExit("incomplete:\n  " + "\n  ".join(problems[:20]))
            latencies = idle_latency(world)
        finally:
            world.stop()
    result = {
        "commit": _commit(), "when": started.isoformat(timespec="seconds"), "n": N,
        "platforms": K, "instances": INSTANCES, "seed": SEED, "cores": os.cpu_count(),
        "pinned": CPUS, "seconds": run["seconds"], "completed_s": max(completed.values()),
        "completed_parts_s": completed, "violations_per_s": N / max(completed.values()), "idle_latency_s": statistics.median(latencies),
        "idle_latencies_s": latencies,
        "gross": per_unit(run, N), "net": per_unit(run, N, idle),
        "idle_cpu_ms_per_s": sum(idle["cpu"].values()) * 1000 / idle["seconds"],
        "idle_commits_per_s": idle["store"]["xact_commit"] / idle["seconds"],
        "idle_delivered_per_s": idle["broker"]["delivered"] / idle["seconds"],
        "unit_costs": units, "floor": floor(outcomes, units),
    }
    before_figures = json.loads(BASELINE.read_text()) if BASELINE.exists() else None
    show(result, before_figures)
    results = ROOT / "bench" / "results"
    results.mkdir(exist_ok=True)
    (results / "b70_cost.json").write_text(json.dumps(result, indent=1))
    if os.environ.get("BENCH_COST_SAVE"):
        with open(os.environ["BENCH_COST_SAVE"], "w") as out:
            json.dump(result, out, indent=1)
            out.write("\n")


def _commit() -> str:
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                          text=True).stdout.strip()


if __name__ == "__main__":
    if len(sys.argv) > 1:
        N = int(sys.argv[1])
    main()
