"""Scoring service: credit score and risk class per entity, and risk-based inspection plans.

- Facts (violation versions, repairs, positive records) are kept per entity in ``records``;
  every change recomputes that entity's score and emits CreditChanged when score or class moved.
- A daily run (``rescore.py``) scores every entity again as deductions fade (checked every
  ``RESCORE_CHECK_SECONDS``, default 600; the model file is ``SCORE_MODEL_PATH``, default
  ``catalog/score_model.json``).
- The risk class is for regulators only: the public view shows neither class nor score.
- Inspection plans (双随机、一公开) draw random targets per class and two inspectors each;
  results are recorded per target and published.
"""
from __future__ import annotations

import os
from datetime import datetime, timezone

from nameko.extensions import DependencyProvider
from nameko.timer import timer
from pymongo.errors import DuplicateKeyError

from contracts.events import read_event
from contracts.scoring import (InspectionResultSchema, PlanRequestSchema, PlanSchema,
                               PositiveRecordRequestSchema, PublicCreditViewSchema,
                               PublishedResultsSchema, ScoreViewSchema)
from rules import inspections, loader
from rules import uscc as uscc_codes
from rules.inspections import DEFAULT_RATIOS
from rules.periods import day_of, today
from shared.auth import ROLES, Caller
from shared.entrypoints import event_handler, http, json_response, problem, read_json
from shared.locks import doc_lock
from shared.logging import CorrelationId, Log
from shared.mongo import Mongo
from shared.outbox import Outbox
from shared.service import Dispatcher, published
from shared.queries import BadQuery, parse_code
from services.scoring import facts, scores
from services.scoring.rescore import Rescorer

# Refuse to start on an invalid catalog file: the import fails with every problem named.
CATALOGS = loader.load()
MODEL = CATALOGS.score_model
SCOPE = CATALOGS.regions
JURISDICTIONS = CATALOGS.agencies
RESCORE_CHECK_SECONDS = float(os.environ.get("RESCORE_CHECK_SECONDS", "600"))
ANY_ROLE = tuple(role for role in ROLES if role != "administrator")  # admins always pass

_score_view = ScoreViewSchema()
_public_view = PublicCreditViewSchema()
_plan_view = PlanSchema()
_published_view = PublishedResultsSchema()


def ensure_indexes(db) -> None:
    """Hot paths read by id. The plan population is read by region (an index on MongoDB;
    the local store scans, which a rarely drawn plan can afford)."""
    scores.current(db).create_index("region_code")


class RescoreState(DependencyProvider):
    """Per container: is a daily run building, and which entities changed meanwhile."""

    def setup(self):
        self.running = False
        self.touched: set[str] = set()

    def get_dependency(self, worker_ctx):
        return self


