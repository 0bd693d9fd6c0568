"""Delivering notices: one lane per subscriber, bounded retries, a dead-letter store.

Why lanes in the process and not a broker retry queue: RabbitMQ expires per-message TTLs only
at the head of a queue, so in one shared retry queue a notice waiting ten minutes for a dead
receiver would hold back a notice due in one second for a healthy one. Here every subscriber
has its own lane: a heap of due times and at most ``concurrency`` attempts in flight. A slow,
failing or unreachable receiver fills only its own lane; the others keep flowing.

Each notice is retried on its own schedule (exponential backoff with jitter, ``Retry-After``
honoured, capped) up to ``max_attempts``; a response that retrying cannot fix (4xx other than
408/425/429, a redirect) dead-letters it at once. Dead-lettered notices are kept in the
``dead_letters`` collection with the reason; an operator lists and redelivers them.

A lift is held until the imposition it lifts has been delivered to the same subscriber (if
that imposition is dead-lettered, so is the lift; redelivering the lift sends both, in order).

The store is the truth: ``notices`` (with attempts and next attempt), ``deliveries`` (a receipt
inserted once per delivered notice) and ``dead_letters``. On start the courier takes on every
outstanding push notice again. Delivery is at least once: a crash between the receiver's 2xx
and the receipt sends the notice again, with the same id and the same body.

The success path only inserts the receipt: a delivered notice keeps ``delivery.state ==
"pending"`` (and the attempts of its failures, 0 if the first attempt went through) in
``notices``. So "pending" alone does not mean "not delivered yet": ``outstanding(db)`` is the
one definition (pending and no receipt), used at start and by anyone asking what is left.
"""
from __future__ import annotations

import hashlib
import heapq
import itertools
import os
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from functools import partial
from urllib.parse import urlsplit

import certifi
import urllib3
from eventlet.queue import Empty, LightQueue
from eventlet.semaphore import Semaphore
from kombu import Queue
from nameko.amqp.publish import get_connection, get_producer
from nameko.constants import AMQP_URI_CONFIG_KEY
from nameko.extensions import DependencyProvider
from pymongo.errors import DuplicateKeyError

from contracts.notifications import (ATTEMPT_HEADER, KIND_HEADER, NOTICE_ID_HEADER,
                                     SIGNATURE_HEADER, delivery_mode)
from services.notifications.notices import PUSH_MODES
from services.notifications.signing import signature_header, standard_headers
from services.notifications.targets import TargetRefused, allowed_networks, resolve
from shared.bususers import user_of
from shared.messages import CORRELATION_ID
from shared.ledger import LedgerHub, digest
from shared.locks import doc_lock
from shared.logging import get_logger
from shared.mongo import connect, database_name

_log = get_logger(component="courier")
HOLD = object()
RETRYABLE_STATUS = {408, 425, 429}
USER_AGENT = "lianchen-notifications/1"
MAX_REPLY_BYTES = 64 * 1024  # what is read of a receiver's answer; the rest is not awaited


def _setting(config: dict, key: str, default):
    value = config.get(key, os.environ.get(key, default))
    return type(default)(value) if not isinstance(default, bool) else str(value).lower() in (
        "1", "true", "yes")


@dataclass
class Settings:
    max_attempts: int = 12
    base_delay: float = 2.0
    max_delay: float = 900.0
    timeout: float = 10.0
    connect_timeout: float = 3.0
    concurrency: int = 4
    subscription_ttl: float = 5.0
    require_https: bool = False
    allow_targets: tuple = ()  # networks a webhook may resolve to besides public ones

    @classmethod
    def from_config(cls, config: dict) -> "Settings":
        """``NOTIFY_*`` keys from the nameko config, else the environment, else defaults."""
        return cls(
            max_attempts=max(1, _setting(config, "NOTIFY_MAX_ATTEMPTS", cls.max_attempts)),
            base_delay=_setting(config, "NOTIFY_RETRY_BASE_MS", 2000) / 1000.0,
            max_delay=_setting(config, "NOTIFY_RETRY_MAX_MS", 900_000) / 1000.0,
            timeout=_setting(config, "NOTIFY_TIMEOUT_MS", 10_000) / 1000.0,
            connect_timeout=_setting(config, "NOTIFY_CONNECT_TIMEOUT_MS", 3000) / 1000.0,
            concurrency=max(1, _setting(config, "NOTIFY_CONCURRENCY", cls.concurrency)),
            subscription_ttl=_setting(config, "NOTIFY_SUBSCRIPTION_TTL_MS", 5000) / 1000.0,
            require_https=_setting(config, "NOTIFY_REQUIRE_HTTPS", False),
            allow_targets=allowed_networks(_setting(config, "NOTIFY_ALLOW_TARGETS", "")),
        )


