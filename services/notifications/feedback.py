"""Feedback rules and the closure report (发起 - 响应 - 反馈), without a framework.

Closure counts, per subscriber (a platform or an implementing department), the notices that
ask for action (impositions and lifts; 互认 notices are informational):

- ``sent``: delivered (the webhook answered 2xx, the broker confirmed the AMQP message) or,
  for a pull subscriber, available to ``GET /v1/notices``;
- ``acknowledged``: the subscriber posted any feedback;
- ``applied``: it reported the measure applied; ``not_applicable``: nothing to do, with why;
- ``overdue``: neither applied nor not applicable, and ``act_by`` has passed;
- ``pending`` (still being delivered) and ``dead`` (in the dead-letter store).
"""
from __future__ import annotations

from datetime import datetime

from contracts.notifications import CLEARED

COUNTS = ("notices", "sent", "acknowledged", "applied", "not_applicable", "overdue",
          "pending", "dead", "informational")


def feedback_errors(notice_kind: str, feedback: dict) -> list[dict]:
    """What makes this feedback wrong for this kind of notice (field, problem)."""
    actions = set(feedback.get("actions") or ())
    errors = []
    if CLEARED in actions and notice_kind == "lifted":
        errors.append({"field": "actions", "problem":
                       "a lift is not cleared: report restored (or other)"})
    if "restored" in actions and notice_kind != "lifted":
        errors.append({"field": "actions", "problem":
                       "restored answers a lift notice only"})
    return errors


def millis(value: datetime | None) -> datetime | None:
    """The store keeps milliseconds: compare and store at that precision."""
    return value.replace(microsecond=value.microsecond // 1000 * 1000) if value else None


def same_feedback(stored: dict, posted: dict) -> bool:
    keys = ("status", "actions", "applied_at", "reference", "note")
    return all(_norm(stored.get(k)) == _norm(posted.get(k)) for k in keys)


def _norm(value):
    if isinstance(value, datetime):
        return millis(value).timestamp()
    return value


def closure(notices, subscriptions: dict, delivered: set, dead: set,
            feedback: dict[str, set], as_of: datetime) -> dict:
    """``notices``: stored notice documents; ``feedback``: notice id -> statuses posted."""
    rows: dict[str, dict] = {}
    for notice in notices:
        sub_id = notice["subscriber_id"]
        row = rows.get(sub_id)
        if row is None:
            sub = subscriptions.get(sub_id) or {}
            row = rows[sub_id] = {"subscriber_id": sub_id, "kind": sub.get("kind"),
                                  "platform_id": sub.get("platform_id"),
                                  "department": sub.get("department"),
                                  **{count: 0 for count in COUNTS}}
        if notice["kind"] == "mutual_recognition":
            row["informational"] += 1
            continue
        row["notices"] += 1
        if notice["delivery"]["mode"] == "pull" or notice["_id"] in delivered:
            row["sent"] += 1
        elif notice["_id"] in dead:
            row["dead"] += 1
        else:
            row["pending"] += 1
        statuses = feedback.get(notice["_id"], set())
        if statuses:
            row["acknowledged"] += 1
        act_by = notice.get("act_by")
        if "applied" in statuses:
            row["applied"] += 1
        elif "not_applicable" in statuses:
            row["not_applicable"] += 1
        elif act_by is not None and act_by < as_of:
            row["overdue"] += 1
    ordered = sorted(rows.values(), key=lambda r: r["subscriber_id"])
    totals = {count: sum(r[count] for r in ordered) for count in COUNTS}
    return {"as_of": as_of, "subscribers": ordered, "totals": totals}