@published
class ScoringService:
    name = "scoring"

    db = Mongo("scoring", indexes=ensure_indexes)
    dispatch = Dispatcher()
    rescore_state = RescoreState()
    log = Log()
    caller = Caller()
    correlation_id = CorrelationId()

    # -- facts from events -----------------------------------------------------------------
    @event_handler("violations", "ViolationRecorded")
    def on_violation_recorded(self, body):
        self._apply_violation(body)

    @event_handler("violations", "ViolationAmended")
    def on_violation_amended(self, body):
        self._apply_violation(body)

    @event_handler("violations", "ViolationRevoked")
    def on_violation_revoked(self, body):
        self._apply_violation(body)

    def _apply_violation(self, body):
        envelope, payload = read_event(body)
        record = payload["record"]
        written = self._change_records(record["uscc"], lambda doc: facts.apply_violation(
            doc, payload["violation_id"], payload["version"], payload["status"], record))
        # Recompute even when nothing changed: it finishes what a crash may have interrupted.
        self.recompute(record["uscc"], cause=envelope["event_id"], record_doc=written)
        self.log.info("violation applied", violation_id=payload["violation_id"],
                      version=payload["version"], new_version=written is not None)

    @event_handler("repair", "RecordRepaired")
    def on_record_repaired(self, body):
        envelope, payload = read_event(body)
        written = self._change_records(payload["uscc"], lambda doc: facts.apply_repair(doc, payload))
        self.recompute(payload["uscc"], cause=envelope["event_id"], record_doc=written)
        self.log.info("repair applied", violation_id=payload["violation_id"],
                      scope=payload["scope"], new=written is not None)

    @event_handler("registry", "EntityRegistered")
    def on_entity_registered(self, body):
        envelope, payload = read_event(body)
        written = self._change_records(payload["uscc"], lambda doc: facts.apply_registration(
            doc, payload["name"], payload["provisional"]))
        self.recompute(payload["uscc"], cause=envelope["event_id"], record_doc=written)

    def _change_records(self, code: str, change) -> dict | None:
        """Apply ``change(doc) -> bool`` to the entity's facts (insert first: a new entity
        costs one insert, not a look-up and an upsert). Returns the document as now stored
        when it changed (the score is computed from it, not read back), else None."""
        now = datetime.now(timezone.utc)
        with doc_lock(self.db.records, code):
            doc = facts.new_entity(code)
            if change(doc):
                try:
                    self.db.records.insert_one({**doc, "updated_at": now})
                    return {**doc, "updated_at": now}
                except DuplicateKeyError:
                    pass
            doc = self.db.records.find_one({"_id": code})
            if doc is None:  # nothing to record for an unknown entity
                return None
            if not change(doc):
                return None
            self.db.records.update_one({"_id": code}, {"$set": {
                **{key: doc.get(key) for key in facts.FACT_LISTS}, "name": doc.get("name"),
                "updated_at": now}})
        return {**doc, "updated_at": now}

    # -- scores ----------------------------------------------------------------------------
    def recompute(self, code: str, cause: str, record_doc: dict | None = None) -> bool:
        """``record_doc``: the entity's facts as the caller just stored them (else read)."""
        with doc_lock(self.db.records, f"score:{code}"):
            changed = self._recompute_locked(code, cause, record_doc)
        if self.rescore_state.running:
            self.rescore_state.touched.add(code)
        return changed

    def _recompute_locked(self, code: str, cause: str, record_doc: dict | None = None) -> bool:
        if record_doc is None:
            record_doc = self.db.records.find_one({"_id": code})
        if record_doc is None:
            return False
        now = datetime.now(timezone.utc)
        doc, _ = scores.build(MODEL, record_doc, today(), now)
        collection = scores.current(self.db)
        current = collection.find_one({"_id": code}, {"event_ids": 0, "computed_at": 0})
        if current is not None and all(current.get(k) == v for k, v in doc.items()
                                       if k not in ("computed_at", "_id")):
            return False  # a redelivered event, or nothing that changes the score
        events = []
        if scores.is_news(MODEL, current, doc):
            events = [scores.credit_changed(doc, current, cause, self.correlation_id)]
        doc["event_ids"] = [e["event_id"] for e in events]
        # Only the latest event id is kept (a score document must not grow with every change):
        # an unpublished older CreditChanged is superseded by the newer one, which carries the
        # current class, and that is what consumers act on.
        if events:
            with Outbox(self.db, self.dispatch).staged(collection, code, events):
                self._write_score(collection, current, doc)
        else:
            self._write_score(collection, current, doc)
        if events:
            self.log.info("credit changed", uscc=uscc_codes.mask(code),
                          new_class=doc["risk_class"], new_score=doc["score"],
                          old_class=(current or {}).get("risk_class"))
        return bool(events)

    @staticmethod
    def _write_score(collection, current, doc) -> None:
        if current is None:
            try:
                collection.insert_one(doc)
                return
            except DuplicateKeyError:
                pass
        collection.update_one({"_id": doc["_id"]}, {"$set": {
            k: v for k, v in doc.items() if k != "_id"}})

    @timer(interval=RESCORE_CHECK_SECONDS)
    def rescore_daily(self):
        """Deductions fade day by day: once a day (checked every few minutes) every entity is
        scored again into a new generation; entities touched meanwhile are scored again after."""
        state = self.rescore_state
        if state.running:
            return
        state.running = True
        day = today()
        try:
            return Rescorer(self.db, MODEL, self._publish, correlation_id=self.correlation_id,
                            log=self.log).run(day)
        finally:
            state.running = False
            touched, state.touched = state.touched, set()
            for code in sorted(touched):
                self.recompute(code, cause=f"rescore:{day.isoformat()}:touched")

    def _publish(self, event: dict) -> None:
        self.dispatch(event["type"], event)

    @http("GET", "/v1/scores/<string:code>", roles=("regulator",))
    def get_score(self, request, code):
        """Regulator view: score, risk class, why, and every contribution. (Not public.)"""
        try:
            code = parse_code(code)
        except BadQuery as exc:
            return problem(400, "invalid query", exc.errors)
        doc = scores.current(self.db).find_one({"_id": code}, {"event_ids": 0})
        if doc is None:
            score, risk_class = scores.default_state(MODEL)
            doc = {"_id": code, "known": False, "score": score, "risk_class": risk_class,
                   "class_reason": "nothing is recorded against this entity",
                   "base": float(MODEL.base), "explanation": [],
                   "model_version": MODEL.version, "day": today().isoformat(),
                   "record": "none"}
        doc["uscc"] = doc.pop("_id")
        doc.setdefault("known", True)
        return json_response(200, _score_view.dump(doc))

    @http("GET", "/v1/scores/<string:code>/public", roles=ANY_ROLE)
    def get_public_view(self, request, code):
        """Any authenticated role: the records that bear on the entity's credit and are public.
        Neither the class nor the score (with the published thresholds it gives the class)."""
        try:
            code = parse_code(code)
        except BadQuery as exc:
            return problem(400, "invalid query", exc.errors)
        doc = scores.current(self.db).find_one({"_id": code}, {"name": 1, "day": 1,
                                                               "explanation": 1}) or {}
        return json_response(200, _public_view.dump({
            "uscc": code, "name": doc.get("name"), "day": doc.get("day") or today().isoformat(),
            "records": scores.public_records(doc.get("explanation", []))}))

    # -- positive records ------------------------------------------------------------------
    @http("POST", "/v1/positive-records", roles=("agency", "regulator"))
    def post_positive_record(self, request):
        data = PositiveRecordRequestSchema().load(read_json(request))
        errors = []
        if data["kind"] not in MODEL.positive_kinds:
            errors.append({"field": "kind", "problem": f"unknown kind {data['kind']!r} (known: "
                                                       f"{', '.join(sorted(MODEL.positive_kinds))})"})
        issuer = self.caller.subject
        if self.caller.role == "agency":
            agency = JURISDICTIONS.agencies.get(issuer.split("-")[0])
            region = data["uscc"][2:8]
            if agency is None:
                errors.append({"field": "issuer", "problem": f"unknown agency {issuer}"})
            elif not any(region.startswith(prefix) for prefix in agency.regions):
                errors.append({"field": "uscc", "problem": f"entity region {region} is outside "
                                                           f"{agency.code}'s jurisdiction"})
        if errors:
            return problem(400, "invalid request", errors)
        record_id = f"{issuer}/{data['key']}"
        positive = {"record_id": record_id, "uscc": data["uscc"], "kind": data["kind"],
                    "title": data["title"], "awarded_at": _ms(data["awarded_at"]),
                    "issued_by": issuer, "document_number": data.get("document_number")}
        try:
            self.db.positive_records.insert_one({"_id": record_id, **positive,
                                                 "recorded_at": datetime.now(timezone.utc)})
            status = 201
        except DuplicateKeyError:
            stored = self.db.positive_records.find_one({"_id": record_id})
            if any(_same(stored.get(k), v) is False for k, v in positive.items()):
                return problem(409, f"conflict: key {data['key']!r} of {issuer} already names a "
                                    f"different positive record")
            status = 200
        self._change_records(data["uscc"], lambda doc: facts.apply_positive(doc, positive))
        self.recompute(data["uscc"], cause=f"positive:{record_id}")
        return json_response(status, {"record_id": record_id, "uscc": data["uscc"],
                                      "status": "recorded" if status == 201 else "duplicate"})

    # -- inspection plans ------------------------------------------------------------------
    @http("POST", "/v1/inspection-plans", roles=("regulator",))
    def post_plan(self, request):
        data = PlanRequestSchema().load(read_json(request))
        errors = SCOPE.problems(data["region"], data["industry"])
        if errors:
            return problem(400, "invalid request", errors)
        ratios = {**DEFAULT_RATIOS, **data["ratios"]}
        candidates, names = self._population(data["region"], data["industry"])
        roster = [{"id": i["id"], "conflicts": i["conflicts"]} for i in data["roster"]]
        try:
            drawn = inspections.draw_plan(candidates, ratios, roster, data["seed"])
        except inspections.AssignmentImpossible as exc:
            return problem(422, f"no conflict-free assignment for target {exc.target}", [
                {"field": "roster", "problem": str(exc)}])
        request_key = {"region": data["region"], "industry": data["industry"],
                       "period": {k: v.isoformat() for k, v in data["period"].items()},
                       "seed": data["seed"], "ratios": ratios,
                       "roster": [{"id": i["id"], "name": i["name"],
                                   "conflicts": sorted(i["conflicts"])} for i in data["roster"]]}
        digest = inspections.population_digest(candidates)
        plan_id = inspections.plan_id(request_key, digest)
        plan = {"_id": plan_id, "status": "planned", **request_key,
                "region_name": SCOPE.regions[data["region"]], "classes": drawn["classes"],
                "population_digest": digest, "model_version": MODEL.version,
                "targets": [{**t, "name": names.get(t["uscc"]), "result": None}
                            for t in drawn["targets"]],
                "created_at": _ms(datetime.now(timezone.utc)),
                "created_by": f"{self.caller.role}:{self.caller.subject}"}
        try:
            self.db.plans.insert_one(plan)
            status = 201
        except DuplicateKeyError:
            plan = self.db.plans.find_one({"_id": plan_id})
            status = 200  # the same request over the same population: the same plan
        self.log.info("inspection plan drawn", plan_id=plan_id, targets=len(plan["targets"]),
                      region=data["region"], new=status == 201)
        return json_response(status, self._plan_body(plan))

    def _population(self, region: str, industry: str) -> tuple[list[tuple[str, str]], dict]:
        low, high = inspections.prefix_range(inspections.region_prefix(region))
        candidates, names = [], {}
        cursor = scores.current(self.db).find(
            {"region_code": {"$gte": low, "$lt": high}},
            {"risk_class": 1, "entity_type": 1, "name": 1}).batch_size(1000)
        for doc in cursor:
            if SCOPE.matches_industry(industry, doc.get("entity_type")):
                candidates.append((doc["_id"], doc["risk_class"]))
                names[doc["_id"]] = doc.get("name")
        return candidates, names

    @staticmethod
    def _plan_body(plan: dict) -> dict:
        return _plan_view.dump({**plan, "plan_id": plan["_id"]})

    @http("GET", "/v1/inspection-plans/<string:plan_id>", roles=("regulator",))
    def get_plan(self, request, plan_id):
        plan = self.db.plans.find_one({"_id": plan_id})
        if plan is None:
            return problem(404, f"no inspection plan {plan_id}")
        return json_response(200, self._plan_body(plan))

    @http("POST", "/v1/inspection-plans/<string:plan_id>/results", roles=("regulator",))
    def post_result(self, request, plan_id):
        data = InspectionResultSchema().load(read_json(request))
        with doc_lock(self.db.plans, plan_id):
            plan = self.db.plans.find_one({"_id": plan_id})
            if plan is None:
                return problem(404, f"no inspection plan {plan_id}")
            if plan["status"] == "published":
                return problem(409, f"plan {plan_id} is published; its results are final")
            index = next((i for i, t in enumerate(plan["targets"]) if t["uscc"] == data["uscc"]),
                         None)
            if index is None:
                return problem(400, "invalid request", [{"field": "uscc", "problem":
                                                         f"not a target of plan {plan_id}"}])
            start, end = plan["period"]["start"], plan["period"]["end"]
            if not start <= day_of(data["inspected_at"]).isoformat() <= end:
                return problem(400, "invalid request", [{"field": "inspected_at", "problem":
                                                         f"outside the plan period {start} to {end}"}])
            result = {"outcome": data["outcome"], "finding": data["finding"],
                      "inspected_at": _ms(data["inspected_at"]),
                      "recorded_by": f"{self.caller.role}:{self.caller.subject}",
                      "recorded_at": datetime.now(timezone.utc)}
            previous = plan["targets"][index].get("result")
            if previous and all(_same(previous.get(k), result[k]) for k in
                                ("outcome", "finding", "inspected_at")):
                return json_response(200, {"plan_id": plan_id, "uscc": data["uscc"],
                                           "status": "duplicate"})
            self.db.plans.update_one({"_id": plan_id},
                                     {"$set": {f"targets.{index}.result": result}})
        return json_response(201 if previous is None else 200, {
            "plan_id": plan_id, "uscc": data["uscc"],
            "status": "recorded" if previous is None else "corrected"})

    @http("POST", "/v1/inspection-plans/<string:plan_id>/publication", roles=("regulator",))
    def publish_results(self, request, plan_id):
        """一公开: make the plan's results public. Every target needs a result first."""
        with doc_lock(self.db.plans, plan_id):
            plan = self.db.plans.find_one({"_id": plan_id})
            if plan is None:
                return problem(404, f"no inspection plan {plan_id}")
            missing = [t["uscc"] for t in plan["targets"] if not t.get("result")]
            if missing:
                return problem(409, f"{len(missing)} target(s) have no result yet", [
                    {"field": "targets", "problem": f"no result for {code}"} for code in missing[:20]])
            now = _ms(datetime.now(timezone.utc))
            published = {
                "_id": plan_id, "region": plan["region"], "region_name": plan["region_name"],
                "industry": plan["industry"], "period": plan["period"], "published_at": now,
                "results": [{"uscc": t["uscc"], "name": t.get("name"),
                             "outcome": t["result"]["outcome"], "finding": t["result"]["finding"],
                             "inspected_at": t["result"]["inspected_at"]}
                            for t in sorted(plan["targets"], key=lambda t: t["uscc"])]}
            try:
                self.db.published_results.insert_one(published)
                status = 201
            except DuplicateKeyError:
                published = self.db.published_results.find_one({"_id": plan_id})
                status = 200
            if plan["status"] != "published":
                self.db.plans.update_one({"_id": plan_id}, {"$set": {
                    "status": "published", "published_at": published["published_at"]}})
        return json_response(status, _published_view.dump({**published, "plan_id": plan_id}))

    @http("GET", "/v1/inspection-results/<string:plan_id>", roles=ANY_ROLE)
    def get_published_results(self, request, plan_id):
        published = self.db.published_results.find_one({"_id": plan_id})
        if published is None:
            return problem(404, f"no published results for plan {plan_id}")
        return json_response(200, _published_view.dump({**published, "plan_id": plan_id}))

    # -- plumbing --------------------------------------------------------------------------
    @timer(interval=2)
    def relay_outbox(self):
        Outbox(self.db, self.dispatch).sweep()


def _same(stored, given) -> bool:
    """Equal, reading stored datetimes (UTC from the store) against given aware ones."""
    if isinstance(stored, datetime) and isinstance(given, datetime):
        stored = stored if stored.tzinfo else stored.replace(tzinfo=timezone.utc)
        return stored == given
    return stored == given


def _ms(value: datetime) -> datetime:
    """The store keeps milliseconds: compare and store at that precision."""
    return value.replace(microsecond=value.microsecond // 1000 * 1000)
