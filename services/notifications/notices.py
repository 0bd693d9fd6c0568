"""What a notice is: who wants which restriction, its id, and its body (no framework here).

One notice per measure, per kind and per subscriber: the idempotency key is
``<restriction id>:<kind>><subscriber>`` (for 互认 ``<restriction id>:cleared-by:<platform>>
<subscriber>``) and the notice id a digest of it, safe in a URL and a header. The body is
rendered once, as canonical JSON, and stored: a redelivery sends the same bytes.
"""
from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta

from contracts.events import SECTORS
from contracts.notifications import NoticeSchema, delivery_mode

_NOTICE = NoticeSchema()
PUSH_MODES = ("webhook", "amqp")


def notice_id(key: str) -> str:
    return "ntc_" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def notice_key(restriction_id: str, kind: str, subscriber_id: str,
               cleared_by: str | None = None) -> str:
    if kind == "mutual_recognition":
        return f"{restriction_id}:cleared-by:{cleared_by}>{subscriber_id}"
    return f"{restriction_id}:{kind}>{subscriber_id}"


def imposition_of(restriction_id: str, subscriber_id: str) -> str:
    """The id of the imposition notice a lift notice must follow."""
    return notice_id(notice_key(restriction_id, "imposed", subscriber_id))


def wants(subscription: dict, restriction: dict, member_platforms: set[str]) -> bool:
    """Does this subscriber want to hear about this restriction? A platform only about its
    own merchants (memberships from the registry) and, unless it says otherwise, only about
    measures in the platforms sector."""
    if subscription.get("measures") and restriction["measure_id"] not in subscription["measures"]:
        return False
    if subscription.get("merchants") and restriction["uscc"] not in subscription["merchants"]:
        return False
    if subscription["kind"] == "platform":
        sectors = subscription.get("sectors") or ["platforms"]
        return (subscription.get("platform_id") in member_platforms
                and restriction["sector"] in sectors)
    return restriction["sector"] in (subscription.get("sectors") or SECTORS)


def canonical(body: dict) -> str:
    return json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def build(kind: str, subscription: dict, restriction: dict, *, shop_id: str | None,
          issued_at: datetime, act_within: timedelta, correlation_id: str,
          reason: str | None = None, lifted_at: datetime | None = None,
          cleared_by: dict | None = None) -> dict:
    """The stored notice document for ``restriction`` (a RestrictionSchema payload, loaded)."""
    subscriber = subscription["_id"]
    key = notice_key(restriction["restriction_id"], kind, subscriber,
                     cleared_by["platform_id"] if cleared_by else None)
    nid = notice_id(key)
    act_by = None if kind == "mutual_recognition" else issued_at + act_within
    body = _NOTICE.dump({
        "notice_id": nid, "idempotency_key": key, "kind": kind, "subscriber_id": subscriber,
        "platform_id": subscription.get("platform_id"),
        "merchant": {"uscc": restriction["uscc"], "name": restriction["entity_name"],
                     "shop_id": shop_id},
        "measure": {"id": restriction["measure_id"], "sector": restriction["sector"],
                    "action": restriction["action"], "legal_basis": restriction["legal_basis"],
                    "department": restriction["department"],
                    "memorandum": restriction.get("memorandum"),
                    "effect": restriction.get("effect")},
        "restriction": {"restriction_id": restriction["restriction_id"],
                        "starts_at": restriction["starts_at"], "ends_at": restriction["ends_at"],
                        "reason": restriction["reason"], "source": restriction["source"]},
        "reason": reason or restriction["reason"], "lifted_at": lifted_at,
        "cleared_by": cleared_by, "act_by": act_by, "issued_at": issued_at,
        "correlation_id": correlation_id,
    })
    mode = delivery_mode(subscription)
    return {
        "_id": nid, "key": key, "subscriber_id": subscriber,
        "platform_id": subscription.get("platform_id"), "kind": kind,
        "uscc": restriction["uscc"], "restriction_id": restriction["restriction_id"],
        "measure_id": restriction["measure_id"], "sector": restriction["sector"],
        "imposition_id": (imposition_of(restriction["restriction_id"], subscriber)
                          if kind == "lifted" else None),
        "act_by": act_by, "created_at": issued_at, "correlation_id": correlation_id,
        "body": canonical(body),
        "delivery": {"mode": mode, "state": "pending" if mode in PUSH_MODES else "available",
                     "attempts": 0, "next_attempt_at": None, "last_error": None},
    }


def restriction_from_body(body: dict) -> dict:
    """The restriction fields of a notice body, in the shape ``build`` takes (for 互认)."""
    ref, measure = body["restriction"], body["measure"]
    return {"restriction_id": ref["restriction_id"], "uscc": body["merchant"]["uscc"],
            "entity_name": body["merchant"]["name"], "measure_id": measure["id"],
            "sector": measure["sector"], "action": measure["action"],
            "legal_basis": measure["legal_basis"], "department": measure["department"],
            "memorandum": measure.get("memorandum"), "starts_at": ref["starts_at"],
            "ends_at": ref["ends_at"], "reason": ref["reason"], "source": ref["source"]}
