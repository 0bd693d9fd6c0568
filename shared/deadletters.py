"""Inspect and replay dead-lettered messages (queues ``dlq.<queue>``).

A dead letter keeps its original body and headers plus ``x-lianchen-reason``,
``x-lianchen-queue``, ``x-lianchen-attempts`` and ``x-lianchen-failed-at``. Replaying publishes
it back to the queue it failed on with the attempt counter reset (publisher confirms), and only
then removes it from the dead-letter queue. Event handlers' dead letters name the exchange they
go back through (``x-lianchen-exchange``, the service's shard exchange: the entity's key picks
the shard) and the one handler that failed (``x-lianchen-handler``): a crash in between leaves a copy in both, which the
idempotent consumers absorb.
"""
from __future__ import annotations

from dataclasses import dataclass

import pika

from shared.agency_client import _pika_uri
from shared.entrypoints import (ATTEMPTS_HEADER, FAILED_AT_HEADER, OUTAGES_HEADER, QUEUE_HEADER,
                                REASON_HEADER, ROUTING_KEY_HEADER)
from shared.shards import EXCHANGE_HEADER


@dataclass
class DeadLetter:
    queue: str
    reason: str
    attempts: int
    failed_at: str
    message_id: str | None
    body: bytes
    headers: dict | None = None


def _channel(amqp_uri: str):
    # ``amqp://a/;amqp://b/`` (a cluster, as the services take it): the first that answers
    nodes = [pika.URLParameters(_pika_uri(uri.strip())) for uri in amqp_uri.split(";") if uri.strip()]
    connection = pika.BlockingConnection(nodes)
    return connection, connection.channel()


def list_dead_letters(amqp_uri: str, dlq: str, limit: int = 100) -> list[DeadLetter]:
    """Look without taking: messages are fetched unacked and returned to the queue."""
    connection, channel = _channel(amqp_uri)
    found = []
    try:
        for _ in range(limit):
            method, properties, body = channel.basic_get(dlq, auto_ack=False)
            if method is None:
                break
            headers = properties.headers or {}
            found.append(DeadLetter(
                queue=str(headers.get(QUEUE_HEADER, dlq.removeprefix("dlq."))),
                reason=str(headers.get(REASON_HEADER, "(dead-lettered by the broker)")),
                attempts=int(headers.get(ATTEMPTS_HEADER, 0)),
                failed_at=str(headers.get(FAILED_AT_HEADER, "")),
                message_id=properties.message_id, body=body, headers=dict(headers)))
    finally:
        connection.close()  # unacked messages go back to the queue, in order
    return found


def replay(amqp_uri: str, dlq: str, limit: int | None = None,
           credential: str | None = None) -> int:
    """Move dead letters back to the queue they failed on. Returns how many were moved.

    Dead letters never keep the sender's credential; queues that require one (agency intake)
    need the operator's own (``credential``, an administrator's key), sent with each message.
    """
    connection, channel = _channel(amqp_uri)
    channel.confirm_delivery()
    moved = 0
    # Only what is there now: a replayed message that fails again comes back to this queue and
    # must not be replayed in a loop.
    present = channel.queue_declare(dlq, passive=True).method.message_count
    limit = present if limit is None else min(limit, present)
    try:
        while moved < limit:
            method, properties, body = channel.basic_get(dlq, auto_ack=False)
            if method is None:
                break
            headers = dict(properties.headers or {})
            target = str(headers.pop(QUEUE_HEADER, dlq.removeprefix("dlq.")))
            exchange = str(headers.pop(EXCHANGE_HEADER, "") or "")
            routing_key = str(headers.get(ROUTING_KEY_HEADER) or target) if exchange else target
            for key in (ATTEMPTS_HEADER, OUTAGES_HEADER, REASON_HEADER, FAILED_AT_HEADER):
                headers.pop(key, None)
            headers["x-lianchen-replayed"] = True
            if credential:
                headers["authorization"] = f"Bearer {credential}"
            properties.headers = headers
            channel.basic_publish(exchange, routing_key, body, properties, mandatory=True)
            channel.basic_ack(method.delivery_tag)
            moved += 1
    finally:
        connection.close()
    return moved