def backoff(attempt: int, settings: Settings, retry_after: float | None = None) -> float:
    """Seconds before the next attempt: doubling from ``base_delay``, jittered within
    [0.5, 1.5) of that, at least ``retry_after`` when the receiver asked, at most
    ``max_delay``."""
    nominal = min(settings.max_delay, settings.base_delay * 2 ** max(attempt - 1, 0))
    delay = nominal * (0.5 + random.random())
    if retry_after:
        delay = max(delay, retry_after)
    return min(delay, settings.max_delay)


@dataclass
class Outcome:
    ok: bool
    retryable: bool = True
    reason: str = ""
    status: int | None = None
    retry_after: float | None = None


def classify(status: int, retry_after: str | None = None) -> Outcome:
    if 200 <= status < 300:
        return Outcome(True, status=status)
    wait = _retry_after(retry_after)
    if status in RETRYABLE_STATUS or status >= 500:
        return Outcome(False, True, f"receiver answered {status}", status, wait)
    if 300 <= status < 400:
        return Outcome(False, False, f"receiver answered {status} (redirects are not "
                                     f"followed: subscribe the final URL)", status)
    return Outcome(False, False, f"receiver refused the notice with {status}", status)


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, (parsedate_to_datetime(value)
                             - datetime.now(timezone.utc)).total_seconds())
        except (TypeError, ValueError):
            return None


def header_safe(value) -> str:
    """A correlation id as it may travel in an HTTP header: a non-ASCII one could not be
    encoded (the attempt raised outside any counted failure and the notice retried forever);
    it is replaced by a stable digest of itself."""
    value = str(value or "")
    if CORRELATION_ID.fullmatch(value):
        return value
    return "x" + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:31]


def signing_secrets(subscription: dict, now: datetime | None = None) -> list[str]:
    """The secrets that sign: the current one and, during a rotation, the previous one until
    it expires."""
    now = now or datetime.now(timezone.utc)
    found = [subscription["webhook_secret"]] if subscription.get("webhook_secret") else []
    previous, until = subscription.get("previous_webhook_secret"), subscription.get(
        "previous_secret_expires_at")
    if previous and until is not None:
        if until.tzinfo is None:  # the store gives naive UTC
            until = until.replace(tzinfo=timezone.utc)
        if until > now:
            found.append(previous)
    return found


def headers_for(doc: dict, secret: str | list[str] | None, attempt: int) -> dict:
    """The notice's headers: ids, attempt, correlation id and, with secrets, both signatures
    (``services.notifications.signing``)."""
    headers = {NOTICE_ID_HEADER: doc["_id"], KIND_HEADER: doc["kind"],
               ATTEMPT_HEADER: str(attempt), "X-Correlation-Id": header_safe(doc["correlation_id"])}
    keys = [secret] if isinstance(secret, str) else list(secret or [])
    if keys:
        body, now = doc["body"].encode("utf-8"), time.time()
        headers[SIGNATURE_HEADER] = signature_header(keys, body, now)
        headers.update(standard_headers(keys, doc["_id"], body, now))
    return headers


def host_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)


