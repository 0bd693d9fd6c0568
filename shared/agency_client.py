"""A small client for agencies' systems: publish violation records with plain pika.

Exchange ``lianchen.intake`` (topic, durable); routing keys ``violation.record``,
``violation.amend`` and ``violation.revoke``; body: the JSON record / amendment / revocation
(see ``contracts.violation``); properties: ``message_id`` (your idempotency handle, echoed in
the rejections store), ``correlation_id`` (follows the record through every service),
``content_type=application/json``, persistent delivery. Publisher confirms are on: ``publish``
returns only once the broker has taken responsibility for the message, and raises otherwise.

Record v2 (issue 18): a record may carry ``place_code``, ``procedure``, ``published_at``,
``persons`` and penalty type ``none`` (``contracts.violation``). ``report_publication`` tells
when a decision was published: an amendment of the full record with ``published_at`` (the same
report twice is a duplicate, nothing changes).
"""
from __future__ import annotations

import json
import uuid
from urllib.parse import urlsplit, urlunsplit

import pika

from shared.bususers import user_of

EXCHANGE = "lianchen.intake"
ROUTING_KEYS = {"record": "violation.record", "amend": "violation.amend",
                "revoke": "violation.revoke"}


class NotAccepted(RuntimeError):
    """The broker did not confirm the message (nacked or unroutable): publish it again."""


class AgencyPublisher:
    def __init__(self, amqp_uri: str = "amqp://guest:guest@127.0.0.1:5672/%2F",
                 credential: str | None = None):
        """``credential``: the agency's API key (``lc_...``), sent with every message."""
        self.credential = credential
        self.user = user_of(amqp_uri)
        self.connection = pika.BlockingConnection(pika.URLParameters(_pika_uri(amqp_uri)))
        self.channel = self.connection.channel()
        self.channel.confirm_delivery()

    def publish(self, body, command: str = "record", *, message_id: str | None = None,
                correlation_id: str | None = None, raw: bytes | None = None) -> str:
        """Publish one message; returns its message id. ``raw`` sends bytes as they are."""
        message_id = message_id or uuid.uuid4().hex
        payload = raw if raw is not None else json.dumps(body, ensure_ascii=False).encode("utf-8")
        try:
            self.channel.basic_publish(
                exchange=EXCHANGE,
                routing_key=ROUTING_KEYS[command],
                body=payload,
                properties=pika.BasicProperties(
                    content_type="application/json", content_encoding="utf-8",
                    delivery_mode=pika.DeliveryMode.Persistent, message_id=message_id,
                    correlation_id=correlation_id or uuid.uuid4().hex,
                    user_id=self.user,  # the broker checks it; violations checks the key's agency
                    headers={"authorization": f"Bearer {self.credential}"}
                    if self.credential else None),
                mandatory=True,
            )
        except (pika.exceptions.UnroutableError, pika.exceptions.NackError) as exc:
            raise NotAccepted(f"broker did not accept message {message_id}: {exc}") from exc
        return message_id

    def report_publication(self, record: dict, published_at, *, message_id: str | None = None,
                           correlation_id: str | None = None) -> str:
        """Report when the decision ``record`` (the full record as sent or as read back from
        the API) was published: an amendment (``violation.amend``) carrying ``published_at``
        (an ISO 8601 string or an aware datetime)."""
        when = published_at if isinstance(published_at, str) else published_at.isoformat()
        body = {"violation": {**record, "published_at": when},
                "reason": f"published on {when} (行政处罚信息公示)"}
        return self.publish(body, "amend", message_id=message_id, correlation_id=correlation_id)

    def close(self) -> None:
        if self.connection.is_open:
            self.connection.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _pika_uri(amqp_uri: str) -> str:
    """kombu writes the default vhost as a trailing '/', pika wants it as '%2F'."""
    parts = urlsplit(amqp_uri)
    if parts.scheme == "pyamqp":  # kombu's name for the same protocol
        parts = parts._replace(scheme="amqp")
        amqp_uri = urlunsplit(parts)
    if parts.path in ("", "/"):
        return urlunsplit(parts._replace(path="/%2F"))
    return amqp_uri
