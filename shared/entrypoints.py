"""Nameko entrypoints that never lose a message and never loop on a poison one.

nameko acks a message whose handler raised (the message is lost), and ``requeue_on_error``
loops a poison message forever. Here a failed message is re-published, with publisher confirms,
to ``retry.<queue>`` (a queue whose per-message TTL dead-letters it back to ``<queue>``) with an
exponential, jittered delay, and only then acked. After ``RETRY_MAX_ATTEMPTS`` attempts, or at
once for a ``PermanentError`` (a message that can never succeed), it goes to ``dlq.<queue>``
through the ``lianchen.dlx`` exchange with the reason in its headers. ``shared.deadletters``
lists and replays them.

Every entrypoint also makes sure the worker has a ``correlation_id`` in its context data:
from the AMQP headers, the message's ``correlation_id`` property, the event envelope, the
``X-Correlation-Id`` HTTP header, or a new one. nameko forwards context data as headers on every
event the worker dispatches, so the id follows a violation across services.
"""
from __future__ import annotations

import json
import math
import random
import time
import uuid
from datetime import datetime, timezone
from decimal import Decimal
from functools import partial

import eventlet
import orjson
import pymongo.errors

from eventlet.event import Event
from kombu import Exchange, Queue
from marshmallow import ValidationError
from nameko.amqp.publish import get_connection, get_producer
from nameko.constants import AMQP_URI_CONFIG_KEY
from nameko.containers import ContainerBeingKilled
from nameko.events import BROADCAST, EventHandler
from nameko.extensions import Entrypoint, SharedExtension
from nameko.messaging import Consumer, HeaderDecoder, QueueConsumer
from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import WebServer, WsgiApp
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.wrappers import Request as WerkzeugRequest
from werkzeug.wrappers import Response

from contracts.common import NUL, NUL_PROBLEM, field_errors, nul_paths, visible
from shared import auth, bususers, metrics, resilience
from shared.logging import get_logger
from shared.messages import (body_bytes, correlation_or_new, decode_body, header_int, message_context,
                             new_correlation_id, safe_headers, screen)
from shared.mongo import connect
from shared.shards import (EXCHANGE_HEADER, HANDLER_HEADER, PARTITION_HEADER, SOURCE_HEADER,
                           ShardConsumer, shard_exchange_name, shard_retry_queue)

DLX = "lianchen.dlx"
MAX_HTTP_BODY = 2 * 1024 * 1024  # bytes; a batch of 500 records is well under 1 MiB
MAX_MESSAGE_BODY = 256 * 1024  # bytes; one record, amendment or revocation
MAX_EVENT_BODY = 1024 * 1024  # bytes; an event carries at most one record and its decision
# (the broker refuses anything over 4 MiB itself: ``max_message_size`` in its config)
# A retried or dead-lettered copy carries at most this much of the body. A refused body can be
# far larger once received: kombu inflates a message with a ``compression`` header before any
# check (a 40 KB zlib bomb became 8 MB), and a copy over the broker's limit is refused by it,
# so the message would be requeued and refused again forever.
MAX_COPY_BODY = 1024 * 1024
TRUNCATED_HEADER = "x-lianchen-truncated-from"  # the body's size in bytes before truncation
RECEIVED_COMPRESSION_HEADER = "x-lianchen-received-compression"
AUTHORIZATION_HEADER = "authorization"
ATTEMPTS_HEADER = "x-lianchen-attempts"
OUTAGES_HEADER = "x-lianchen-outages"  # failures because the store was unreachable
REASON_HEADER = "x-lianchen-reason"
QUEUE_HEADER = "x-lianchen-queue"
FAILED_AT_HEADER = "x-lianchen-failed-at"
# Retries and replays reach the queue through the default exchange, which changes the routing
# key; the original one travels in this header.
ROUTING_KEY_HEADER = "x-lianchen-routing-key"
MAX_DELAY_MS = 60_000
# The store did not answer at all (AutoReconnect, ServerSelectionTimeoutError, NetworkTimeout).
STORE_UNAVAILABLE = (pymongo.errors.ConnectionFailure,)
CREDENTIAL_RETRY_SECONDS = 1.0  # pause before requeueing when the key store is down

_log = get_logger(component="entrypoints")
resilience.patch_nameko()



def bounded_copy(body: bytes, headers: dict) -> tuple[bytes, dict]:
    """The body and headers a retried or dead-lettered copy is published with: the body as
    received (kombu has already inflated a compressed one, so the ``compression`` header no
    longer describes it and is kept only under another name), cut to ``MAX_COPY_BODY`` bytes
    with the original size in a header."""
    headers = dict(headers)
    if "compression" in headers:
        headers[RECEIVED_COMPRESSION_HEADER] = str(headers.pop("compression"))[:200]
    if len(body) > MAX_COPY_BODY:
        headers[TRUNCATED_HEADER] = len(body)
        body = body[:MAX_COPY_BODY]
    return body, headers