class WebhookTransport:
    """POSTs to the subscriber's URL, at the address checked just before
    (``targets.resolve``: public, or allow-listed), reading at most ``MAX_REPLY_BYTES`` of
    the answer. Connections are pooled per lane and pinned address."""

    def __init__(self, settings: Settings):
        self.settings = settings

    def _pool(self, lane, target):
        key = (target.scheme, target.address, target.port, target.host)
        pools = lane.session if isinstance(lane.session, dict) else {}
        lane.session = pools
        pool = pools.get(key)
        if pool is None:
            options = {"maxsize": self.settings.concurrency, "block": False, "retries": False}
            if target.scheme == "https":
                pool = urllib3.HTTPSConnectionPool(
                    target.address, target.port, server_hostname=target.host,
                    assert_hostname=target.host, cert_reqs="CERT_REQUIRED",
                    ca_certs=certifi.where(), **options)
            else:
                pool = urllib3.HTTPConnectionPool(target.address, target.port, **options)
            pools[key] = pool
        return pool

    def send(self, lane, subscription: dict, doc: dict, attempt: int) -> Outcome:
        try:
            target = resolve(subscription["webhook_url"], self.settings.allow_targets)
        except TargetRefused as exc:  # checked at registration; DNS may have changed since
            return Outcome(False, False, f"webhook target refused: {exc}")
        host = target.host if ":" not in target.host else f"[{target.host}]"
        default_port = 443 if target.scheme == "https" else 80
        headers = {**headers_for(doc, signing_secrets(subscription), attempt),
                   "Host": host if target.port == default_port else f"{host}:{target.port}",
                   "Content-Type": "application/json; charset=utf-8", "User-Agent": USER_AGENT}
        response = None
        try:
            response = self._pool(lane, target).urlopen(
                "POST", target.path, body=doc["body"].encode("utf-8"), headers=headers,
                redirect=False, retries=False, preload_content=False, assert_same_host=False,
                timeout=urllib3.Timeout(connect=self.settings.connect_timeout,
                                        read=self.settings.timeout))
            # never more than MAX_REPLY_BYTES of the answer: a reader shorter than asked for
            # is at its end (the connection can be reused), a longer one is dropped
            whole = len(response.read(MAX_REPLY_BYTES + 1, decode_content=False)) <= MAX_REPLY_BYTES
            outcome = classify(response.status, response.headers.get("Retry-After"))
            if whole:
                response.release_conn()
            else:
                response.close()
            response = None
            return outcome
        except urllib3.exceptions.NewConnectionError as exc:  # (a ConnectTimeoutError too)
            return Outcome(False, True, f"connection failed ({_cause(exc)})")
        except (urllib3.exceptions.ConnectTimeoutError, urllib3.exceptions.ReadTimeoutError):
            return Outcome(False, True, f"no answer within {self.settings.timeout:g} s")
        except (urllib3.exceptions.ProtocolError, urllib3.exceptions.SSLError, OSError) as exc:
            return Outcome(False, True, f"connection failed ({_cause(exc)})")
        except Exception as exc:  # noqa: BLE001 - counted as a failed attempt, never a loop
            return Outcome(False, False, f"cannot post to the webhook: {type(exc).__name__}")
        finally:
            if response is not None:  # failed while reading: the connection is not reusable
                response.close()


class AmqpTransport:
    """Publishes to the subscriber's own queue (declared durable) with publisher confirms."""

    def __init__(self, amqp_uri: str):
        self.amqp_uri = amqp_uri

    def declare(self, name: str) -> None:
        """Create the subscriber's queue (durable) when it subscribes: nothing sent before
        its consumer first connects is lost."""
        with get_connection(self.amqp_uri) as connection:
            channel = connection.channel()
            try:
                Queue(name, durable=True)(channel).declare()
            finally:
                channel.close()

    def send(self, lane, subscription: dict, doc: dict, attempt: int) -> Outcome:
        name = subscription["amqp_queue"]
        try:
            with get_producer(self.amqp_uri, confirms=True) as producer:
                producer.publish(
                    doc["body"].encode("utf-8"), exchange="", routing_key=name,
                    headers=headers_for(doc, signing_secrets(subscription), attempt),
                    message_id=doc["_id"], correlation_id=doc["correlation_id"],
                    content_type="application/json", content_encoding="utf-8",
                    delivery_mode=2, declare=[Queue(name, durable=True)], retry=True,
                    retry_policy={"max_retries": 2}, mandatory=False,
                    user_id=user_of(self.amqp_uri))  # the subscriber can tell it is ours
        except Exception as exc:  # broker trouble: retried like a receiver that is down
            return Outcome(False, True, f"publish to {name} failed ({type(exc).__name__})")
        return Outcome(True, status=None)


