"""Inspect and replay dead-lettered messages (queues ``dlq.<queue>``).

A dead letter keeps its original body and headers plus ``x-lianchen-reason``,
``x-lianchen-queue``, ``x-lianchen-attempts`` and ``x-lianchen-failed-at``. Replaying publishes
it back to the queue it failed on with the attempt counter reset (publisher confirms), and only
then removes it from the dead-letter queue. Where it goes is read from the dead-letter queue's
name, never from the message: ``dlq.evt-<source>-<type>--<service>.<method>`` goes back through
``<service>.shards`` (the entity's key picks the shard) to that one handler; any other
``dlq.<queue>`` to ``<queue>``. A crash in between leaves a copy in both, which the idempotent
consumers absorb.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import pika

from shared.agency_client import _pika_uri
from shared.bususers import user_of
from shared.entrypoints import (ATTEMPTS_HEADER, FAILED_AT_HEADER, OUTAGES_HEADER, QUEUE_HEADER,
                                REASON_HEADER, ROUTING_KEY_HEADER, SECRET_HEADERS)
from shared.messages import header_int
from shared.shards import EXCHANGE_HEADER, HANDLER_HEADER, SOURCE_HEADER, shard_exchange_name


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
                attempts=header_int(headers, ATTEMPTS_HEADER),
                failed_at=str(headers.get(FAILED_AT_HEADER, "")),
                message_id=properties.message_id, body=body, headers=dict(headers)))
    finally:
        connection.close()  # unacked messages go back to the queue, in order
    return found


# ``dlq.evt-<source>-<type>--<service>.<method>``: an event handler's dead letters
HANDLER_QUEUE = re.compile(r"evt-(?P<source>[a-z0-9_]+)-(?P<type>[A-Za-z0-9_]+)--"
                           r"(?P<service>[a-z0-9_]+)\.(?P<method>[A-Za-z0-9_]+)")
# Never replayed: secrets, and the routing a message could otherwise choose for itself.
DROPPED = (ATTEMPTS_HEADER, OUTAGES_HEADER, REASON_HEADER, FAILED_AT_HEADER, QUEUE_HEADER,
           EXCHANGE_HEADER, HANDLER_HEADER, SOURCE_HEADER) + SECRET_HEADERS


def destination(dlq: str, headers: dict) -> tuple[str, str, dict]:
    """``(exchange, routing_key, headers)`` a dead letter of ``dlq`` goes back with: from the
    dead-letter queue's own name, never from the message's headers (anyone who can publish to
    the dead-letter exchange could otherwise send a forged event anywhere)."""
    if not dlq.startswith("dlq.") or len(dlq) <= 4:
        raise ValueError(f"not a dead-letter queue: {dlq!r}")
    queue = dlq.removeprefix("dlq.")
    headers = {k: v for k, v in headers.items() if k not in DROPPED}
    handler = HANDLER_QUEUE.fullmatch(queue)
    if handler:  # back through the service's shard exchange, to the one handler that failed
        headers.update({SOURCE_HEADER: handler["source"], HANDLER_HEADER: handler["method"],
                        ROUTING_KEY_HEADER: handler["type"]})
        return shard_exchange_name(handler["service"]), handler["type"], headers
    return "", queue, headers


def replay(amqp_uri: str, dlq: str, limit: int | None = None) -> int:
    """Move dead letters back to the queue they failed on. Returns how many were moved.

    A replayed message keeps the admission it had: an intake message that was admitted carries
    its signed principal (``shared.auth.KeyStore.sign_message``; checked again, so a key revoked
    since is refused); one that had no credential is refused again. The operator's own key is
    never added: replaying is moving, not vouching.
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
            exchange, routing_key, headers = destination(dlq, dict(properties.headers or {}))
            headers["x-lianchen-replayed"] = True
            properties.headers = headers
            # replayed by the operator, as the operator (the broker refuses any other user_id):
            # the consumer accepts it only with the producer seal its own copy carried
            properties.user_id = user_of(amqp_uri)
            channel.basic_publish(exchange, routing_key, body, properties, mandatory=True)
            channel.basic_ack(method.delivery_tag)
            moved += 1
    finally:
        connection.close()
    return moved
