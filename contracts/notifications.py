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
MEASURE_ID = r"^[A-Z]{2}-[A-Z0-9]{2,10}(-[A-Z0-9]{2,10})*$"  # SL-PLAT, SL-HON-OTHER, PL-01
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

    Delivery is a webhook (``webhook_url``), an AMQP queue of the subscriber's own
    (``amqp_queue``, named ``notices.<subscriber_id>[.<x>]``), or neither: pull with
    ``GET /v1/notices``. Webhook and AMQP notices are signed (Standard Webhooks headers and
    ``X-Lianchen-Signature``) with a secret the server generates (``whsec_...``, shown once in
    the answer) unless ``webhook_secret`` is given; ``POST .../secret:rotate`` replaces it.
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
        MEASURE_ID, error="must be a catalog measure id such as SL-PLAT")), load_default=None,
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
    out["secret_rotated_at"] = doc.get("secret_rotated_at")
    out["previous_secret_expires_at"] = doc.get("previous_secret_expires_at")
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


# -- answers of the notifications service (GET and POST responses) ----------------------------
# Response schemas: what the service answers, field for field. The e2e contract tests load
# real answers with them (unknown fields are refused), so an undocumented field fails there.

NOTICE_STATUSES = ("pending", "held", "delivered", "dead", "available")
REDELIVERY_RESULTS = ("redelivering", "not dead-lettered", "redelivering (its lift was asked for)")


def _doc(text: str) -> dict:
    return {"metadata": {"description": text}}


class SubscriptionViewSchema(Schema):
    """A subscription as every answer shows it: never the secret."""

    subscriber_id = fields.String(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(SUBSCRIBER_KINDS))
    platform_id = fields.String(required=True, allow_none=True)
    department = fields.String(required=True, allow_none=True)
    sectors = fields.List(fields.String(validate=validate.OneOf(SECTORS)), required=True,
                          allow_none=True, **_doc("null: every sector (platforms: platforms)"))
    measures = fields.List(fields.String(), required=True, allow_none=True,
                           **_doc("null: every measure"))
    merchants = fields.List(USCC(), required=True, allow_none=True,
                            **_doc("null: every merchant (a platform: its own merchants)"))
    webhook_url = fields.String(required=True, allow_none=True)
    amqp_queue = fields.String(required=True, allow_none=True)
    created_at = Instant(required=True)
    updated_at = Instant(required=True)
    delivery = fields.String(required=True, validate=validate.OneOf(DELIVERY_MODES))
    has_webhook_secret = fields.Boolean(required=True, **_doc("the secret itself is never shown"))
    webhook_secret = fields.String(**_doc(
        "only in the answer that created it (a secret the server generated, whsec_...): "
        "shown once, keep it"))
    secret_rotated_at = Instant(allow_none=True, **_doc("when the secret was last rotated"))
    previous_secret_expires_at = Instant(allow_none=True, **_doc(
        "until then the previous secret signs too (both signatures are sent)"))


class SecretRotationSchema(StrictSchema):
    """``POST /v1/subscriptions/{id}/secret:rotate``: a new server-generated secret."""

    previous_valid_hours = fields.Integer(load_default=24, validate=validate.Range(
        min=0, max=168, error="must be 0 to 168 hours"), **_doc(
        "how long the previous secret keeps signing too, so receivers can switch (default 24)"))


class SecretRotatedSchema(Schema):
    subscriber_id = fields.String(required=True)
    webhook_secret = fields.String(required=True, **_doc("the new secret: shown once, keep it"))
    rotated_at = Instant(required=True)
    previous_secret_expires_at = Instant(required=True, allow_none=True, **_doc(
        "null: there was no previous secret, or previous_valid_hours was 0"))
    rotation_id = fields.String(required=True, **_doc("the audit record of this rotation"))


class SubscriptionListSchema(Schema):
    subscriptions = fields.List(fields.Nested(SubscriptionViewSchema), required=True,
                                **_doc("by subscriber id; a platform sees only its own"))


class SubscriptionDeletedSchema(Schema):
    subscriber_id = fields.String(required=True)
    deleted = fields.Boolean(required=True, validate=validate.Equal(True))


class FeedbackViewSchema(Schema):
    """One feedback as recorded (``feedback_id`` is ``<notice_id>:<status>``)."""

    feedback_id = fields.String(required=True)
    notice_id = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(FEEDBACK_STATUSES))
    actions = fields.List(fields.String(validate=validate.OneOf(ACTIONS)), required=True,
                          allow_none=True)
    applied_at = Instant(required=True, allow_none=True)
    reference = fields.String(required=True, allow_none=True)
    note = fields.String(required=True, allow_none=True)
    received_at = Instant(required=True)
    by = fields.String(required=True, **_doc("role:subject of the credential that posted it"))


class FeedbackDuplicateSchema(FeedbackViewSchema):
    """The same feedback posted again: the first one, unchanged, marked as a duplicate."""

    duplicate = fields.Boolean(required=True, validate=validate.Equal(True))