class TooLarge(Exception):
    pass


class PermanentError(Exception):
    """Retrying cannot help (malformed message, contract violation): dead-letter at once."""


def dlq_name(queue_name: str) -> str:
    return f"dlq.{queue_name}"


def retry_queue_name(queue_name: str) -> str:
    return f"retry.{queue_name}"


def backoff_ms(attempt: int, base_ms: int) -> int:
    """Exponential backoff with full jitter in [0.5, 1.5) of the nominal delay, capped."""
    nominal = base_ms * (2 ** max(attempt - 1, 0))
    return int(min(MAX_DELAY_MS, nominal * (0.5 + random.random())))


class Guard(SharedExtension):
    """One key store and rate limiter per container, shared by its HTTP entrypoints."""

    def setup(self):
        self.client = connect(self.container.config.get("MONGO_URI"))
        self.keys = auth.KeyStore.from_config(self.container.config, self.client)
        self.limiter = auth.RateLimiter()

    def stop(self):
        self.client.close()

    kill = stop

    def admit(self, request, roles) -> "auth.Principal | None":
        """The caller, after authentication, role check and rate limit; raises otherwise."""
        if roles is PUBLIC:
            return None
        principal = self.keys.verify(auth.bearer(request.headers.get("Authorization")))
        if not principal.admits(roles):
            raise auth.AuthError(403, f"role {principal.role!r} may not call this endpoint "
                                      f"(allowed: {', '.join(roles + (auth.ADMIN,))})")
        self.limiter.take(principal)
        return principal

    def admit_message(self, headers, roles, routing_key="", body=b"") -> "auth.Principal":
        """The sender of an AMQP message: from its ``authorization`` header, or, for a retried
        or replayed copy (which never carries the key), from its signed admission headers."""
        token = headers.get(AUTHORIZATION_HEADER)
        if isinstance(token, bytes):
            token = token.decode("utf-8", "replace")
        if token is None and auth.PRINCIPAL_HEADER in headers:
            principal = self.keys.verify_signed(headers, routing_key, body)
        else:
            if not isinstance(token, str) or not token:
                raise auth.AuthError(401, "missing credential: set the 'authorization' header")
            token = token[7:] if token.lower().startswith("bearer ") else token
            principal = self.keys.verify(token.strip())
        if not principal.admits(roles):
            raise auth.AuthError(403, f"role {principal.role!r} may not publish here")
        return principal


PUBLIC = None  # ``roles=PUBLIC``: no credential (health, metrics, published contracts)


