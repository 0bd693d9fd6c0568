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

import eventlet
from amqp.exceptions import AMQPError
from kombu.exceptions import OperationalError
from nameko.messaging import QueueConsumer
from nameko.rpc import Rpc as NamekoRpc

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


class Rpc(NamekoRpc):
    """``@rpc`` whose reply may fail to go out. nameko 2.14 lets the reply's publish error
    (the broker is restarting) escape the worker, which kills the container. Here the request
    is left to the broker instead (requeued, or redelivered when its channel is gone): the
    handler runs again once connected, so an ``@rpc`` method must be safe to repeat (ours
    are reads). The caller, which never got its reply, gives up after ``call``'s timeout."""

    def handle_result(self, message, worker_ctx, result, exc_info):
        try:
            return super().handle_result(message, worker_ctx, result, exc_info)
        except GONE as exc:
            _log.warning("rpc reply not sent: the broker connection is gone; request left "
                         "to the broker", method=self.method_name, error=str(exc))
            requeue(message)
            return result, exc_info


rpc = Rpc.decorator

#: How long ``call`` waits for a reply (a reply lost in a broker restart never comes).
RPC_TIMEOUT_SECONDS = 30.0


class RpcTimeout(Exception):
    """No reply in time: the handler's worker fails, and its message is retried with backoff."""


def call(method_proxy, *args, timeout: float = RPC_TIMEOUT_SECONDS, **kwargs):
    """``method_proxy(*args, **kwargs)`` (an ``RpcProxy`` method), but bounded: nameko 2.14
    waits for a reply forever, and a request or reply lost while the broker restarts held
    the caller's worker, and the shard message it was handling, for good."""
    reply = method_proxy.call_async(*args, **kwargs)
    with eventlet.Timeout(timeout, RpcTimeout(
            f"no reply from {method_proxy.service_name}.{method_proxy.method_name} "
            f"in {timeout:g} s")):
        return reply.result()
