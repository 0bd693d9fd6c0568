"""Scoring service: credit score and risk class per entity, recomputed from the records."""
from __future__ import annotations

from datetime import datetime, timezone

from nameko.timer import timer

from contracts.events import make_event, read_event
from contracts.violation import ViolationSchema
from shared.outbox import Outbox
from shared.entrypoints import PUBLIC, event_handler, http, json_response, problem
from shared.locks import doc_lock
from shared.logging import CorrelationId, Log
from shared.mongo import Mongo
from shared.service import Dispatcher, health, published
from services.restrictions.gate import BadQuery, parse_code
from services.scoring.model import ScoreModel

MODEL = ScoreModel.load()


def ensure_indexes(db) -> None:
    """Every collection here is read by id only (per entity); nothing to add."""


def merge_version(records: list[dict], incoming: dict) -> list[dict] | None:
    """The entity's records with ``incoming`` applied if it is newer; None if it is not."""
    for i, current in enumerate(records):
        if current["violation_id"] == incoming["violation_id"]:
            if current["version"] >= incoming["version"]:
                return None  # a redelivered or stale event
            return records[:i] + [incoming] + records[i + 1:]
    return records + [incoming]


@published
class ScoringService:
    name = "scoring"

    db = Mongo("scoring", indexes=ensure_indexes)
    dispatch = Dispatcher()
    log = Log()
    correlation_id = CorrelationId()

    @event_handler("violations", "ViolationRecorded")
    def on_violation_recorded(self, body):
        self._apply(body)

    @event_handler("violations", "ViolationAmended")
    def on_violation_amended(self, body):
        self._apply(body)

    @event_handler("violations", "ViolationRevoked")
    def on_violation_revoked(self, body):
        self._apply(body)

    def _apply(self, body):
        envelope, payload = read_event(body)
        record = ViolationSchema().dump(payload["record"])
        code = record["uscc"]
        with doc_lock(self.db.records, code):
            doc = self.db.records.find_one({"_id": code}) or {"records": []}
            records = merge_version(doc["records"], {
                "violation_id": payload["violation_id"], "version": payload["version"],
                "status": payload["status"], "record": record})
            if records is not None:
                self.db.records.update_one({"_id": code}, {"$set": {"records": records}},
                                           upsert=True)
        self.recompute(code, cause=envelope["event_id"])

    def recompute(self, code: str, cause: str) -> None:
        with doc_lock(self.db.scores, code):
            self._recompute_locked(code, cause)

    def _recompute_locked(self, code: str, cause: str) -> bool:
        now = datetime.now(timezone.utc)
        doc = self.db.records.find_one({"_id": code}) or {"records": []}
        records = [ViolationSchema().load(r["record"]) for r in doc["records"]
                   if r["status"] == "active"]
        result = MODEL.score(records, now)
        current = self.db.scores.find_one({"_id": code}) or {}
        if current.get("score") == result.score and current.get("risk_class") == result.risk_class:
            return False  # a redelivered event, or nothing that moves the score
        event = make_event("CreditChanged", {
            "uscc": code, "old_score": current.get("score"), "new_score": result.score,
            "old_class": current.get("risk_class"), "new_class": result.risk_class,
            "model_version": result.model_version, "cause_event_id": cause},
            producer=self.name, correlation_id=self.correlation_id,
            event_id=f"credit:{code}:{cause}:{result.score}")
        # Only the latest event id is kept (a score document must not grow with every change):
        # an unpublished older CreditChanged is superseded by the newer one, which carries the
        # current class, and that is what consumers act on.
        with Outbox(self.db, self.dispatch).staged(self.db.scores, code, [event]):
            self.db.scores.update_one({"_id": code}, {
                "$set": {"score": result.score, "risk_class": result.risk_class,
                         "explanation": result.contributions,
                         "model_version": result.model_version, "computed_at": now,
                         "event_ids": [event["event_id"]]}}, upsert=True)
        self.log.info("credit changed", new_class=result.risk_class, new_score=result.score,
                      old_class=current.get("risk_class"))
        return True

    @http("GET", "/v1/scores/<string:code>", roles=("regulator",))
    def get_score(self, request, code):
        """Regulator view: score, risk class and its explanation. (Not for public use.)"""
        try:
            code = parse_code(code)
        except BadQuery as exc:
            return problem(400, "invalid query", exc.errors)
        doc = self.db.scores.find_one({"_id": code}, {"event_ids": 0})
        if doc is None:
            return json_response(200, {"uscc": code, "score": MODEL.data["base"],
                                       "risk_class": "A", "explanation": [],
                                       "model_version": MODEL.version, "record": "none"})
        doc["uscc"] = doc.pop("_id")
        return json_response(200, doc)

    @http("GET", "/health", roles=PUBLIC)
    def health(self, request):
        return health(self.name, self.db)

    @timer(interval=3600)
    def fade_daily(self):
        """Deductions fade with time: recompute every scored entity (hourly is cheap enough)."""
        for doc in self.db.scores.find({}, {"_id": 1}):
            self.recompute(doc["_id"], cause=f"fade:{datetime.now(timezone.utc).date()}")

    @timer(interval=2)
    def relay_outbox(self):
        Outbox(self.db, self.dispatch).sweep()