class _Failures:
    """Re-publishing of failed messages; shared by the reliable entrypoints."""

    def _config_int(self, key, default):
        return int(self.container.config.get(key, default))

    def _body(self, message) -> bytes:
        """The body a retried or dead-lettered copy carries (``ReliableConsumer(redact=)``)."""
        return body_bytes(message)

    def _publish(self, message, exchange, routing_key, headers, declare, expiration=None):
        amqp_uri = self.container.config[AMQP_URI_CONFIG_KEY]
        body, headers = bounded_copy(self._body(message), headers)
        with get_producer(amqp_uri, confirms=True) as producer:
            producer.publish(
                # the bytes as received (or redacted), whatever content type and encoding the
                # sender named (kombu would re-encode a str with an encoding like 'binary' and
                # fail, and serialise a body without content type)
                body,
                exchange=exchange,
                routing_key=routing_key,
                headers=headers,
                content_type=message.content_type or "application/octet-stream",
                # none named is utf-8 (``shared.messages.screen``), as it was received
                content_encoding=message.content_encoding or (
                    "utf-8" if message.content_type == "application/json" else "binary"),
                delivery_mode=2,
                expiration=expiration,
                declare=declare,
                retry=True,
                retry_policy={"max_retries": 5},
                mandatory=False,
                user_id=bususers.user_of(amqp_uri),  # validated by the broker
            )

    @property
    def producers(self) -> "bususers.ProducerCheck":
        """Who this service connects as, and whom it accepts events from."""
        check = getattr(self, "_producers", None)
        if check is None:
            check = self._producers = bususers.ProducerCheck(
                self.container.config[AMQP_URI_CONFIG_KEY], self.container.service_name)
        return check

    def _failure_entities(self):
        queue_name = self.queue.name
        # A least-privilege service user may not configure the shared dead-letter exchange
        # (the topology declares it): it only checks that it is there.
        dlx = Exchange(DLX, type="topic", durable=True, passive=self.producers.enforced)
        dlq = Queue(dlq_name(queue_name), exchange=dlx, routing_key=queue_name, durable=True)
        retry_queue = Queue(
            retry_queue_name(queue_name), durable=True,
            queue_arguments={"x-dead-letter-exchange": "",
                             "x-dead-letter-routing-key": queue_name},
        )
        return dlx, dlq, retry_queue

    def declare_failure_queues(self):
        """Declare ``dlq.<queue>`` and ``retry.<queue>`` up front, so operators see them and
        nothing dead-lettered before the first failure can be dropped."""
        amqp_uri = self.container.config[AMQP_URI_CONFIG_KEY]
        with get_connection(amqp_uri) as connection:
            channel = connection.channel()
            try:
                for entity in self._failure_entities():
                    entity(channel).declare()
            finally:
                channel.close()

    def _redelivery_headers(self, message) -> dict:
        """Headers of a retried or dead-lettered copy."""
        return _with_routing_key(message)

    def dead_letter(self, message, reason: str, attempts: int):
        queue_name = self.queue.name
        headers = self._redelivery_headers(message)  # never with a credential
        headers.update({
            ATTEMPTS_HEADER: attempts,
            REASON_HEADER: reason[:1000],
            QUEUE_HEADER: queue_name,
            FAILED_AT_HEADER: datetime.now(timezone.utc).isoformat(),
        })
        dlx, dlq, _ = self._failure_entities()
        self._publish(message, dlx, queue_name, headers, declare=[dlx, dlq])
        metrics.message("dead_lettered", self.container.service_name, queue_name)
        _log.warning("message dead-lettered", queue=queue_name, reason=reason[:300],
                     attempts=attempts)

    def schedule_retry(self, message, attempts: int, reason: str, outages: int = 0):
        queue_name = self.queue.name
        delay = backoff_ms(outages or attempts, self._config_int("RETRY_BASE_DELAY_MS", 200))
        _, _, retry_queue = self._failure_entities()
        headers = self._redelivery_headers(message)
        headers[ATTEMPTS_HEADER] = attempts
        if outages:
            headers[OUTAGES_HEADER] = outages
        headers[REASON_HEADER] = reason[:1000]
        self._publish(message, "", retry_queue.name, headers, declare=[retry_queue],
                      expiration=delay / 1000.0)
        metrics.message("retried", self.container.service_name, queue_name)
        _log.info("message scheduled for retry", queue=queue_name, attempt=attempts,
                  delay_ms=delay, reason=reason[:300])

    def settle(self, message, exc_info):
        """Ack after success, or after the failure was safely re-published."""
        if self.resolve(message, exc_info):
            self.queue_consumer.ack_message(message)
        else:
            self.queue_consumer.requeue_message(message)

    def resolve(self, message, exc_info) -> bool:
        """Re-publish a failed message for retry or to its dead-letter queue. False when that
        failed (broker trouble): the caller must requeue the message."""
        metrics.message("handled" if exc_info is None else "failed",
                        self.container.service_name, self.queue.name)
        if exc_info is not None:
            exc = exc_info[1]
            headers = safe_headers(message)
            attempts = header_int(headers, ATTEMPTS_HEADER) + 1
            outages = header_int(headers, OUTAGES_HEADER) + 1
            try:
                reason = f"{type(exc).__name__}: {exc}"
            except Exception:  # noqa: BLE001 - an exception whose str() fails
                reason = type(exc).__name__
            permanent = isinstance(exc, (PermanentError, ValidationError))
            max_attempts = self._config_int("RETRY_MAX_ATTEMPTS", 5)
            try:
                if (isinstance(exc, STORE_UNAVAILABLE)
                        and outages < self._config_int("RETRY_MAX_OUTAGES", 100)):
                    # The store is unreachable (restart, network): not the message's fault,
                    # so it does not spend an attempt; waited out with the same backoff (up
                    # to MAX_DELAY_MS apart), bounded by RETRY_MAX_OUTAGES.
                    self.schedule_retry(message, attempts - 1, reason, outages=outages)
                elif permanent or attempts >= max_attempts:
                    self.dead_letter(message, reason, attempts)
                else:
                    self.schedule_retry(message, attempts, reason)
            except Exception as publish_exc:  # broker trouble: keep the message, try again
                _log.error("could not re-publish failed message; requeueing",
                           queue=self.queue.name, error=str(publish_exc))
                return False
        return True

    def spawn(self, args, message, context_data):
        handle_result = partial(self.handle_result, message)
        try:
            self.container.spawn_worker(self, args, {}, context_data=context_data,
                                        handle_result=handle_result)
        except ContainerBeingKilled:
            self.queue_consumer.requeue_message(message)

    def handle_result(self, message, worker_ctx, result=None, exc_info=None):
        self.settle(message, exc_info)
        return result, exc_info


