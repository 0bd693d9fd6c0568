"""Acknowledging over a connection the broker has already dropped.

nameko 2.14's ``QueueConsumer.ack_message`` / ``requeue_message`` swallow only
``amqp.exceptions.ConnectionError``. When the broker restarts, the socket error a worker meets
while settling its message is an ``OSError`` (``ConnectionResetError``, ``BrokenPipeError``):
it escapes the worker, nameko kills the container, and the service process exits with its
consumers, while the message it was settling goes back to its queue anyway (the broker requeues
everything unacknowledged on a channel that closes). Found by the fault suite's broker restart:
violations and registry died mid-burst.

Settling is therefore best effort everywhere: a message whose channel is gone is the broker's
again, and the consumer's own reconnection delivers it anew (every consumer is idempotent).
"""
from __future__ import annotations

from amqp.exceptions import AMQPError
from kombu.exceptions import OperationalError
from nameko.messaging import QueueConsumer

from shared.logging import get_logger

_log = get_logger(component="amqp")

#: What settling a message can raise once its connection is gone.
GONE = (AMQPError, OperationalError, OSError)


def ack(message) -> bool:
    """Acknowledge ``message``; False when its channel is gone (the broker has it back)."""
    return _settle(message, "ack")


def requeue(message) -> bool:
    """Return ``message`` to its queue; False when its channel is gone (it is back anyway)."""
    return _settle(message, "requeue")


def _settle(message, how: str) -> bool:
    if not message.channel.connection:
        return False
    try:
        getattr(message, how)()
        return True
    except GONE as exc:
        _log.warning("message not settled: its connection is gone; the broker redelivers it",
                     how=how, error=str(exc))
        return False


def _ack_message(self, message):
    ack(message)


def _requeue_message(self, message):
    requeue(message)


def patch_nameko() -> None:
    """Make every nameko queue consumer (RPC, events, replies, ``@consume``) settle through
    ``ack``/``requeue`` above. Idempotent; applied when ``shared.entrypoints`` is imported,
    which every service does."""
    QueueConsumer.ack_message = _ack_message
    QueueConsumer.requeue_message = _requeue_message
