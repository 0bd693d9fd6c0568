"""Notifications service: subscriptions, merchant clearance notices, delivery and feedback.

- A restriction imposed or lifted becomes one notice per interested subscriber (platforms
  hear about their own merchants, from the registry's memberships). The notice id is its
  idempotency key, so a redelivered event records nothing new.
- Push notices (webhook, AMQP queue) are handed to the courier (``delivery.py``): signed,
  retried with backoff, dead-lettered after the limit, lifts held behind impositions.
- Subscribers post feedback; a platform reporting a clearance emits ``MerchantCleared``,
  which becomes an informational notice for the merchant's other platforms (互认).
"""
from __future__ import annotations

import json
import os
import uuid
from datetime import datetime, timedelta, timezone

from marshmallow import ValidationError
from nameko.rpc import RpcProxy
from nameko.timer import timer
from pymongo.errors import BulkWriteError, DuplicateKeyError

from contracts.common import Instant
from contracts.events import PAYLOADS, make_event, read_event
from contracts.notifications import (CLEARED, FEEDBACK_STATUSES, FeedbackSchema,
                                     RedeliverSchema, SecretRotationSchema, SubscriptionSchema,
                                     delivery_mode, public_subscription)
from services.notifications import notices, signing, targets
from services.notifications.delivery import Courier
from services.notifications.memberships import Memberships
from services.notifications.feedback import closure, feedback_errors, millis, same_feedback
from rules import loader
from shared import resilience
from shared.auth import Caller
from shared.entrypoints import event_handler, http, json_response, problem, read_json
from shared.locks import doc_lock
from shared.logging import CorrelationId, Log
from shared.mongo import Mongo
from shared.outbox import Outbox
from shared.service import Dispatcher, published

ACT_WITHIN = timedelta(hours=float(os.environ.get("NOTIFY_ACT_WITHIN_HOURS", "72")))
MAX_LIST = 1000


def ensure_indexes(db) -> None:
    db.notices.create_index([("subscriber_id", 1), ("created_at", 1)])
    db.notices.create_index("uscc")
    db.subscriptions.create_index("platform_id")
    db.dead_letters.create_index([("state", 1), ("dead_at", 1)])


# Refuse to start on an invalid catalog file: the import fails with every problem named.
MEASURE_IDS = frozenset(loader.load().measures.measures)


def catalog_measures() -> set[str]:
    """The measure ids a subscription may name (the catalog in force)."""
    return set(MEASURE_IDS)


