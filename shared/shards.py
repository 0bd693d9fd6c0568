"""Per-entity routing: many instances of a service, one entity handled by one at a time.

FerretDB 1.x applies an update as read, modify, write (see ``shared.locks``), and our handlers
read a document, compute, and write it back (a score from the entity's records, the measures
in force for a violation). ``doc_lock`` serialises that inside one process only. With several
instances of a service as plain competing consumers, two events about one entity handled at
the same moment by two instances can lose an update. So events are routed by entity:

    <source>.events ──(routing key = event type)──► <service>.shards   (x-consistent-hash,
    e.g. violations.events, scoring.events, ...       exchange-to-exchange   hash-header
                                                      bindings, one per      x-lianchen-partition-key)
                                                      handled event type          │ weight 1 each
                                                  ┌──────────────┬───────────────┤
                                                  ▼              ▼               ▼
                                      <service>.shard.0   <service>.shard.1 ... .shard.K-1
                                      quorum queue, x-single-active-consumer: true

* Publishers put the entity key in the header ``x-lianchen-partition-key``
  (``partition_key``: the payload's ``partition_key`` or ``uscc``, or the ``uscc`` of a nested
  object such as ``record`` or ``restriction``; ``shared.service.Dispatcher`` does it for every
  event, the outbox relay included). All events about one entity, of whatever type and from
  whatever source, hash to the same shard of a consuming service.
* Every instance consumes every shard; the broker keeps exactly one consumer per shard active.
  When an instance dies, its connection closes, its unacknowledged messages return to their
  shard and the next waiting consumer (another instance) takes the shard over.
* Inside one instance, messages with the same key are handled one after the other, in the
  order the shard delivered them (``ShardConsumer._chains``); different keys run concurrently.
* The first instance to start is active on every shard. ``Rebalancer`` reads the consumers
  from the management API every ``SHARD_REBALANCE_SECONDS`` and an instance active on more
  than its share ``ceil(K / instances)`` hands shards over: it stops starting messages of that
  shard, waits until those in progress are acknowledged, cancels its consumer (the broker
  activates the next waiting one), returns what it held back, and registers again as a
  waiting consumer. A shard is never handled by two instances of one connection's lifetime.
  Without the management API nothing is rebalanced; correctness does not depend on it.

Failed messages are retried through ``retry.<service>.shards`` (per-message TTL, dead-lettered
back into ``<service>.shards``: the same key hashes to the same shard) and dead-lettered to
``dlq.evt-<source>-<type>--<service>.<method>`` (one per handler, as before); the headers say
which handler failed, so a retry or replay runs only that one.

The number of shards ``SHARDS`` (default 12: an even share for 1, 2, 3, 4 or 6 instances) is
fixed for the life of a deployment's queues; see docs/scaling.md for changing it.
"""
from __future__ import annotations

import json
import math
import os
import socket
import uuid
from collections import deque
from functools import partial
from urllib.parse import quote, unquote, urlsplit

import eventlet
import requests
from eventlet.event import Event
from kombu import Exchange, Queue
from kombu.mixins import ConsumerMixin
from nameko.amqp.publish import get_connection, get_producer
from nameko.constants import AMQP_URI_CONFIG_KEY, DEFAULT_HEARTBEAT, HEARTBEAT_CONFIG_KEY
from nameko.containers import ContainerBeingKilled
from nameko.extensions import ProviderCollector, SharedExtension
from nameko.standalone.events import get_event_exchange

from shared import bususers
from shared.logging import get_logger
from shared.messages import decode_body, safe_headers, screen
from shared.resilience import ack as _ack
from shared.resilience import requeue as _requeue

PARTITION_HEADER = "x-lianchen-partition-key"
HANDLER_HEADER = "x-lianchen-handler"  # a retried or replayed message: only this handler
SOURCE_HEADER = "x-lianchen-source"  # the source service, once the message left its exchange
EXCHANGE_HEADER = "x-lianchen-exchange"  # where a replayed dead letter goes (shared.deadletters)
DEFAULT_SHARDS = 12
MAX_EVENT_BODY = 1024 * 1024  # bytes; an event carries one record and its decision at most
DEFAULT_REBALANCE_SECONDS = 10.0

_log = get_logger(component="shards")


def partition_key(event) -> str | None:
    """The entity an event is about: ``partition_key`` or ``uscc`` of the payload, else the
    ``uscc`` of an object nested one level down (``record``, ``restriction``)."""
    if not isinstance(event, dict):
        return None
    payload = event.get("payload") if isinstance(event.get("payload"), dict) else event
    for name in ("partition_key", "uscc"):
        if isinstance(payload.get(name), str) and payload[name]:
            return payload[name]
    for value in payload.values():
        if isinstance(value, dict) and isinstance(value.get("uscc"), str) and value["uscc"]:
            return value["uscc"]
    return None