# Never re-published with a retried or dead-lettered copy: secrets.
SECRET_HEADERS = (AUTHORIZATION_HEADER, f"nameko.{AUTHORIZATION_HEADER}", "nameko.auth_token",
                  "auth_token")


def _with_routing_key(message) -> dict:
    headers = safe_headers(message)
    for name in SECRET_HEADERS:
        headers.pop(name, None)
    if not isinstance(headers.get(ROUTING_KEY_HEADER), str):
        headers[ROUTING_KEY_HEADER] = (message.delivery_info or {}).get("routing_key")
    return headers


class TolerantQueueConsumer(QueueConsumer):
    """A queue consumer that screens every message before decoding it (size, compression,
    content type) and dead-letters what it cannot decode instead of crashing."""

    def get_consumers(self, consumer_cls, channel):
        consumers = super().get_consumers(consumer_cls, channel)
        for provider, consumer in self._consumers.items():
            consumer.on_decode_error = partial(self._on_decode_error, provider)
            # kombu decodes nothing when ``on_message`` is set: we screen, then decode
            consumer.on_message = partial(self._on_raw_message, provider)
        return consumers

    def _on_raw_message(self, provider, message):
        reason = screen(message, MAX_MESSAGE_BODY)
        if reason is not None:
            self._refuse(provider, message, reason)
            return
        try:
            body = decode_body(message)
        except ValueError as exc:
            self._on_decode_error(provider, message, exc)
            return
        self.handle_message(provider, body, message)

    def _on_decode_error(self, provider, message, exc):
        self._refuse(provider, message, f"PermanentError: undecodable body: {exc}")

    def _refuse(self, provider, message, reason):
        try:
            provider.dead_letter(message, reason, attempts=1)
            resilience.ack(message)
        except Exception as publish_exc:  # noqa: BLE001 - broker trouble: keep the message
            _log.error("could not dead-letter refused message", error=str(publish_exc))
            resilience.requeue(message)


