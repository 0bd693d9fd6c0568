"""Notifications service: subscriptions and notices (merchant clearance, lifts).

A notice's id is its idempotency key (source event id + subscriber), so a redelivered
restriction event records the same notice once. Delivery (signed webhooks, retries) builds on
the stored notices.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from nameko.rpc import RpcProxy

from contracts.events import SECTORS, read_event
from contracts.notifications import SubscriptionSchema
from shared.entrypoints import PUBLIC, event_handler, http, json_response, problem, read_json
from shared.logging import CorrelationId, Log
from shared.mongo import Mongo
from shared.service import health, published
from shared.store import insert_once

ACT_WITHIN = timedelta(days=3)


def ensure_indexes(db) -> None:
    db.notices.create_index([("subscriber_id", 1), ("created_at", 1)])
    db.notices.create_index("uscc")
    db.subscriptions.create_index("platform_id")


def wants(subscription: dict, restriction: dict, member_platforms: set[str]) -> bool:
    if subscription.get("measures") and restriction["measure_id"] not in subscription["measures"]:
        return False
    if subscription["kind"] == "platform":
        sectors = subscription.get("sectors") or ["platforms"]
        return subscription.get("platform_id") in member_platforms and restriction["sector"] in sectors
    return restriction["sector"] in (subscription.get("sectors") or SECTORS)


@published
class NotificationsService:
    name = "notifications"

    db = Mongo("notifications", indexes=ensure_indexes)
    registry = RpcProxy("registry")
    log = Log()
    correlation_id = CorrelationId()

    @event_handler("restrictions", "RestrictionImposed")
    def on_imposed(self, body):
        envelope, restriction = read_event(body)
        self._notify(envelope, restriction, "imposed", None)

    @event_handler("restrictions", "RestrictionLifted")
    def on_lifted(self, body):
        envelope, payload = read_event(body)
        self._notify(envelope, payload["restriction"], "lifted", payload["lift_reason"])

    def _notify(self, envelope, restriction, kind, lift_reason):
        subscriptions = list(self.db.subscriptions.find({}))
        if not subscriptions:
            return
        memberships = {}
        if any(s["kind"] == "platform" for s in subscriptions):
            memberships = {m["platform_id"]: m["shop_id"]
                           for m in self.registry.memberships(restriction["uscc"])}
        now = datetime.now(timezone.utc)
        for sub in subscriptions:
            if not wants(sub, restriction, set(memberships)):
                continue
            notice_id = f"{envelope['event_id']}>{sub['_id']}"
            if insert_once(self.db.notices, notice_id, {
                "subscriber_id": sub["_id"], "kind": kind, "uscc": restriction["uscc"],
                "merchant": {"uscc": restriction["uscc"], "name": restriction["entity_name"],
                             "shop_id": memberships.get(sub.get("platform_id"))},
                "measure": {"id": restriction["measure_id"], "sector": restriction["sector"],
                            "action": restriction["action"],
                            "legal_basis": restriction["legal_basis"],
                            "department": restriction["department"]},
                "reason": lift_reason or restriction["reason"],
                "restriction_id": restriction["restriction_id"],
                "source_event_id": envelope["event_id"],
                "act_by": now + ACT_WITHIN, "status": "pending", "created_at": now,
                "correlation_id": envelope["correlation_id"]}):
                self.log.info("notice recorded", notice_id=notice_id, kind=kind,
                              subscriber=sub["_id"])

    @http("POST", "/v1/subscriptions", roles=("platform",))
    def post_subscription(self, request):
        data = SubscriptionSchema().load(read_json(request))
        if data["kind"] == "platform" and not data.get("platform_id"):
            return problem(400, "invalid request", [{"field": "platform_id",
                                                     "problem": "required for a platform"}])
        sub_id = data.pop("subscriber_id")
        self.db.subscriptions.update_one({"_id": sub_id}, {"$set": data}, upsert=True)
        return json_response(200, {"subscriber_id": sub_id, **data})

    @http("GET", "/v1/notices", roles=("platform", "regulator"))
    def list_notices(self, request):
        subscriber = request.args.get("subscriber")
        if not subscriber:
            return problem(400, "query parameter subscriber is required")
        docs = self.db.notices.find({"subscriber_id": subscriber}).sort("created_at", 1).limit(1000)
        notices = [{**{k: v for k, v in d.items() if k != "_id"}, "notice_id": d["_id"]} for d in docs]
        return json_response(200, {"subscriber": subscriber, "notices": notices})

    @http("GET", "/health", roles=PUBLIC)
    def health(self, request):
        return health(self.name, self.db)