@published
class NotificationsService:
    name = "notifications"

    db = Mongo("notifications", indexes=ensure_indexes)
    registry = RpcProxy("registry")
    memberships = Memberships()
    courier = Courier()
    dispatch = Dispatcher()
    caller = Caller()
    log = Log()
    correlation_id = CorrelationId()

    # -- notices from restrictions ---------------------------------------------------------
    @event_handler("restrictions", "RestrictionsImposed")
    def on_imposed_many(self, body):
        """One decision's restrictions: a notice per restriction and interested subscriber,
        the merchant's memberships read once, the notices inserted in one batch."""
        envelope, payload = read_event(body)
        self._notify(envelope, payload["restrictions"], "imposed")

    @event_handler("restrictions", "RestrictionImposed")
    def on_imposed(self, body):
        """The shape before RestrictionsImposed, accepted for one release (old dead letters
        replay)."""
        envelope, restriction = read_event(body)
        self._notify(envelope, [restriction], "imposed")

    @event_handler("restrictions", "RestrictionLifted")
    def on_lifted(self, body):
        envelope, payload = read_event(body)
        self._notify(envelope, [payload["restriction"]], "lifted",
                     reason=payload["lift_reason"], lifted_at=payload["lifted_at"])

    def _notify(self, envelope, restrictions, kind, reason=None, lifted_at=None):
        subscriptions = self.courier.subscriptions.all()
        if not subscriptions or not restrictions:
            return
        members = {}
        if any(s["kind"] == "platform" for s in subscriptions):
            members = self._memberships(restrictions[0]["uscc"])  # one entity per event
        now = datetime.now(timezone.utc)
        batch = []
        for restriction in restrictions:
            batch += self._notices(envelope, restriction, kind, subscriptions, members, now,
                                   reason, lifted_at)
        if batch:
            self._record_many(batch)

    def _notices(self, envelope, restriction, kind, subscriptions, members, now, reason,
                 lifted_at) -> list[dict]:
        """The imposition notices to record for ``restriction`` (returned, for one batch
        insert); a lift's notices are recorded here, one after the other."""
        out = []
        for sub in subscriptions:
            interested = notices.wants(sub, restriction, set(members))
            if kind == "lifted" and not interested:
                # told of the imposition (the merchant may have left the platform since)
                interested = self.db.notices.find_one({"_id": notices.imposition_of(
                    restriction["restriction_id"], sub["_id"])}, {"_id": 1}) is not None
            if not interested:
                continue
            shop_id = members.get(sub.get("platform_id"))
            if kind == "lifted":
                # A lift never overtakes its imposition: if the imposition's event has not
                # been handled (yet), its notice is made now from the lift's copy of the
                # restriction (already lifted: nothing to act on). Exists already: no-op.
                self._record(notices.build(
                    "imposed", sub, restriction, shop_id=shop_id, issued_at=now,
                    act_within=ACT_WITHIN, correlation_id=envelope["correlation_id"]),
                    act=False)
            notice = notices.build(
                kind, sub, restriction, shop_id=shop_id, issued_at=now, act_within=ACT_WITHIN,
                correlation_id=envelope["correlation_id"], reason=reason, lifted_at=lifted_at)
            if kind == "lifted":
                self._record(notice)
            else:
                out.append(notice)
        return out

    def _memberships(self, code: str) -> dict[str, str]:
        return self.memberships.of(code, lambda c: resilience.call(self.registry.memberships, c))

    # -- the memberships read model (memberships.py) -----------------------------------------
    @event_handler("registry", "MembershipsChanged")
    def on_memberships_changed(self, body):
        _, payload = read_event(body)
        self.memberships.apply(payload["uscc"], payload["version"], payload["memberships"])

    @timer(interval=5, eager=True)
    def reconcile_memberships(self):
        """Bootstrap the read model at start (retried every 5 s until it completes), then
        reconcile it every ``MEMBERSHIPS_RECONCILE_SECONDS``."""
        if not self.memberships.due():
            return
        try:
            written = self.memberships.reconcile(lambda after, limit: resilience.call(
                self.registry.memberships_page, after, limit))
        except Exception as exc:  # noqa: BLE001 - the registry may be starting: next tick
            self.log.warning("memberships not reconciled: the registry did not answer",
                             error=f"{type(exc).__name__}: {str(exc)[:200]}")
            return
        if written:
            self.log.info("memberships reconciled", written=written)

    def _record_many(self, docs: list[dict]) -> None:
        """Insert notices with one unordered batch write. Per notice: inserted (tracked for
        delivery), or already there (its id is its idempotency key: a redelivery; its delivery
        ensured); any other error raises and the event is retried, the notices already
        inserted then being "already there"."""
        if len(docs) == 1:
            self._record(docs[0])
            return
        existing: set[int] = set()
        try:
            self.db.notices.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            for error in exc.details.get("writeErrors", []):
                if error.get("code") != 11000:
                    raise
                existing.add(error["index"])
        for index, doc in enumerate(docs):
            push = doc["delivery"]["mode"] in notices.PUSH_MODES
            if index in existing:
                if push:
                    self.courier.ensure(doc["_id"])
                continue
            if push:
                self.courier.track(doc)
            self.log.info("notice recorded", notice_id=doc["_id"], kind=doc["kind"],
                          subscriber=doc["subscriber_id"], delivery=doc["delivery"]["mode"])

    def _record(self, doc: dict, act: bool = True) -> bool:
        if not act:
            doc["act_by"] = None
            body = json.loads(doc["body"])
            body["act_by"] = None
            doc["body"] = notices.canonical(body)
        try:
            self.db.notices.insert_one(doc)
        except DuplicateKeyError:
            if doc["delivery"]["mode"] in notices.PUSH_MODES:
                self.courier.ensure(doc["_id"])
            return False
        if doc["delivery"]["mode"] in notices.PUSH_MODES:
            self.courier.track(doc)
        self.log.info("notice recorded", notice_id=doc["_id"], kind=doc["kind"],
                      subscriber=doc["subscriber_id"], delivery=doc["delivery"]["mode"])
        return True

    # -- mutual recognition (互认) ----------------------------------------------------------
    @event_handler("notifications", "MerchantCleared")
    def on_merchant_cleared(self, body):
        envelope, cleared = read_event(body)
        subscriptions = [s for s in self.courier.subscriptions.all() if s["kind"] == "platform"
                         and s.get("platform_id") != cleared["platform_id"]]
        if not subscriptions:
            return
        members = self._memberships(cleared["uscc"])
        measure, ref = cleared["measure"], cleared["restriction"]
        restriction = {"restriction_id": ref["restriction_id"], "uscc": cleared["uscc"],
                       "entity_name": cleared["entity_name"], "measure_id": measure["id"],
                       "sector": measure["sector"], "action": measure["action"],
                       "legal_basis": measure["legal_basis"],
                       "department": measure["department"],
                       "memorandum": measure.get("memorandum"), "starts_at": ref["starts_at"],
                       "ends_at": ref["ends_at"], "reason": ref["reason"],
                       "source": ref["source"]}
        reason = (f"mutual recognition (互认): platform {cleared['platform_id']} reports it "
                  f"cleared this merchant (清退) on {cleared['cleared_at'].date().isoformat()} "
                  f"under {measure['id']} ({measure['legal_basis']})")
        now = datetime.now(timezone.utc)
        for sub in subscriptions:
            if sub["platform_id"] not in members:
                continue
            if sub.get("merchants") and cleared["uscc"] not in sub["merchants"]:
                continue
            if "platforms" not in (sub.get("sectors") or ["platforms"]):
                continue
            self._record(notices.build(
                "mutual_recognition", sub, restriction, shop_id=members[sub["platform_id"]],
                issued_at=now, act_within=ACT_WITHIN, correlation_id=envelope["correlation_id"],
                reason=reason, cleared_by={"platform_id": cleared["platform_id"],
                                           "cleared_at": cleared["cleared_at"],
                                           "reference": cleared.get("reference")}))

    # -- subscriptions ---------------------------------------------------------------------
    @http("POST", "/v1/subscriptions", roles=("platform", "regulator"))
    def post_subscription(self, request):
        data = SubscriptionSchema().load(read_json(request))
        if self.caller.role == "platform":
            if data["kind"] != "platform":
                return problem(403, "a platform may only subscribe as a platform (kind platform)")
            if data["platform_id"] != self.caller.subject:
                return problem(403, "a platform may only manage its own subscriptions: "
                                    f"platform_id must be {self.caller.subject!r}")
        errors = []
        if data.get("measures"):
            known = catalog_measures()
            errors += [{"field": f"measures[{i}]", "problem": f"unknown measure {m!r}"}
                       for i, m in enumerate(data["measures"]) if known and m not in known]
        url = data.get("webhook_url")
        if url and url.startswith("http://") and self.courier.settings.require_https:
            errors.append({"field": "webhook_url", "problem": "must be https"})
        elif url:  # checked again at every delivery, against the address connected to
            refused = targets.check(url, self.courier.settings.allow_targets)
            if refused:
                errors.append({"field": "webhook_url", "problem": refused})
        if errors:
            return problem(400, "invalid request", errors)
        sub_id = data.pop("subscriber_id") or data["platform_id"]
        now = datetime.now(timezone.utc)
        generated = None
        if (data.get("webhook_url") or data.get("amqp_queue")) and not data.get("webhook_secret"):
            generated = data["webhook_secret"] = signing.generate_secret()
        with doc_lock(self.db.subscriptions, sub_id):
            existing = self.db.subscriptions.find_one({"_id": sub_id})
            if existing is not None and not self._owns(existing):
                return problem(403, f"subscriber {sub_id} belongs to another platform")
            if data.get("amqp_queue"):
                self.courier.transports["amqp"].declare(data["amqp_queue"])
            fields_ = {**data, "updated_at": now}
            if existing is None:
                self.db.subscriptions.insert_one({"_id": sub_id, **fields_, "created_at": now})
            else:
                self.db.subscriptions.update_one({"_id": sub_id}, {"$set": fields_})
        self.courier.subscriptions.forget(sub_id)
        doc = self.db.subscriptions.find_one({"_id": sub_id})
        self.log.info("subscription saved", subscriber=sub_id, kind=doc["kind"],
                      delivery=public_subscription(doc)["delivery"])
        view = public_subscription(doc)
        if generated is not None:
            view["webhook_secret"] = generated  # shown once: only its use is stored apart
        return json_response(201 if existing is None else 200, view)

    @http("POST", "/v1/subscriptions/<string:subscriber_id>/secret:rotate",
          roles=("platform", "regulator"))
    def rotate_secret(self, request, subscriber_id):
        data = SecretRotationSchema().load(read_json(request) or {})
        doc, refusal = self._subscription(subscriber_id)
        if refusal:
            return refusal
        if delivery_mode(doc) == "pull":
            return problem(409, f"subscriber {subscriber_id} pulls its notices: nothing is "
                                f"signed, there is no secret to rotate")
        now = datetime.now(timezone.utc)
        secret = signing.generate_secret()
        keep = data["previous_valid_hours"]
        until = now + timedelta(hours=keep) if keep and doc.get("webhook_secret") else None
        with doc_lock(self.db.subscriptions, subscriber_id):
            self.db.subscriptions.update_one({"_id": subscriber_id}, {"$set": {
                "webhook_secret": secret, "previous_webhook_secret": doc.get("webhook_secret"),
                "previous_secret_expires_at": until, "secret_rotated_at": now,
                "updated_at": now}})
        rotation_id = f"rot_{uuid.uuid4().hex}"
        self.db.secret_rotations.insert_one({
            "_id": rotation_id, "subscriber_id": subscriber_id, "rotated_at": now,
            "by": f"{self.caller.role}:{self.caller.subject}",
            "previous_secret_expires_at": until,
            "correlation_id": self.correlation_id})
        self.courier.subscriptions.forget(subscriber_id)
        self.log.info("webhook secret rotated", subscriber=subscriber_id, rotation=rotation_id,
                      previous_valid_hours=keep)
        return json_response(200, {"subscriber_id": subscriber_id, "webhook_secret": secret,
                                    "rotated_at": now, "previous_secret_expires_at": until,
                                    "rotation_id": rotation_id})

    @http("GET", "/v1/subscriptions", roles=("platform", "regulator"))
    def list_subscriptions(self, request):
        docs = [d for d in self.db.subscriptions.find({}).sort("_id", 1) if self._owns(d)]
        return json_response(200, {"subscriptions": [public_subscription(d) for d in docs]})

    @http("GET", "/v1/subscriptions/<string:subscriber_id>", roles=("platform", "regulator"))
    def get_subscription(self, request, subscriber_id):
        doc, refusal = self._subscription(subscriber_id)
        return refusal or json_response(200, public_subscription(doc))

    @http("DELETE", "/v1/subscriptions/<string:subscriber_id>", roles=("platform", "regulator"))
    def delete_subscription(self, request, subscriber_id):
        doc, refusal = self._subscription(subscriber_id)
        if refusal:
            return refusal
        with doc_lock(self.db.subscriptions, subscriber_id):
            self.db.subscriptions.delete_one({"_id": subscriber_id})
        self.courier.subscriptions.forget(subscriber_id)
        self.log.info("subscription deleted", subscriber=subscriber_id)
        return json_response(200, {"subscriber_id": subscriber_id, "deleted": True})

    def _owns(self, subscription: dict) -> bool:
        """Platforms see and manage only their own subscriptions (and their notices)."""
        return (self.caller.role != "platform"
                or subscription.get("platform_id") == self.caller.subject)

    def _subscription(self, subscriber_id):
        doc = self.db.subscriptions.find_one({"_id": subscriber_id})
        if doc is None:
            return None, problem(404, f"no subscription {subscriber_id}")
        if not self._owns(doc):
            return None, problem(403, f"subscriber {subscriber_id} belongs to another platform")
        return doc, None

    # -- notices ---------------------------------------------------------------------------
    @http("GET", "/v1/notices", roles=("platform", "regulator"))
    def list_notices(self, request):
        args = request.args
        query = {}
        subscriber = args.get("subscriber")
        if subscriber:
            _, refusal = self._subscription(subscriber)
            if refusal and not (refusal.status_code == 404 and self.caller.role != "platform"):
                return refusal
            query["subscriber_id"] = subscriber
        elif self.caller.role == "platform":
            own = [d["_id"] for d in self.db.subscriptions.find({}) if self._owns(d)]
            query["subscriber_id"] = {"$in": own}
        errors = []
        if args.get("uscc"):
            query["uscc"] = args["uscc"]
        if args.get("kind"):
            if args["kind"] not in ("imposed", "lifted", "mutual_recognition"):
                errors.append({"field": "kind", "problem":
                               "must be imposed, lifted or mutual_recognition"})
            query["kind"] = args["kind"]
        try:
            limit = int(args.get("limit", MAX_LIST))
            if not 1 <= limit <= MAX_LIST:
                raise ValueError
        except ValueError:
            errors.append({"field": "limit", "problem": f"must be a number from 1 to {MAX_LIST}"})
        if errors:
            return problem(400, "invalid query", errors)
        docs = list(self.db.notices.find(query).sort("created_at", 1).limit(limit))
        return json_response(200, {"subscriber": subscriber, "notices": self._views(docs)})

    @http("GET", "/v1/notices/<string:notice_id>", roles=("platform", "regulator"))
    def get_notice(self, request, notice_id):
        doc, status, why = self._notice(notice_id)
        return problem(status, why) if why else json_response(200, self._views([doc])[0])

    def _notice(self, notice_id):
        """``(notice, status, refusal)``: a platform may only see its own notices."""
        doc = self.db.notices.find_one({"_id": notice_id})
        if doc is None:
            return None, 404, f"no notice {notice_id}"
        if self.caller.role == "platform" and doc.get("platform_id") != self.caller.subject:
            return None, 403, (f"notice {notice_id} was sent to another platform, "
                               f"not to {self.caller.subject}")
        return doc, 200, None

    def _views(self, docs: list[dict]) -> list[dict]:
        ids = [d["_id"] for d in docs]
        delivered = {d["_id"]: d for d in self.db.deliveries.find({"_id": {"$in": ids}})} \
            if ids else {}
        feedback = self._feedback_for(ids)
        views = []
        for doc in docs:
            body = json.loads(doc["body"])
            receipt = delivered.get(doc["_id"])
            delivery = doc["delivery"]
            status = ("delivered" if receipt else delivery["state"])
            if status == "pending" and self.courier.held(doc["_id"]):
                status = "held"
            views.append({**body, "uscc": doc["uscc"], "status": status, "delivery": {
                "mode": delivery["mode"], "attempts": receipt["attempts"] if receipt
                else delivery["attempts"], "delivered_at": receipt and receipt["delivered_at"],
                "next_attempt_at": None if receipt else delivery.get("next_attempt_at"),
                "last_error": None if receipt else delivery.get("last_error")},
                "feedback": feedback.get(doc["_id"], [])})
        return views

    def _feedback_for(self, ids: list[str]) -> dict[str, list[dict]]:
        if not ids:
            return {}
        keys = [f"{nid}:{status}" for nid in ids for status in FEEDBACK_STATUSES]
        out: dict[str, list[dict]] = {}
        for doc in self.db.feedback.find({"_id": {"$in": keys}}).sort("received_at", 1):
            out.setdefault(doc["notice_id"], []).append(_feedback_view(doc))
        return out

    # -- feedback --------------------------------------------------------------------------
    @http("POST", "/v1/notices/<string:notice_id>/feedback", roles=("platform", "regulator"))
    def post_feedback(self, request, notice_id):
        data = FeedbackSchema().load(read_json(request))
        notice, status, why = self._notice(notice_id)
        if why:
            return problem(status, f"feedback refused: {why}")
        errors = feedback_errors(notice["kind"], data)
        if errors:
            return problem(400, "invalid feedback", errors)
        feedback_id = f"{notice_id}:{data['status']}"
        doc = {"notice_id": notice_id, "subscriber_id": notice["subscriber_id"],
               "platform_id": notice.get("platform_id"), "notice_kind": notice["kind"],
               "status": data["status"], "actions": data.get("actions"),
               "applied_at": millis(data.get("applied_at")), "reference": data.get("reference"),
               "note": data.get("note"), "received_at": datetime.now(timezone.utc),
               "by": f"{self.caller.role}:{self.caller.subject}"}
        events = []
        if (data["status"] == "applied" and CLEARED in (data.get("actions") or ())
                and notice.get("platform_id")):
            events.append(self._cleared_event(feedback_id, notice, doc))
        doc["event_ids"] = [e["event_id"] for e in events]
        with Outbox(self.db, self.dispatch).staged(self.db.feedback, feedback_id, events) as stage:
            try:
                self.db.feedback.insert_one({"_id": feedback_id, **doc})
            except DuplicateKeyError:
                stage.cancel()
                stored = self.db.feedback.find_one({"_id": feedback_id})
                if same_feedback(stored, doc):
                    return json_response(200, {**_feedback_view(stored), "duplicate": True})
                return problem(409, f"feedback {data['status']} was already posted for "
                                    f"notice {notice_id} with other content; it is kept as "
                                    f"first posted")
        self.courier.decision("FeedbackRecorded", notice, status=data["status"],
                              actions=data.get("actions"), reference=data.get("reference"),
                              by=doc["by"])
        self.log.info("feedback recorded", notice_id=notice_id, status=data["status"],
                      subscriber=notice["subscriber_id"], mutual_recognition=bool(events))
        return json_response(201, _feedback_view({"_id": feedback_id, **doc}))

    def _cleared_event(self, feedback_id: str, notice: dict, feedback: dict) -> dict:
        body = json.loads(notice["body"])
        measure, ref = body["measure"], body["restriction"]
        return make_event("MerchantCleared", _loaded("MerchantCleared", {
            "uscc": notice["uscc"], "entity_name": body["merchant"]["name"],
            "platform_id": notice["platform_id"], "notice_id": notice["_id"],
            "measure": measure, "restriction": ref,
            "cleared_at": feedback["applied_at"], "reference": feedback["reference"]}),
            producer=self.name, correlation_id=self.correlation_id,
            event_id=f"{feedback_id}:cleared")

    @http("GET", "/v1/closure", roles=("platform", "regulator"))
    def get_closure(self, request):
        """Closure per subscriber: sent, acknowledged, applied, overdue (``as_of``: now)."""
        try:
            as_of = Instant().deserialize(request.args["as_of"]) if request.args.get(
                "as_of") else datetime.now(timezone.utc)
        except ValidationError:
            return problem(400, "invalid query", [{"field": "as_of", "problem":
                                                   "must be an ISO 8601 instant"}])
        subscriptions = {d["_id"]: d for d in self.db.subscriptions.find({}) if self._owns(d)}
        query = {}
        wanted = request.args.get("subscriber")
        if wanted:
            _, refusal = self._subscription(wanted)
            if refusal and not (refusal.status_code == 404 and self.caller.role != "platform"):
                return refusal
            query["subscriber_id"] = wanted
        elif self.caller.role == "platform":
            query["subscriber_id"] = {"$in": list(subscriptions)}
        docs = list(self.db.notices.find(query, {"body": 0}))
        ids = [d["_id"] for d in docs]
        delivered = {d["_id"] for d in self.db.deliveries.find({}, {"_id": 1})}
        dead = {d["_id"] for d in self.db.dead_letters.find({"state": "dead"}, {"_id": 1})}
        feedback: dict[str, set] = {}
        for nid, statuses in self._feedback_for(ids).items():
            feedback[nid] = {f["status"] for f in statuses}
        return json_response(200, closure(docs, subscriptions, delivered, dead, feedback, as_of))

    # -- dead letters (operators) ----------------------------------------------------------
    @http("GET", "/v1/dead-notices", roles=())
    def list_dead_notices(self, request):
        try:
            limit = int(request.args.get("limit", 100))
            if not 1 <= limit <= MAX_LIST:
                raise ValueError
        except ValueError:
            return problem(400, "invalid query", [{"field": "limit", "problem":
                                                   f"must be a number from 1 to {MAX_LIST}"}])
        letters = self.courier.dead_letters(request.args.get("subscriber"), limit)
        return json_response(200, {"dead_notices": letters})

    @http("POST", "/v1/dead-notices:redeliver", roles=())
    def redeliver_dead_notices(self, request):
        data = RedeliverSchema().load(read_json(request))
        if data.get("notice_ids"):
            ids = data["notice_ids"]
        else:
            ids = [d["notice_id"] for d in self.courier.dead_letters(
                data.get("subscriber_id"), limit=10_000)]
        sent = self.courier.redeliver(ids, f"{self.caller.role}:{self.caller.subject}")
        results = [{"notice_id": nid, "result": "redelivering" if nid in sent
                    else "not dead-lettered"} for nid in ids]
        results += [{"notice_id": nid, "result": "redelivering (its lift was asked for)"}
                    for nid in sent if nid not in set(ids)]
        return json_response(200, {"redelivered": len(sent), "results": results})

    @timer(interval=2)
    def relay_outbox(self):
        Outbox(self.db, self.dispatch).sweep()


def _loaded(event_type: str, payload: dict) -> dict:
    """A payload built from stored JSON, in the loaded form ``make_event`` takes."""
    return PAYLOADS[event_type]().load(json.loads(json.dumps(
        payload, default=lambda v: v.isoformat())))


def _feedback_view(doc: dict) -> dict:
    keys = ("notice_id", "status", "actions", "applied_at", "reference", "note", "received_at",
            "by")
    return {"feedback_id": doc["_id"], **{k: doc.get(k) for k in keys}}