class ReliableConsumer(_Failures, Consumer):
    """``@consume`` for queues that outside systems publish to (agencies' intake).

    The handler is called as ``handler(body, meta)``; ``meta`` holds the routing key and the
    AMQP ``message_id`` property (a producer's idempotency handle for its message).

    With ``roles`` every message must carry a credential in its ``authorization`` header
    (``Bearer <key>`` or the bare key) of one of those roles (administrators always pass);
    a message without one is dead-lettered at once with the reason, never handled. A principal
    in the message's own headers is never trusted.
    """

    queue_consumer = TolerantQueueConsumer()
    guard = Guard()

    def __init__(self, queue, *, roles, redact=None, **kwargs):
        """``redact(body: bytes) -> bytes``: what a retried or dead-lettered copy keeps of
        the body (violations' intake replaces identity numbers by person ids and masks)."""
        self.roles = roles if roles is PUBLIC else tuple(roles)
        self.redact = redact
        super().__init__(queue, **kwargs)

    def _body(self, message) -> bytes:
        """Computed once per message: the signed admission covers exactly these bytes."""
        cached = getattr(message, "lianchen_copy_body", None)
        if cached is not None:
            return cached
        body = body_bytes(message)
        if self.redact is not None:
            try:
                body = self.redact(body)
            except Exception as exc:  # noqa: BLE001 - a body too hostile to redact (nested
                # 100,000 deep): keep nothing of it rather than loop on the re-publish
                _log.warning("could not redact a failed message's body; dropped from the copy",
                             queue=self.queue.name, error=type(exc).__name__)
                body = json_dumps({"unredactable_body_bytes": len(body)})
        message.lianchen_copy_body = body
        return body

    def setup(self):
        super().setup()
        self.declare_failure_queues()

    def _redelivery_headers(self, message) -> dict:
        """The key never travels on: a copy carries the admitted principal, signed over its
        body and routing key (``auth.KeyStore.sign_message``), checked again on redelivery."""
        headers = super()._redelivery_headers(message)
        headers.pop(AUTHORIZATION_HEADER, None)
        headers.pop(auth.PRINCIPAL_HEADER, None)
        headers.pop(auth.SIGNATURE_HEADER, None)
        principal = getattr(message, "lianchen_principal", None)
        if principal is not None:
            headers.update(self.guard.keys.sign_message(  # over the body the copy carries
                principal, headers.get(ROUTING_KEY_HEADER) or "", self._body(message)))
        return headers

    def handle_message(self, body, message):
        # Runs in a managed thread of the container: an exception here would kill it.
        try:
            self._handle_message(body, message)
        except Exception as exc:  # noqa: BLE001 - whatever the message holds
            _log.error("could not handle a message; dead-lettering", queue=self.queue.name,
                       error=f"{type(exc).__name__}: {exc}"[:300])
            self._refuse(message, f"PermanentError: unreadable message: {type(exc).__name__}")

    def _handle_message(self, body, message):
        context_data = message_context(message)
        headers = safe_headers(message)
        if len(body_bytes(message)) > MAX_MESSAGE_BODY:
            self._refuse(message, f"PermanentError: message body over {MAX_MESSAGE_BODY} bytes")
            return
        routing_key = headers.get(ROUTING_KEY_HEADER)
        routing_key = (routing_key if isinstance(routing_key, str)
                       else (message.delivery_info or {}).get("routing_key"))
        if self.roles is not PUBLIC:
            try:
                principal = self.guard.admit_message(headers, self.roles, routing_key,
                                                     body_bytes(message))
            except (auth.AuthError, auth.RateLimited) as exc:
                self._refuse(message, f"AuthError: {exc}")
                return
            except Exception as exc:  # noqa: BLE001 - the key store is unreachable
                # Not the message's fault, so no retry counted: it goes back to its queue.
                # This runs outside a worker; an exception here would kill the container.
                _log.warning("could not check a message's credential; requeueing",
                             queue=self.queue.name, error=f"{type(exc).__name__}: {exc}"[:300])
                eventlet.sleep(CREDENTIAL_RETRY_SECONDS)
                self.queue_consumer.requeue_message(message)
                return
            refusal = self._sender_refusal(message, headers, principal)
            if refusal is not None:
                self._refuse(message, refusal)
                return
            context_data[auth.PRINCIPAL_KEY] = principal.encode()
            message.lianchen_principal = principal  # for a retried or dead-lettered copy
        properties = message.properties or {}
        if "correlation_id" not in context_data:
            context_data["correlation_id"] = correlation_or_new(
                properties.get("correlation_id") or _envelope_correlation(body))
        meta = {"routing_key": routing_key,
                "message_id": properties.get("message_id"),
                "reply_to": properties.get("reply_to")}
        self.spawn((body, meta), message, context_data)

    def _sender_refusal(self, message, headers, principal) -> str | None:
        """With least-privilege broker users: an agency's key arrives only from that agency's
        broker user (``<ns>.agency.<code>``), an administrator's from the operator's; a copy
        with a signed admission (a retry, a replay) only from this service's own user or the
        operator's (the signature proved the admission)."""
        check = self.producers
        if not check.enforced:
            return None
        user_id = (message.properties or {}).get("user_id")
        operator = bususers.operator_user(check.namespace)
        if headers.get(AUTHORIZATION_HEADER) is None:
            allowed = {check.user, operator}
        elif principal.role == "agency":
            try:
                allowed = {bususers.agency_user(check.namespace, principal.subject)}
            except ValueError:
                allowed = set()
        else:
            allowed = {operator}
        if user_id in allowed:
            return None
        return (f"ForgedProducer: a {principal.role} key of {principal.subject!r} published by "
                f"broker user {str(user_id or 'without user_id')[:100]!r}; accepted only from "
                f"{', '.join(sorted(allowed)) or 'no broker user'}")

    def _refuse(self, message, reason):
        try:
            self.dead_letter(message, reason, attempts=1)
        except Exception as exc:
            _log.error("could not dead-letter refused message; requeueing", error=str(exc))
            self.queue_consumer.requeue_message(message)
            return
        self.queue_consumer.ack_message(message)


