"""Notifications API: subscriptions and the notices recorded for a subscriber."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from contracts.common import USCC, Instant
from contracts.events import SECTORS
from contracts.registry import PLATFORM_ID
from contracts.violation import StrictSchema


class SubscriptionSchema(StrictSchema):
    subscriber_id = fields.String(required=True, validate=validate.Regexp(
        PLATFORM_ID, error="must be 2-64 of a-z, 0-9, '_' and '-'"))
    kind = fields.String(required=True, validate=validate.OneOf(("platform", "department")))
    platform_id = fields.String(load_default=None)
    sectors = fields.List(fields.String(validate=validate.OneOf(SECTORS)), load_default=None)
    measures = fields.List(fields.String(), load_default=None)
    webhook_url = fields.Url(load_default=None, schemes={"https", "http"}, require_tld=False)
    amqp_queue = fields.String(load_default=None)


class SubscriptionViewSchema(Schema):
    subscriber_id = fields.String(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(("platform", "department")))
    platform_id = fields.String(required=True, allow_none=True)
    sectors = fields.List(fields.String(), required=True, allow_none=True)
    measures = fields.List(fields.String(), required=True, allow_none=True)
    webhook_url = fields.String(required=True, allow_none=True)
    amqp_queue = fields.String(required=True, allow_none=True)


class MerchantSchema(Schema):
    uscc = USCC(required=True)
    name = fields.String(required=True)
    shop_id = fields.String(required=True, allow_none=True)


class NoticeMeasureSchema(Schema):
    id = fields.String(required=True)
    sector = fields.String(required=True, validate=validate.OneOf(SECTORS))
    action = fields.String(required=True)
    legal_basis = fields.String(required=True)
    department = fields.String(required=True)


class NoticeSchema(Schema):
    notice_id = fields.String(required=True, metadata={
        "description": "source event id > subscriber: the idempotency key"})
    subscriber_id = fields.String(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(("imposed", "lifted")))
    uscc = USCC(required=True)
    merchant = fields.Nested(MerchantSchema, required=True)
    measure = fields.Nested(NoticeMeasureSchema, required=True)
    reason = fields.String(required=True)
    restriction_id = fields.String(required=True)
    source_event_id = fields.String(required=True)
    act_by = Instant(required=True)
    status = fields.String(required=True)
    created_at = Instant(required=True)
    correlation_id = fields.String(required=True)


class NoticesPageSchema(Schema):
    subscriber = fields.String(required=True)
    notices = fields.List(fields.Nested(NoticeSchema), required=True)


class NoticesQuerySchema(Schema):
    subscriber = fields.String(required=True)