def _cause(exc: Exception) -> str:
    text = str(exc)
    for marker in ("Connection refused", "Connection reset", "RemoteDisconnected",
                   "Connection aborted", "Name or service not known", "timed out"):
        if marker in text:
            return marker
    return type(exc).__name__


class Lane:
    """One subscriber's outstanding notices and its due-time heap."""

    def __init__(self, subscriber_id: str, concurrency: int):
        self.subscriber_id = subscriber_id
        self.docs: dict[str, dict] = {}       # every notice this lane answers for
        self.held: dict[str, list[str]] = {}  # imposition notice id -> lifts waiting for it
        self.heap: list[tuple[float, int, str]] = []
        self.signal = LightQueue()
        self.slots = Semaphore(concurrency)
        self.seq = itertools.count()
        self.session = None

    def push(self, notice_id: str, due: float) -> None:
        heapq.heappush(self.heap, (due, next(self.seq), notice_id))
        self.signal.put(None)


class Subscriptions:
    """Subscriptions, cached for a few seconds: the courier reads one per attempt, every
    restriction event reads them all. Changes made through this process are seen at once
    (``forget``); made through another instance, within ``ttl``."""

    def __init__(self, db, ttl: float):
        self.db, self.ttl = db, ttl
        self._cache: dict[str, tuple[float, dict | None]] = {}
        self._all: tuple[float, list[dict]] | None = None

    def all(self) -> list[dict]:
        now = time.monotonic()
        if self._all is None or self._all[0] <= now:
            self._all = (now + self.ttl, list(self.db.subscriptions.find({})))
        return self._all[1]

    def get(self, subscriber_id: str) -> dict | None:
        now = time.monotonic()
        cached = self._cache.get(subscriber_id)
        if cached and cached[0] > now:
            return cached[1]
        doc = self.db.subscriptions.find_one({"_id": subscriber_id})
        self._cache[subscriber_id] = (now + self.ttl, doc)
        return doc

    def forget(self, subscriber_id: str) -> None:
        self._cache.pop(subscriber_id, None)
        self._all = None