class ReliableEventHandler(_Failures, Entrypoint, HeaderDecoder):
    """``@event_handler(source_service, event_type)``: bounded retries, a dead-letter queue per
    handler, and per-entity routing so that many instances of a service never handle two
    events about one entity at the same moment (``shared.shards``).

    Messages arrive through the service's shard queues; ``dlq.<name>`` keeps the per-handler
    name ``evt-<source>-<type>--<service>.<method>``.
    """

    shards = ShardConsumer()

    def __init__(self, source_service, event_type, **kwargs):
        self.source_service = source_service
        self.event_type = event_type
        super().__init__(**kwargs)

    @property
    def legacy_queue_name(self) -> str:
        """The handler's own queue in nameko's topology: now only the name of its DLQ."""
        return (f"evt-{self.source_service}-{self.event_type}--"
                f"{self.container.service_name}.{self.method_name}")

    def setup(self):
        self.queue = Queue(self.legacy_queue_name)
        self.declare_failure_queues()
        self.shards.declare(self)
        self.shards.register_provider(self)

    def stop(self):
        self.shards.unregister_provider(self)

    def _failure_entities(self):
        dlx, dlq, _ = super()._failure_entities()
        return dlx, dlq, shard_retry_queue(self.container.service_name)

    def _redelivery_headers(self, message) -> dict:
        headers = super()._redelivery_headers(message)
        headers.setdefault(SOURCE_HEADER, self.source_service)
        headers[HANDLER_HEADER] = self.method_name
        # the copy is re-published by this service, not by the producer: it carries the
        # producer that was validated, sealed (``shared.bususers``); a refused one carries none
        for name in bususers.SEAL_HEADERS:
            headers.pop(name, None)
        if getattr(message, "lianchen_producer_validated", False) and self.producers.enforced:
            headers.update(self.producers.seal_headers(self.source_service, self.event_type,
                                                       self._body(message)))
        return headers

    def accepts(self, message) -> bool:
        """Is this handler's event: source and type from the headers a retry or replay
        carries, else from the exchange and routing key it was published with."""
        headers = safe_headers(message)
        info = message.delivery_info or {}
        source = headers.get(SOURCE_HEADER) or str(info.get("exchange") or "").removesuffix(".events")
        event_type = headers.get(ROUTING_KEY_HEADER) or info.get("routing_key")
        return (source == self.source_service and event_type == self.event_type
                and headers.get(HANDLER_HEADER) in (None, self.method_name))

    def handle_sharded(self, body, message, on_settled):
        refusal = self.producers.refusal((message.properties or {}).get("user_id"),
                                         safe_headers(message), self.source_service,
                                         self.event_type, self._body(message))
        if refusal is not None:  # not its producer's: dead-lettered once, unsealed
            on_settled(self._dead_letter_safely(message, refusal))
            return
        message.lianchen_producer_validated = True
        if not isinstance(body, dict):  # every event is an envelope (contracts.events)
            on_settled(self._dead_letter_safely(
                message, f"PermanentError: body is a {type(body).__name__}, not an envelope"))
            return
        # the principal of the request that caused the event: attribution, not a credential
        context_data = message_context(message, trusted=(auth.PRINCIPAL_KEY,))
        context_data.setdefault("correlation_id", correlation_or_new(_envelope_correlation(body)))
        self.container.spawn_worker(self, (body,), {}, context_data=context_data,
                                    handle_result=partial(self._sharded_result, message,
                                                          on_settled))

    def _dead_letter_safely(self, message, reason) -> bool:
        try:
            self.dead_letter(message, reason, attempts=1)
        except Exception as exc:  # noqa: BLE001 - broker trouble: the shard requeues it
            _log.error("could not dead-letter a message", error=str(exc))
            return False
        return True

    def _sharded_result(self, message, on_settled, worker_ctx, result=None, exc_info=None):
        on_settled(self.resolve(message, exc_info))
        return result, exc_info


def _envelope_correlation(body):
    return body.get("correlation_id") if isinstance(body, dict) else None


ORIGIN_HEADER = "x-lianchen-origin"


def origin(container) -> str:
    """A random id of a running container: ``shared.service.Dispatcher`` puts it on every
    event (header ``x-lianchen-origin``), so the container's own broadcast handlers can skip
    what it wrote itself."""
    value = getattr(container, "_lianchen_origin", None)
    if value is None:
        value = container._lianchen_origin = uuid.uuid4().hex
    return value