def shard_exchange_name(service: str) -> str:
    return f"{service}.shards"


def shard_queue_name(service: str, shard: int) -> str:
    return f"{service}.shard.{shard}"


def shard_retry_queue_name(service: str) -> str:
    return f"retry.{service}.shards"


def shard_exchange(service: str) -> Exchange:
    return Exchange(shard_exchange_name(service), type="x-consistent-hash", durable=True,
                    arguments={"hash-header": PARTITION_HEADER})


def shard_queue(service: str, shard: int) -> Queue:
    return Queue(shard_queue_name(service, shard), exchange=shard_exchange(service),
                 routing_key="1", durable=True,  # the binding's weight on the hash ring
                 queue_arguments={"x-queue-type": "quorum", "x-single-active-consumer": True})


def shard_retry_queue(service: str) -> Queue:
    """Retries wait here (per-message TTL), then go back through the hash exchange."""
    return Queue(shard_retry_queue_name(service), durable=True,
                 queue_arguments={"x-dead-letter-exchange": shard_exchange_name(service)})


def vhost_of(amqp_uri: str) -> str:
    path = urlsplit(amqp_uri.split(";")[0].strip()).path
    return unquote(path[1:]) if len(path) > 1 else "/"


def management_urls(config: dict) -> list[str]:
    raw = (config.get("RABBIT_MGMT_URL") or os.environ.get("RABBIT_MGMT_URL")
           or "http://guest:guest@127.0.0.1:15672")
    return [url.strip().rstrip("/") for url in raw.replace(";", ",").split(",") if url.strip()]


# -- rebalancing: pure decision, then the loop that asks the broker -------------------------

def instance_of(consumer_tag: str) -> str:
    return consumer_tag.split("|", 1)[0]


def shards_to_yield(consumers: list[dict], me: str, service: str, shards: int) -> list[str]:
    """Shard queues this instance should hand over: those it is active on beyond its share
    ``ceil(shards / instances)``, and only where another instance is waiting to take them.

    ``consumers``: the management API's ``/api/consumers/<vhost>`` rows."""
    prefix = shard_queue_name(service, 0)[:-1]
    rows = [c for c in consumers if str((c.get("queue") or {}).get("name", "")).startswith(prefix)]
    instances = {instance_of(str(c.get("consumer_tag", ""))) for c in rows}
    if len(instances) < 2 or me not in instances:
        return []
    share = math.ceil(shards / len(instances))
    mine = sorted({c["queue"]["name"] for c in rows
                   if instance_of(str(c["consumer_tag"])) == me and c.get("active")})
    waiting_elsewhere = {c["queue"]["name"] for c in rows
                         if instance_of(str(c["consumer_tag"])) != me and not c.get("active")}
    candidates = [name for name in mine if name in waiting_elsewhere]
    return candidates[:max(0, len(mine) - share)]


class _Shard:
    def __init__(self, index: int):
        self.index = index
        self.in_flight = 0  # delivered, not yet settled (running or queued behind its key)
        self.yielding = False
        self.held: list = []  # delivered while yielding or stopping: returned unstarted


