"""Notification contracts: subscriptions, the notice (webhook and AMQP body), feedback.

A notice is what a subscriber (a platform or an implementing department) receives: a measure
imposed on a merchant, its lift, or (互认) another platform's clearance of the merchant. Its
``notice_id`` is derived from its idempotency key (restriction, kind, subscriber), and its
body is stored once as canonical JSON, so every delivery of a notice carries the same id and
the same bytes. Headers and the signature scheme: ``docs/notifications.md``.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from contracts.common import USCC, Instant
from contracts.events import SECTORS, MeasureRefSchema, RestrictionRefSchema
from contracts.violation import StrictSchema

SUBSCRIBER_ID = r"^[a-z0-9][a-z0-9_-]{1,63}$"
SUBSCRIBER_ID_ERROR = "must be 2-64 of a-z, 0-9, '_' and '-'"
MEASURE_ID = r"^[A-Z]{2}-\d{2}$"
NOTICE_KINDS = ("imposed", "lifted", "mutual_recognition")
SUBSCRIBER_KINDS = ("platform", "department")
DELIVERY_MODES = ("webhook", "amqp", "pull")
FEEDBACK_STATUSES = ("acknowledged", "applied", "not_applicable")
# What a platform or department reports it did. ``cleared`` (清退: shop closed for good,
# re-onboarding refused) is what other platforms are told about (互认).
ACTIONS = ("cleared", "shop_closed", "shop_suspended", "listings_blocked",
           "onboarding_restricted", "rating_lowered", "licence_refused", "credit_tightened",
           "restored", "other")
CLEARED = "cleared"

# Webhook headers (AMQP deliveries carry the same names as message headers).
SIGNATURE_HEADER = "X-Lianchen-Signature"     # t=<unix seconds>,v1=<hex HMAC-SHA256>
NOTICE_ID_HEADER = "X-Lianchen-Notice-Id"     # the idempotency key: same notice, same id
KIND_HEADER = "X-Lianchen-Notice-Kind"        # imposed | lifted | mutual_recognition
ATTEMPT_HEADER = "X-Lianchen-Attempt"         # 1, 2, ... (informational, not signed)
REPLAY_WINDOW_SECONDS = 300                    # receivers refuse a timestamp further off
SECRET_MIN_LENGTH = 16
CLOCK_SKEW = timedelta(minutes=5)


class SubscriptionSchema(StrictSchema):
    """``POST /v1/subscriptions``: who receives notices, which ones, and how.

    Delivery is a webhook (``webhook_url`` with ``webhook_secret``, the HMAC key), an AMQP
    queue of the subscriber's own (``amqp_queue``, named ``notices.<subscriber_id>[.<x>]``;
    signed too when a ``webhook_secret`` is given), or neither: pull with ``GET /v1/notices``.
    Filters narrow what is sent: ``sectors`` (platforms default to ``platforms``), ``measures``
    (catalog ids) and ``merchants`` (USCCs).
    """

    subscriber_id = fields.String(load_default=None, validate=validate.Regexp(
        SUBSCRIBER_ID, error=SUBSCRIBER_ID_ERROR))
    kind = fields.String(required=True, validate=validate.OneOf(SUBSCRIBER_KINDS))
    platform_id = fields.String(load_default=None, validate=validate.Regexp(
        SUBSCRIBER_ID, error=SUBSCRIBER_ID_ERROR))
    department = fields.String(load_default=None, validate=validate.Length(min=1, max=200))
    sectors = fields.List(fields.String(validate=validate.OneOf(SECTORS)), load_default=None,
                          validate=validate.Length(min=1, max=len(SECTORS)))
    measures = fields.List(fields.String(validate=validate.Regexp(
        MEASURE_ID, error="must be a catalog measure id such as PL-01")), load_default=None,
        validate=validate.Length(min=1, max=200))
    merchants = fields.List(USCC(), load_default=None, validate=validate.Length(min=1, max=1000))
    webhook_url = fields.Url(load_default=None, schemes={"https", "http"}, require_tld=False)
    webhook_secret = fields.String(load_default=None, load_only=True, validate=validate.Length(
        min=SECRET_MIN_LENGTH, max=200, error="must be {min} to {max} characters"))
    amqp_queue = fields.String(load_default=None, validate=validate.Regexp(
        r"^notices\.[a-z0-9][a-z0-9_.-]{1,120}$",
        error="must be notices.<subscriber_id> or notices.<subscriber_id>.<name>"))

    @validates_schema
    def _coherent(self, data, **kwargs):
        errors = {}
        if data["kind"] == "platform" and not data.get("platform_id"):
            errors["platform_id"] = ["required for a platform"]
        if data["kind"] == "department" and not data.get("subscriber_id"):
            errors["subscriber_id"] = ["required for a department"]
        if data.get("webhook_url") and data.get("amqp_queue"):
            errors["amqp_queue"] = ["choose a webhook or an AMQP queue, not both"]
        if data.get("webhook_url") and not data.get("webhook_secret"):
            errors["webhook_secret"] = ["required with webhook_url (the HMAC key, "
                                        f"at least {SECRET_MIN_LENGTH} characters)"]
        if data.get("webhook_secret") and not (data.get("webhook_url") or data.get("amqp_queue")):
            errors["webhook_url"] = ["required with webhook_secret (or amqp_queue)"]
        subscriber = data.get("subscriber_id") or data.get("platform_id")
        queue = data.get("amqp_queue")
        if queue and subscriber and not (queue == f"notices.{subscriber}"
                                         or queue.startswith(f"notices.{subscriber}.")):
            errors["amqp_queue"] = [f"must be notices.{subscriber} or "
                                    f"notices.{subscriber}.<name>"]
        if errors:
            raise ValidationError(errors)


def delivery_mode(subscription: dict) -> str:
    if subscription.get("webhook_url"):
        return "webhook"
    if subscription.get("amqp_queue"):
        return "amqp"
    return "pull"


def public_subscription(doc: dict) -> dict:
    """A subscription as any GET shows it: never the secret."""
    keys = ("kind", "platform_id", "department", "sectors", "measures", "merchants",
            "webhook_url", "amqp_queue", "created_at", "updated_at")
    out = {"subscriber_id": doc["_id"], **{k: doc.get(k) for k in keys}}
    out["delivery"] = delivery_mode(doc)
    out["has_webhook_secret"] = bool(doc.get("webhook_secret"))
    return out


# -- the notice (webhook body) ----------------------------------------------------------------

class MerchantSchema(Schema):
    uscc = fields.String(required=True)
    name = fields.String(required=True)
    shop_id = fields.String(allow_none=True)


class ClearedBySchema(Schema):
    platform_id = fields.String(required=True)
    cleared_at = Instant(required=True)
    reference = fields.String(allow_none=True)


class NoticeSchema(Schema):
    """The body of every delivery (canonical JSON: sorted keys, no spaces, UTF-8).

    ``reason`` says why this notice exists: the restriction's reason, the lift's reason, or
    who cleared the merchant. ``act_by`` is the deadline to act and feed back (null for
    informational notices). ``cleared_by`` is set on ``mutual_recognition`` notices.
    """

    notice_id = fields.String(required=True)
    idempotency_key = fields.String(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(NOTICE_KINDS))
    subscriber_id = fields.String(required=True)
    platform_id = fields.String(allow_none=True)
    merchant = fields.Nested(MerchantSchema, required=True)
    measure = fields.Nested(MeasureRefSchema, required=True)
    restriction = fields.Nested(RestrictionRefSchema, required=True)
    reason = fields.String(required=True)
    lifted_at = Instant(allow_none=True)
    cleared_by = fields.Nested(ClearedBySchema, allow_none=True)
    act_by = Instant(allow_none=True)
    issued_at = Instant(required=True)
    correlation_id = fields.String(required=True)


# -- feedback (发起 - 响应 - 反馈) ------------------------------------------------------------

class FeedbackSchema(StrictSchema):
    """``POST /v1/notices/{notice_id}/feedback``: what the subscriber did about a notice.

    ``acknowledged``: received and being handled. ``applied``: done; ``actions`` (what) and
    ``applied_at`` (when) are required, ``reference`` is the subscriber's own case number.
    ``not_applicable``: nothing to do (e.g. the merchant left the platform); ``note`` says why.
    One feedback per status per notice: the same post again is a harmless duplicate.
    """

    status = fields.String(required=True, validate=validate.OneOf(FEEDBACK_STATUSES))
    actions = fields.List(fields.String(validate=validate.OneOf(ACTIONS)), load_default=None,
                          validate=validate.Length(min=1, max=len(ACTIONS)))
    applied_at = Instant(load_default=None)
    reference = fields.String(load_default=None, validate=validate.Length(min=1, max=100))
    note = fields.String(load_default=None, validate=validate.Length(max=1000))

    @validates_schema
    def _coherent(self, data, **kwargs):
        errors = {}
        if data["status"] == "applied":
            if not data.get("actions"):
                errors["actions"] = ["required when status is applied"]
            if not data.get("applied_at"):
                errors["applied_at"] = ["required when status is applied"]
        if data["status"] == "not_applicable" and not data.get("note"):
            errors["note"] = ["required when status is not_applicable: say why"]
        applied_at = data.get("applied_at")
        if applied_at and applied_at > datetime.now(timezone.utc) + CLOCK_SKEW:
            errors["applied_at"] = ["must not be in the future"]
        if errors:
            raise ValidationError(errors)


class RedeliverSchema(StrictSchema):
    """``POST /v1/dead-notices:redeliver``: which dead-lettered notices to send again."""

    notice_ids = fields.List(fields.String(validate=validate.Length(min=1, max=100)),
                             load_default=None, validate=validate.Length(min=1, max=1000))
    subscriber_id = fields.String(load_default=None, validate=validate.Regexp(
        SUBSCRIBER_ID, error=SUBSCRIBER_ID_ERROR))
    all = fields.Boolean(load_default=False)

    @validates_schema
    def _one_selector(self, data, **kwargs):
        chosen = [k for k in ("notice_ids", "subscriber_id") if data.get(k)] + (
            ["all"] if data.get("all") else [])
        if len(chosen) != 1:
            raise ValidationError({"(payload)": [
                "give exactly one of notice_ids, subscriber_id or all=true"]})