class NoticeDeliverySchema(Schema):
    mode = fields.String(required=True, validate=validate.OneOf(DELIVERY_MODES))
    attempts = fields.Integer(required=True)
    delivered_at = Instant(required=True, allow_none=True)
    next_attempt_at = Instant(required=True, allow_none=True,
                              **_doc("when the next attempt is due after a failed one"))
    last_error = fields.String(required=True, allow_none=True)


class NoticeViewSchema(NoticeSchema):
    """A notice (its body, as delivered) with where it stands and the feedback received."""

    uscc = USCC(required=True, **_doc("the merchant's code (also in merchant.uscc)"))
    status = fields.String(required=True, validate=validate.OneOf(NOTICE_STATUSES), **_doc(
        "pending: being delivered; held: a lift waiting for its imposition's delivery; "
        "delivered; dead: in the dead-letter store; available: a pull subscriber's notice"))
    delivery = fields.Nested(NoticeDeliverySchema, required=True)
    feedback = fields.List(fields.Nested(FeedbackViewSchema), required=True,
                           **_doc("oldest first"))


class NoticeListSchema(Schema):
    subscriber = fields.String(required=True, allow_none=True,
                               **_doc("the subscriber asked for (null: every one visible)"))
    notices = fields.List(fields.Nested(NoticeViewSchema), required=True,
                          **_doc("oldest first"))


class NoticesQuerySchema(Schema):
    subscriber = fields.String(**_doc("one subscriber's notices (a platform: only its own; "
                                      "default: every subscriber visible to the caller)"))
    uscc = fields.String(**_doc("only this merchant's notices"))
    kind = fields.String(validate=validate.OneOf(NOTICE_KINDS))
    limit = fields.Integer(validate=validate.Range(min=1, max=1000),
                           **_doc("at most this many, oldest first (default 1000)"))


class ClosureCountsSchema(Schema):
    notices = fields.Integer(required=True, **_doc("notices that ask for action (impositions "
                                                   "and lifts)"))
    sent = fields.Integer(required=True, **_doc("delivered, or available to a pull subscriber"))
    acknowledged = fields.Integer(required=True, **_doc("any feedback posted"))
    applied = fields.Integer(required=True)
    not_applicable = fields.Integer(required=True)
    overdue = fields.Integer(required=True, **_doc(
        "neither applied nor not applicable, and act_by is before as_of"))
    pending = fields.Integer(required=True, **_doc("still being delivered"))
    dead = fields.Integer(required=True, **_doc("in the dead-letter store"))
    informational = fields.Integer(required=True, **_doc(
        "mutual recognition notices (in no other count)"))


class ClosureRowSchema(ClosureCountsSchema):
    subscriber_id = fields.String(required=True)
    kind = fields.String(required=True, allow_none=True, validate=validate.OneOf(
        SUBSCRIBER_KINDS), **_doc("null when the subscription was deleted since"))
    platform_id = fields.String(required=True, allow_none=True)
    department = fields.String(required=True, allow_none=True)


class ClosureSchema(Schema):
    """Closure (发起 - 响应 - 反馈) per subscriber at ``as_of``, and the totals."""

    as_of = Instant(required=True)
    subscribers = fields.List(fields.Nested(ClosureRowSchema), required=True,
                              **_doc("subscribers with at least one notice, by id"))
    totals = fields.Nested(ClosureCountsSchema, required=True)


class ClosureQuerySchema(Schema):
    subscriber = fields.String(**_doc("one subscriber (a platform: only its own)"))
    as_of = Instant(**_doc("count overdue notices at this instant (default: now)"))


class DeadNoticeSchema(Schema):
    """A notice in the dead-letter store: why its delivery stopped."""

    notice_id = fields.String(required=True)
    subscriber_id = fields.String(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(NOTICE_KINDS))
    uscc = USCC(required=True)
    restriction_id = fields.String(required=True)
    reason = fields.String(required=True)
    attempts = fields.Integer(required=True)
    state = fields.String(required=True, validate=validate.Equal("dead"))
    times = fields.Integer(required=True, **_doc("how many times it was dead-lettered"))
    dead_at = Instant(required=True)
    created_at = Instant(required=True, **_doc("when the notice was issued"))
    redelivered_at = Instant(**_doc("the last redelivery, when it was redelivered before"))
    redelivered_by = fields.String(**_doc("role:subject of that redelivery"))


class DeadNoticeListSchema(Schema):
    dead_notices = fields.List(fields.Nested(DeadNoticeSchema), required=True,
                               **_doc("oldest dead-lettering first"))


class DeadNoticesQuerySchema(Schema):
    subscriber = fields.String(**_doc("one subscriber's dead-lettered notices"))
    limit = fields.Integer(validate=validate.Range(min=1, max=1000), **_doc("default 100"))


class RedeliveryResultSchema(Schema):
    notice_id = fields.String(required=True)
    result = fields.String(required=True, validate=validate.OneOf(REDELIVERY_RESULTS), **_doc(
        "an imposition is taken along when its dead-lettered lift is redelivered"))


class RedeliveryAnswerSchema(Schema):
    redelivered = fields.Integer(required=True, **_doc("notices sent again"))
    results = fields.List(fields.Nested(RedeliveryResultSchema), required=True)