class ShardConsumer(SharedExtension, ProviderCollector, ConsumerMixin):
    """Consumes ``<service>.shard.*`` for every ``shared.entrypoints.event_handler`` of a
    container and hands each message to the handlers that accept it.

    A provider offers ``source_service``, ``event_type``, ``accepts(message)`` and
    ``handle_sharded(body, message, on_settled)``; ``on_settled(ok)`` is called once the
    handler's worker finished and its failure (if any) was safely re-published.
    """

    def __init__(self):
        super().__init__()
        self._consumers: dict[int, object] = {}
        self._shards: dict[int, _Shard] = {}
        self._chains: dict[str, deque] = {}  # key -> messages waiting behind the running one
        self._stopping = False
        self._cancel_all = False
        self._all_cancelled = Event()
        self._ready = Event()
        self._gt = None
        self._rebalancer_gt = None
        self.instance = f"{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:6]}"

    # -- configuration ---------------------------------------------------------------------
    @property
    def service(self) -> str:
        return self.container.service_name

    @property
    def amqp_uri(self) -> str:
        return self.container.config[AMQP_URI_CONFIG_KEY]

    @property
    def shard_count(self) -> int:
        return int(self.container.config.get("SHARDS") or os.environ.get("SHARDS")
                   or DEFAULT_SHARDS)

    @property
    def prefetch_count(self) -> int:
        return int(self.container.config.get("SHARD_PREFETCH") or self.container.max_workers)

    @property
    def rebalance_seconds(self) -> float:
        return float(self.container.config.get("SHARD_REBALANCE_SECONDS")
                     or os.environ.get("SHARD_REBALANCE_SECONDS") or DEFAULT_REBALANCE_SECONDS)

    @property
    def connection(self):
        from kombu import Connection
        return Connection(self.amqp_uri, heartbeat=self.container.config.get(
            HEARTBEAT_CONFIG_KEY, DEFAULT_HEARTBEAT))

    # -- lifecycle -------------------------------------------------------------------------
    def declare(self, provider) -> None:
        """Declare the shards and bind them to ``provider``'s events, from the provider's
        ``setup``: every extension is set up before any starts, so by the time the service
        answers /health, events for it are kept in its shards (even before it consumes)."""
        with get_connection(self.amqp_uri) as connection:
            channel = connection.channel()
            try:
                self._declare(channel, [provider], shards=self.shard_count)
            finally:
                channel.close()

    def start(self):
        if self._gt is not None or not self._providers:
            return
        self._shards = {k: _Shard(k) for k in range(self.shard_count)}
        self._gt = self.container.spawn_managed_thread(self.run, identifier="ShardConsumer.run")
        self._gt.link(self._thread_exited)
        self._ready.wait()
        self.container.spawn_managed_thread(self._migrate_legacy_queues,
                                            identifier="ShardConsumer.migrate")
        if self.rebalance_seconds > 0:
            self._rebalancer_gt = self.container.spawn_managed_thread(
                self._rebalance_loop, identifier="ShardConsumer.rebalance")

    def _thread_exited(self, gt):
        try:
            gt.wait()
        except Exception as exc:  # noqa: BLE001 - reported to whoever waits for readiness
            if not self._ready.ready():
                self._ready.send_exception(exc)
            return
        if not self._ready.ready():
            self._ready.send(None)

    def unregister_provider(self, provider):
        """The container is stopping: stop taking messages (once), then let it go on."""
        if not self._stopping:
            self._stopping = True
            if self._gt is not None and not self._gt.dead:
                self._cancel_all = True
                with eventlet.Timeout(30, False):  # not connected: nothing is delivered anyway
                    self._all_cancelled.wait()
        super().unregister_provider(provider)

    def stop(self):
        self.wait_for_providers()
        with eventlet.Timeout(30, False):  # let the last acknowledgements go out
            while any(shard.in_flight for shard in self._shards.values()):
                eventlet.sleep(0.05)
        self._halt()

    def kill(self):
        self._stopping = True
        self._halt()

    def _halt(self):
        if self._rebalancer_gt is not None:
            self._rebalancer_gt.kill()
        if self._gt is not None and not self._gt.dead:
            self.should_stop = True
            # between deliveries the consumer thread sees should_stop within a second; while it
            # reconnects (the broker or the vhost is gone) it never looks: end it
            with eventlet.Timeout(5, False):
                try:
                    self._gt.wait()
                except Exception as exc:  # noqa: BLE001
                    _log.warning("shard consumer ended with an error", error=str(exc))
            if not self._gt.dead:
                self._gt.kill()

    # -- kombu -----------------------------------------------------------------------------
    def get_consumers(self, consumer_cls, channel):
        """Declare the topology and one consumer per shard (after every (re)connection)."""
        self._declare(channel)
        self._consumers = {}
        for shard in self._shards.values():
            shard.held.clear()  # delivered on a channel that is gone: the broker has them back
            shard.yielding = False
            consumer = consumer_cls(queues=[shard_queue(self.service, shard.index)],
                                    callbacks=[partial(self._on_message, shard.index)],
                                    on_message=partial(self._on_raw_message, shard.index),
                                    accept=self.container.accept,
                                    tag_prefix=f"{self.instance}|{shard.index}|",
                                    on_decode_error=self._on_decode_error)
            consumer.qos(prefetch_count=self.prefetch_count)
            self._consumers[shard.index] = consumer
        return list(self._consumers.values())

    def _declare(self, channel, providers=None, shards=0):
        hash_exchange = shard_exchange(self.service)
        hash_exchange(channel).declare()
        shard_retry_queue(self.service)(channel).declare()
        for index in range(shards):  # (get_consumers declares them with their consumers)
            shard_queue(self.service, index)(channel).declare()
        bound = set()
        # a least-privilege service user may not configure another service's exchange (the
        # topology declares them all): it only checks that it is there, then binds (read)
        least_privilege = bususers.namespace_of(bususers.user_of(self.amqp_uri),
                                                self.service) is not None
        for provider in self._providers if providers is None else providers:
            pair = (provider.source_service, provider.event_type)
            if pair in bound:
                continue
            bound.add(pair)
            source = get_event_exchange(provider.source_service, self.container.config)
            source(channel).declare(passive=least_privilege
                                    and provider.source_service != self.service)
            channel.exchange_bind(destination=hash_exchange.name, source=source.name,
                                  routing_key=provider.event_type)

    def on_consume_ready(self, connection, channel, consumers, **kwargs):
        if not self._ready.ready():
            self._ready.send(None)
        _log.info("consuming shards", service=self.service, shards=len(consumers),
                  instance=self.instance)

    def on_connection_error(self, exc, interval):
        _log.warning("broker connection error; reconnecting", error=str(exc), retry_in=interval)

    def on_iteration(self):
        """Runs in the consumer thread between deliveries: cancel what must be cancelled."""
        if self._cancel_all:
            self._cancel_all = False
            for consumer in self._consumers.values():
                consumer.cancel()
            for shard in self._shards.values():
                self._return_held(shard)
            self._all_cancelled.send(None)
        for shard in self._shards.values():
            if shard.yielding and shard.in_flight == 0 and not self._stopping:
                self._hand_over(shard)

    def _hand_over(self, shard: _Shard):
        consumer = self._consumers.get(shard.index)
        if consumer is None:
            shard.yielding = False
            return
        consumer.cancel()  # the broker activates the next waiting consumer
        self._return_held(shard)
        shard.yielding = False
        consumer.consume()  # and we wait at the end of the line
        _log.info("shard handed over", queue=shard_queue_name(self.service, shard.index))

    def _return_held(self, shard: _Shard):
        held, shard.held = shard.held, []
        for message in held:
            _requeue(message)

    # -- messages --------------------------------------------------------------------------
    def _on_raw_message(self, index, message):
        """kombu decodes nothing when ``on_message`` is set: screen first (size, compression,
        content type), then decode; what fails is dead-lettered by a handler that accepts it."""
        reason = screen(message, MAX_EVENT_BODY)
        if reason is not None:
            self._on_decode_error(message, reason)
            return
        try:
            body = decode_body(message)
        except ValueError as exc:
            self._on_decode_error(message, exc)
            return
        self._on_message(index, body, message)

    def _on_message(self, index, body, message):
        shard = self._shards[index]
        if self._stopping or shard.yielding:
            shard.held.append(message)
            return
        shard.in_flight += 1
        key = safe_headers(message).get(PARTITION_HEADER)
        if not isinstance(key, str):  # a table or a number: hashable or not, not a key
            key = None
        item = (shard, body, message)
        if key is None:
            self.container.spawn_managed_thread(partial(self._run, None, item),
                                                identifier="ShardConsumer.handle")
        elif key in self._chains:
            self._chains[key].append(item)  # behind the message of this key in progress
        else:
            self._chains[key] = deque()
            self.container.spawn_managed_thread(partial(self._run, key, item),
                                                identifier="ShardConsumer.handle")

    def _run(self, key, item):
        while item is not None:
            shard, body, message = item
            try:
                if self._stopping:
                    _requeue(message)
                else:
                    self._handle(body, message)
            finally:
                shard.in_flight -= 1
            item = None
            if key is not None:
                chain = self._chains.get(key)
                if chain:
                    item = chain.popleft()
                else:
                    self._chains.pop(key, None)

    def _accepting(self, message) -> list:
        providers = []
        for provider in self._providers:
            try:
                if provider.accepts(message):
                    providers.append(provider)
            except Exception:  # noqa: BLE001 - a header of a type nobody expects: not ours
                continue
        return providers

    def _handle(self, body, message):
        providers = self._accepting(message)
        if not providers:
            _log.warning("no handler for message; dropped", service=self.service,
                         exchange=message.delivery_info.get("exchange"),
                         routing_key=message.delivery_info.get("routing_key"))
            _ack(message)
            return
        outcomes = []
        done = Event()

        def settled(ok: bool):
            outcomes.append(ok)
            if len(outcomes) == len(providers):
                done.send(None)

        for provider in providers:
            try:
                provider.handle_sharded(body, message, settled)
            except ContainerBeingKilled:
                settled(False)
            except Exception as exc:  # noqa: BLE001 - this thread must not die of a message
                settled(provider._dead_letter_safely(
                    message, f"PermanentError: unreadable message: {type(exc).__name__}: {exc}"))
        done.wait()
        if all(outcomes):
            _ack(message)
        else:
            _requeue(message)  # a failure could not be re-published: every handler again

    def _on_decode_error(self, message, exc):
        reason = str(exc) if str(exc).startswith("PermanentError") else f"undecodable body: {exc}"
        try:
            providers = self._accepting(message)
            if providers:
                providers[0].dead_letter(message, reason, attempts=1)
            else:
                _log.error("undecodable message without a handler; dropped", error=str(exc))
            _ack(message)
        except Exception as publish_exc:  # noqa: BLE001
            _log.error("could not dead-letter undecodable message", error=str(publish_exc))
            _requeue(message)

    # -- rebalancing -----------------------------------------------------------------------
    def _rebalance_loop(self):
        interval = self.rebalance_seconds
        eventlet.sleep(interval * (0.5 + 0.5 * (os.getpid() % 7) / 7))  # de-synchronise
        warned = False
        while not self._stopping:
            try:
                consumers = self._fetch_consumers()
                warned = False
            except (requests.RequestException, ValueError) as exc:
                if not warned:
                    _log.warning("management API unreachable: shards are not rebalanced",
                                 error=str(exc))
                    warned = True
                eventlet.sleep(interval)
                continue
            names = shards_to_yield(consumers, self.instance, self.service, len(self._shards))
            for name in names:
                index = int(name.rsplit(".", 1)[1])
                if index in self._shards:
                    self._shards[index].yielding = True
            # the management API's figures lag by its statistics interval: let them settle
            eventlet.sleep(interval * (3 if names else 1))

    def _fetch_consumers(self) -> list[dict]:
        vhost = quote(vhost_of(self.amqp_uri), safe="")
        last = None
        for url in management_urls(self.container.config):
            parts = urlsplit(url)
            base = f"{parts.scheme}://{parts.hostname}:{parts.port or 15672}{parts.path}"
            try:
                response = requests.get(f"{base}/api/consumers/{vhost}", timeout=5,
                                        auth=(unquote(parts.username or "guest"),
                                              unquote(parts.password or "guest")))
                response.raise_for_status()
                return response.json()
            except requests.RequestException as exc:
                last = exc
        raise last or requests.RequestException("no management URL")

    # -- upgrade from one queue per handler --------------------------------------------------
    def _migrate_legacy_queues(self):
        """Queues ``evt-<source>-<type>--<service>.<method>`` (and their ``retry.`` queues) of
        the earlier topology: unbind them, move what they hold into the shards, delete them."""
        for provider in self._providers:
            legacy = provider.legacy_queue_name
            try:
                moved = _drain_into(self.container.config, self.service, provider,
                                    [legacy, f"retry.{legacy}"])
            except Exception as exc:  # noqa: BLE001 - best effort; never blocks the start
                _log.warning("could not migrate legacy queue", queue=legacy, error=str(exc))
                continue
            if moved is not None:
                _log.info("legacy handler queue migrated into shards", queue=legacy, moved=moved)