class ExpiringBroadcastHandler(EventHandler):
    """A broadcast handler (a queue per instance, deleted with it) for an in-memory read model
    that a periodic sync also keeps current. Its messages expire after
    ``BROADCAST_TTL_SECONDS`` (config, default 60) instead of piling up behind a burst: a
    change older than that is the sync's to bring in. In the fault suite's burst of 10,000
    violations, 85,000 ``RestrictionImposed`` waited in the restrictions instance's queue,
    drained at 22/s, an hour after the store had everything."""

    def __init__(self, source_service, event_type, **kwargs):
        super().__init__(source_service, event_type, handler_type=BROADCAST,
                         reliable_delivery=False, **kwargs)

    def setup(self):
        super().setup()
        ttl_ms = int(float(self.container.config.get("BROADCAST_TTL_SECONDS", 60)) * 1000)
        self.queue.queue_arguments = {**(self.queue.queue_arguments or {}),
                                      "x-message-ttl": ttl_ms}
        self.producers = bususers.ProducerCheck(self.container.config[AMQP_URI_CONFIG_KEY],
                                                self.container.service_name)
        if self.producers.enforced and self.source_service != self.container.service_name:
            self.queue.exchange.passive = True  # another service's exchange: not ours to declare

    def handle_message(self, body, message):
        """Only events of the source's own broker user feed the read model; anything else is
        dropped (a broadcast queue has no dead-letter queue: the periodic sync repairs).
        The instance that wrote the change applied it already (write-through): its own
        broadcast is acknowledged unread (no worker, no decoding). See ``origin``."""
        if (message.headers or {}).get(ORIGIN_HEADER) == origin(self.container):
            self.queue_consumer.ack_message(message)
            return
        try:
            refusal = self.producers.refusal((message.properties or {}).get("user_id"),
                                             safe_headers(message), self.source_service,
                                             self.event_type, body_bytes(message))
        except Exception as exc:  # noqa: BLE001 - whatever the message holds
            refusal = f"unreadable message: {type(exc).__name__}"
        if refusal is not None:
            _log.warning("broadcast event refused", source=self.source_service,
                         event_type=self.event_type, reason=refusal[:300])
            self.queue_consumer.ack_message(message)
            return
        super().handle_message(body, message)


consume = ReliableConsumer.decorator
event_handler = ReliableEventHandler.decorator
broadcast_handler = ExpiringBroadcastHandler.decorator


# --- HTTP ---------------------------------------------------------------------------------

def _json_default(value):
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def json_dumps(body) -> bytes:
    """UTF-8 JSON; datetimes as ``isoformat()`` (orjson writes the same text: ``+00:00``,
    microseconds only when non-zero, naive ones without offset)."""
    try:
        return orjson.dumps(body, default=_json_default, option=orjson.OPT_NON_STR_KEYS)
    except orjson.JSONEncodeError:  # e.g. an integer beyond 64 bits: the standard library
        return json.dumps(body, ensure_ascii=False, default=_json_default).encode("utf-8")


def json_response(status: int, body, headers: dict | None = None) -> Response:
    return Response(
        json_dumps(body),
        status=status,
        headers=headers or {},
        mimetype="application/json",
    )


PROBLEM_CONTENT_TYPE = "application/problem+json"


def problem_body(status: int, message: str, errors: list[dict] | None = None) -> dict:
    """An RFC 9457 problem: ``type`` ``about:blank`` (the status says what kind), ``title`` the
    status phrase, ``detail`` what was wrong here, ``errors`` (an extension member) each field
    with its problem; ``error`` repeats ``detail`` for clients of the form before (deprecated,
    docs/CHANGELOG.md)."""
    body = {"type": "about:blank", "title": HTTP_STATUS_CODES.get(status, "Error"),
            "status": status, "detail": message, "error": message}
    if errors is not None:
        body["errors"] = errors
    return body


def problem(status: int, message: str, errors: list[dict] | None = None) -> Response:
    return Response(json_dumps(problem_body(status, message, errors)), status=status,
                    mimetype=PROBLEM_CONTENT_TYPE)


class _JsonWsgiApp(WsgiApp):
    """nameko's WSGI app, with routing refusals (no such path: 404, wrong method: 405) as JSON
    like every other answer, instead of werkzeug's HTML pages."""

    def __call__(self, environ, start_response):
        adapter = self.url_map.bind_to_environ(environ)
        try:
            adapter.match()
        except HTTPException as exc:
            response = problem(exc.code or 404, f"{exc.name}: no {environ.get('REQUEST_METHOD')} "
                                                f"{WerkzeugRequest(environ, shallow=True).path[:200]}"
                                                f" here")
            for key, value in exc.get_headers(environ):
                if key.lower() == "allow":
                    response.headers["Allow"] = value
            return response(environ, start_response)
        return super().__call__(environ, start_response)


class JsonWebServer(WebServer):
    def get_wsgi_app(self):
        return _JsonWsgiApp(self)

    def kill(self):
        """nameko's WebServer has no kill: a killed container kept its listening socket open,
        and with SO_REUSEPORT (eventlet.listen's default) a container started after it on the
        same port shared the connections with a socket nobody accepts on any more: some
        requests hung for good. Close it, as stop does."""
        self._is_accepting = False
        if self._sock is not None:
            self._sock.close()