class Courier(DependencyProvider):
    """The delivery engine of one container; workers get the courier itself.

    Deliveries, dead letters, redeliveries and feedback are decisions: each is appended to the
    service's ledger (``shared.ledger``), the notice by id and a digest of its body."""

    ledger_hub = LedgerHub()

    def setup(self):
        config = self.container.config
        self.settings = Settings.from_config(config)
        self.client = connect(config.get("MONGO_URI"))
        self.db = self.client[database_name(config, "notifications")]
        self.subscriptions = Subscriptions(self.db, self.settings.subscription_ttl)
        self.transports = {"webhook": WebhookTransport(self.settings),
                           "amqp": AmqpTransport(config[AMQP_URI_CONFIG_KEY])}
        self.lanes: dict[str, Lane] = {}
        self.stopping = False

    def start(self):
        self.container.spawn_managed_thread(self._recover, identifier="courier.recover")

    def stop(self):
        self.stopping = True
        for lane in self.lanes.values():
            if isinstance(lane.session, dict):
                for pool in lane.session.values():
                    pool.close()
        self.client.close()

    kill = stop

    def get_dependency(self, worker_ctx):
        return self

    def decision(self, kind: str, doc: dict, **data) -> None:
        self.ledger_hub.ledger.append(kind, {
            "notice_id": doc["_id"], "subscriber_id": doc["subscriber_id"],
            "uscc": doc["uscc"], "notice_kind": doc["kind"],
            "correlation_id": doc.get("correlation_id"),
            **({"digest": digest(doc["body"])} if "body" in doc else {}), **data})

    # -- taking notices on ---------------------------------------------------------------
    def track(self, doc: dict) -> bool:
        """Deliver ``doc`` (a stored push notice) when due. False if already on its way."""
        lane = self._lane(doc["subscriber_id"])
        if doc["_id"] in lane.docs:
            return False
        lane.docs[doc["_id"]] = doc
        lane.push(doc["_id"], time.monotonic() + _seconds_until(doc["delivery"].get(
            "next_attempt_at")))
        return True

    def tracking(self, notice_id: str) -> bool:
        return any(notice_id in lane.docs for lane in self.lanes.values())

    def held(self, notice_id: str) -> bool:
        return any(notice_id in lifts for lane in self.lanes.values()
                   for lifts in lane.held.values())

    def ensure(self, notice_id: str) -> bool:
        """Take on a stored notice that should be on its way and is not (a handler that
        inserted it and failed before handing it over, redelivered now)."""
        if self.tracking(notice_id) or self._delivered(notice_id):
            return False
        doc = self.db.notices.find_one({"_id": notice_id})
        if doc is None or doc["delivery"]["mode"] not in PUSH_MODES \
                or doc["delivery"]["state"] != "pending":
            return False
        return self.track(doc)

    def _recover(self):
        count = 0
        for doc in outstanding(self.db):
            count += self.track(doc)
        if count:
            _log.info("outstanding notices taken on again", count=count)

    def _lane(self, subscriber_id: str) -> Lane:
        lane = self.lanes.get(subscriber_id)
        if lane is None:
            lane = self.lanes[subscriber_id] = Lane(subscriber_id, self.settings.concurrency)
            self.container.spawn_managed_thread(partial(self._run, lane),
                                                identifier=f"lane.{subscriber_id}")
        return lane

    # -- the lane loop -------------------------------------------------------------------
    def _run(self, lane: Lane):
        while not self.stopping:
            if lane.heap and lane.heap[0][0] <= time.monotonic():
                _, _, notice_id = heapq.heappop(lane.heap)
                if notice_id not in lane.docs:
                    continue
                lane.slots.acquire()  # the lane's own limit: other lanes are not affected
                self.container.spawn_managed_thread(partial(self._attempt_in_slot, lane,
                                                            notice_id))
                continue
            timeout = max(0.0, lane.heap[0][0] - time.monotonic()) if lane.heap else None
            try:
                lane.signal.get(timeout=timeout)
            except Empty:
                pass

    def _attempt_in_slot(self, lane: Lane, notice_id: str):
        try:
            self._attempt(lane, notice_id)
        except Exception as exc:  # the store failed us: try again later, no attempt counted
            if self.stopping:
                return
            _log.error("delivery bookkeeping failed; will try again", notice_id=notice_id,
                       error=f"{type(exc).__name__}: {exc}")
            if notice_id in lane.docs:
                lane.push(notice_id, time.monotonic() + self.settings.base_delay)
        finally:
            lane.slots.release()

    def _attempt(self, lane: Lane, notice_id: str):
        doc = lane.docs.get(notice_id)
        if doc is None or self.stopping:
            return
        attempts = doc["delivery"]["attempts"]
        subscription = self.subscriptions.get(doc["subscriber_id"])
        if subscription is None:
            return self._dead(lane, doc, "the subscription was deleted", attempts)
        mode = delivery_mode(subscription)
        if mode not in PUSH_MODES:
            return self._dead(lane, doc, "the subscription has no webhook or queue any more",
                              attempts)
        if doc["kind"] == "lifted" and doc.get("imposition_id"):
            gate = self._gate(lane, doc)
            if gate is HOLD:
                return
            if gate:
                return self._dead(lane, doc, gate, attempts)
        attempt = attempts + 1
        outcome = self.transports[mode].send(lane, subscription, doc, attempt)
        if self.stopping:
            return
        if outcome.ok:
            self._delivered_now(lane, doc, attempt, outcome, mode)
        elif outcome.retryable and attempt < self.settings.max_attempts:
            self._retry(lane, doc, attempt, outcome)
        else:
            reason = outcome.reason if not outcome.retryable else (
                f"{outcome.reason}; gave up after {attempt} attempts")
            self._dead(lane, doc, reason, attempt)

    def _gate(self, lane: Lane, doc: dict):
        """A lift goes only after its imposition: HOLD, None (go) or a dead-letter reason."""
        imposition = doc["imposition_id"]
        if imposition not in lane.docs:
            if self._delivered(imposition):
                return None
            if self.db.dead_letters.find_one({"_id": imposition, "state": "dead"}, {"_id": 1}):
                return (f"held: the imposition it lifts ({imposition}) is dead-lettered; "
                        f"redelivering this lift sends both, in order")
            stored = self.db.notices.find_one({"_id": imposition})
            if stored is None or stored["delivery"]["mode"] not in PUSH_MODES:
                return None
            if stored["delivery"]["state"] != "pending":
                return (f"held: the imposition it lifts ({imposition}) is "
                        f"{stored['delivery']['state']}")
            self.track(stored)  # outstanding but not ours yet (a restart): take it on
        lane.held.setdefault(imposition, []).append(doc["_id"])
        _log.info("lift held until its imposition is delivered", notice_id=doc["_id"],
                  imposition=imposition, subscriber=lane.subscriber_id)
        return HOLD

    def _delivered(self, notice_id: str) -> bool:
        return self.db.deliveries.find_one({"_id": notice_id}, {"_id": 1}) is not None

    # -- outcomes ------------------------------------------------------------------------
    def _delivered_now(self, lane: Lane, doc: dict, attempt: int, outcome: Outcome, mode: str):
        now = datetime.now(timezone.utc)
        try:
            self.db.deliveries.insert_one({
                "_id": doc["_id"], "subscriber_id": doc["subscriber_id"], "mode": mode,
                "delivered_at": now, "attempts": attempt, "status": outcome.status})
        except DuplicateKeyError:
            pass  # delivered before (a redelivery); the receipt stands
        lane.docs.pop(doc["_id"], None)
        for lift in lane.held.pop(doc["_id"], []):
            lane.push(lift, time.monotonic())
        self.decision("NoticeDelivered", doc, mode=mode, attempts=attempt,
                      status=outcome.status)
        _log.info("notice delivered", notice_id=doc["_id"], subscriber=doc["subscriber_id"],
                  kind=doc["kind"], attempts=attempt, correlation_id=doc["correlation_id"])

    def _retry(self, lane: Lane, doc: dict, attempt: int, outcome: Outcome):
        delay = backoff(attempt, self.settings, outcome.retry_after)
        next_at = datetime.now(timezone.utc) + timedelta(seconds=delay)
        doc["delivery"].update(attempts=attempt, next_attempt_at=next_at,
                               last_error=outcome.reason)
        with doc_lock(self.db.notices, doc["_id"]):
            self.db.notices.update_one({"_id": doc["_id"]}, {"$set": {
                "delivery.attempts": attempt, "delivery.next_attempt_at": next_at,
                "delivery.last_error": outcome.reason}})
        lane.push(doc["_id"], time.monotonic() + delay)
        _log.info("notice delivery failed; will retry", notice_id=doc["_id"],
                  subscriber=doc["subscriber_id"], attempt=attempt, reason=outcome.reason,
                  retry_in_ms=int(delay * 1000), correlation_id=doc["correlation_id"])

    def _dead(self, lane: Lane, doc: dict, reason: str, attempts: int):
        now = datetime.now(timezone.utc)
        letter = {"subscriber_id": doc["subscriber_id"], "kind": doc["kind"],
                  "uscc": doc["uscc"], "restriction_id": doc["restriction_id"],
                  "reason": reason[:1000], "attempts": attempts, "dead_at": now,
                  "state": "dead", "created_at": doc["created_at"]}
        try:
            self.db.dead_letters.insert_one({"_id": doc["_id"], **letter, "times": 1})
        except DuplicateKeyError:
            with doc_lock(self.db.dead_letters, doc["_id"]):
                self.db.dead_letters.update_one({"_id": doc["_id"]}, {
                    "$set": letter, "$inc": {"times": 1}})
        with doc_lock(self.db.notices, doc["_id"]):
            self.db.notices.update_one({"_id": doc["_id"]}, {"$set": {
                "delivery.state": "dead", "delivery.attempts": attempts,
                "delivery.last_error": reason[:1000]}})
        doc["delivery"].update(state="dead", attempts=attempts, last_error=reason)
        lane.docs.pop(doc["_id"], None)
        self.decision("NoticeDeadLettered", doc, attempts=attempts, reason=reason[:300])
        _log.warning("notice dead-lettered", notice_id=doc["_id"],
                     subscriber=doc["subscriber_id"], kind=doc["kind"], attempts=attempts,
                     reason=reason[:300], correlation_id=doc["correlation_id"])
        for lift in lane.held.pop(doc["_id"], []):
            held = lane.docs.get(lift)
            if held is not None:
                self._dead(lane, held, f"held: the imposition it lifts ({doc['_id']}) was "
                                       f"dead-lettered; redelivering this lift sends both",
                           held["delivery"]["attempts"])

    # -- operators -----------------------------------------------------------------------
    def dead_letters(self, subscriber_id: str | None = None, limit: int = 100) -> list[dict]:
        query = {"state": "dead"}
        if subscriber_id:
            query["subscriber_id"] = subscriber_id
        found = self.db.dead_letters.find(query).sort("dead_at", 1).limit(limit)
        return [{**{k: v for k, v in d.items() if k != "_id"}, "notice_id": d["_id"]}
                for d in found]

    def redeliver(self, notice_ids: list[str], by: str) -> list[str]:
        """Send dead-lettered notices again, each with a fresh attempt budget. A lift whose
        imposition is dead-lettered too takes the imposition along, and goes after it.
        Returns the ids sent again, in order (ids not dead-lettered are skipped).

        One read and one update per collection for the whole batch (an operator may
        redeliver thousands after an outage); no per-document lock is needed: a
        dead-lettered notice has no other writer until it is tracked again, below."""
        letters = self._dead_among(notice_ids)
        docs = {d["_id"]: d for d in self.db.notices.find({"_id": {"$in": list(letters)}})}
        impositions = {d["imposition_id"] for d in docs.values()
                       if d["kind"] == "lifted" and d.get("imposition_id")} - set(docs)
        if impositions:
            letters |= self._dead_among(list(impositions))
            docs.update({d["_id"]: d for d in self.db.notices.find(
                {"_id": {"$in": list(letters - set(docs))}})})
        ordered = sorted(docs.values(), key=lambda d: (d["created_at"], d["kind"] == "lifted"))
        ids = [d["_id"] for d in ordered]
        if not ids:
            return []
        now = datetime.now(timezone.utc)
        self.db.dead_letters.update_many({"_id": {"$in": ids}}, {"$set": {
            "state": "redelivered", "redelivered_at": now, "redelivered_by": by}})
        self.db.notices.update_many({"_id": {"$in": ids}}, {"$set": {
            "delivery.state": "pending", "delivery.attempts": 0,
            "delivery.next_attempt_at": None}})
        for doc in ordered:
            doc["delivery"].update(state="pending", attempts=0, next_attempt_at=None)
            self.subscriptions.forget(doc["subscriber_id"])
            self.decision("NoticeRedelivered", doc, by=by)
            self.track(doc)
        _log.info("dead-lettered notices redelivered", count=len(ids), by=by)
        return ids

    def _dead_among(self, notice_ids: list[str]) -> set[str]:
        if not notice_ids:
            return set()
        return {d["_id"] for d in self.db.dead_letters.find(
            {"_id": {"$in": list(notice_ids)}, "state": "dead"}, {"_id": 1})}


def outstanding(db, projection: dict | None = None) -> list[dict]:
    """Push notices still on their way, oldest first: stored ``pending`` without a receipt in
    ``deliveries``. (``delivery.state`` stays ``pending`` after a delivery: see the module
    doc; a dead-lettered notice is ``dead`` until redelivered.)"""
    delivered = {d["_id"] for d in db.deliveries.find({}, {"_id": 1})}
    if projection is not None:
        projection = {**projection, "delivery.mode": 1}
    return [doc for doc in db.notices.find({"delivery.state": "pending"}, projection).sort(
        "created_at", 1) if doc["_id"] not in delivered and doc["delivery"]["mode"] in PUSH_MODES]


def _seconds_until(when: datetime | None) -> float:
    if when is None:
        return 0.0
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())