def _drain_into(config, service, provider, queue_names) -> int | None:
    amqp_uri = config[AMQP_URI_CONFIG_KEY]
    source = f"{provider.source_service}.events"
    moved, found = 0, False
    with get_connection(amqp_uri) as connection:
        for name in queue_names:
            channel = connection.channel()
            try:
                channel.queue_declare(name, passive=True)
            except Exception:  # noqa: BLE001 - absent: the channel is closed by the broker
                continue
            found = True
            if name == queue_names[0]:
                channel.queue_unbind(name, exchange=source, routing_key=provider.event_type)
            while True:
                message = channel.basic_get(name, no_ack=False)
                if message is None:
                    break
                headers = dict(message.headers or {})
                if PARTITION_HEADER not in headers:
                    key = partition_key(_json_or_none(message.body))
                    if key:
                        headers[PARTITION_HEADER] = key
                headers.setdefault(SOURCE_HEADER, provider.source_service)
                headers.setdefault("x-lianchen-routing-key", provider.event_type)
                # re-published by this service: without a seal of the producer (these were
                # never validated), so a least-privilege consumer dead-letters them
                for name in bususers.SEAL_HEADERS:
                    headers.pop(name, None)
                with get_producer(amqp_uri, confirms=True) as producer:
                    producer.publish(message.body, exchange=shard_exchange_name(service),
                                     routing_key=provider.event_type, headers=headers,
                                     content_type=message.content_type,
                                     content_encoding=message.content_encoding,
                                     delivery_mode=2, retry=True,
                                     user_id=bususers.user_of(amqp_uri))
                message.ack()
                moved += 1
            channel.queue_delete(name, if_empty=True)
            channel.close()
    return moved if found else None


def _json_or_none(body):
    try:
        return json.loads(body)
    except (TypeError, ValueError):
        return None