class HttpEntrypoint(HttpRequestHandler):
    """``@http`` with authentication, roles, rate limits, correlation ids and JSON errors.

    ``roles`` names the roles admitted (administrators always are); it is required so that an
    endpoint is never public by omission. A handler's schema errors become 400.
    """

    guard = Guard()
    server = JsonWebServer()

    def __init__(self, method, url, *, roles, **kwargs):
        if roles is not PUBLIC:
            roles = tuple(roles)
            unknown = set(roles) - set(auth.ROLES)
            if unknown:
                raise ValueError(f"unknown roles {sorted(unknown)} on {method} {url}")
        self.roles = roles
        super().__init__(method, url, **kwargs)

    def handle_request(self, request):
        request.shallow = False
        started = time.perf_counter()
        correlation_id = correlation_or_new(request.headers.get("X-Correlation-Id"))
        try:
            context_data = {"correlation_id": correlation_id}
            principal = self.guard.admit(request, self.roles)
            if (request.content_length or 0) > MAX_HTTP_BODY:
                raise TooLarge(f"request body over {MAX_HTTP_BODY} bytes")
            if principal is not None:
                context_data[auth.PRINCIPAL_KEY] = principal.encode()
                context_data["client_id"] = f"{principal.role}:{principal.subject}"
            _refuse_nul(request)
            response = self.answer(request, context_data)
        except Exception as exc:
            response = self.response_from_exception(exc)
        response.headers["X-Correlation-Id"] = correlation_id
        response.headers.extend(self._deprecation_headers())
        metrics.http_request(self.container.service_name, self.method, self.url,
                             response.status_code, time.perf_counter() - started)
        return response

    _deprecation = None

    def _deprecation_headers(self) -> dict[str, str]:
        """The declared endpoint's ``Deprecation``/``Sunset`` headers (contracts.http)."""
        if self._deprecation is None:
            from contracts import http as declared_http
            declared = next((e for e in declared_http.ENDPOINTS
                             if e.key == (self.container.service_name, self.method.upper(),
                                          self.url)), None)
            self._deprecation = declared.deprecation_headers() if declared else {}
        return self._deprecation

    def answer(self, request, context_data):
        args, kwargs = self.get_entrypoint_parameters(request)
        self.check_signature(args, kwargs)
        event = Event()
        self.container.spawn_worker(self, args, kwargs, context_data=context_data,
                                    handle_result=partial(self.handle_result, event))
        return self.response_from_result(event.wait())

    def response_from_exception(self, exc):
        if isinstance(exc, ValidationError):
            return problem(400, "invalid request", field_errors(exc.messages))
        if isinstance(exc, PermanentError):
            return problem(400, str(exc))
        if isinstance(exc, auth.AuthError):
            response = problem(exc.status, str(exc))
            if exc.status == 401:
                response.headers["WWW-Authenticate"] = 'Bearer realm="lianchen"'
            return response
        if isinstance(exc, TooLarge):
            return problem(413, str(exc))
        if isinstance(exc, STORE_UNAVAILABLE):
            _log.warning("store unavailable for an HTTP request", error=f"{type(exc).__name__}")
            response = problem(503, "the store is unavailable; retry shortly")
            response.headers["Retry-After"] = "5"
            return response
        if isinstance(exc, auth.RateLimited):
            response = problem(429, str(exc))
            response.headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
            return response
        _log.error("unhandled error in HTTP handler", error=f"{type(exc).__name__}: {exc}")
        return problem(500, "internal error; the correlation id identifies it in the logs")


http = HttpEntrypoint.decorator


class InlineHttpEntrypoint(HttpEntrypoint):
    """``@inline_http``: answered in the HTTP server's own greenthread, without a worker.

    For what must answer while every worker is busy (health, metrics, published contracts).
    A restarted instance takes its backlog at once: its consumers fill the worker pool, and an
    ordinary ``/health`` waited behind them for a slot (in a 10,000-violation fault run it did
    not answer for 5 minutes while the instance worked normally). The decorated function is
    called as ``function(container, request)``: there is no worker, hence no service instance
    and no dependencies; it must be quick and must not block for long.
    """

    def answer(self, request, context_data):
        function = getattr(self.container.service_cls, self.method_name)
        return function(self.container, request)


inline_http = InlineHttpEntrypoint.decorator


def read_json(request):
    """The request body as JSON, or a 400-worthy error naming the problem."""
    try:
        data = json.loads(request.get_data(as_text=True) or "null")
    except ValueError as exc:
        raise PermanentError(f"body is not valid JSON: {exc}") from exc
    bad = nul_paths(data)
    if bad:
        raise ValidationError({path: [NUL_PROBLEM] for path in bad})
    return data


def _refuse_nul(request) -> None:
    """No NUL character in the path or the query: the store cannot hold or match one."""
    problems = {}
    if NUL in request.path:
        problems["path"] = [NUL_PROBLEM]
    for key, values in request.args.lists():
        if NUL in key or any(NUL in v for v in values):
            problems[visible(key)] = [NUL_PROBLEM]
    if problems:
        raise ValidationError(problems)
