"""Pieces every service has: health endpoint, published contracts and metrics, dispatcher."""
from __future__ import annotations

import time

from kombu import Connection
from nameko.constants import AMQP_URI_CONFIG_KEY
from nameko.events import EventDispatcher
from werkzeug.wrappers import Response

from contracts import asyncapi, openapi
from shared import about as build
from shared import bususers
from shared import metrics as process_metrics
from shared.entrypoints import ORIGIN_HEADER, PUBLIC, inline_http, json_response, origin
from shared.ledger import LedgerHub, digest, event_summary
from shared.mongo import Mongo
from shared.shards import PARTITION_HEADER, partition_key


class Dispatcher(EventDispatcher):
    """nameko's dispatcher (publisher confirms on), named for what it carries: envelopes.

    Every event published is a decision and is appended to the service's ledger
    (``shared.ledger``) once the broker confirmed it. An event re-published by the outbox
    relay is appended again: the ledger records publications, keyed by event id.

    Every event also carries its entity in the ``x-lianchen-partition-key`` header, which the
    consuming services' consistent-hash exchanges route on (``shared.shards``).
    """

    ledger_hub = LedgerHub()

    def get_dependency(self, worker_ctx):
        # never a credential on an event, whatever reached the context (consumers already
        # take only known keys: shared.messages.message_context)
        extra_headers = {key: value for key, value in self.get_message_headers(worker_ctx).items()
                         if "authorization" not in key.lower() and "auth_token" not in key}
        ledger = self.ledger_hub.ledger
        # RabbitMQ checks it is the connection's own user; consumers check it is this
        # service's (``shared.bususers``): an event of this exchange from anyone else is refused
        user_id = bususers.user_of(self.amqp_uri)
        me = origin(self.container)

        def dispatch_and_log(event_type, event_data, relayed=False):
            headers = dict(extra_headers)
            if not relayed:
                # the writer applied its change to its own read models (write-through): its
                # broadcast handlers skip this copy (ExpiringBroadcastHandler). A relayed
                # event (an outbox sweep) may come from a write another process made.
                headers[ORIGIN_HEADER] = me
            key = partition_key(event_data)
            if key:
                headers[PARTITION_HEADER] = key
            self.publisher.publish(event_data, exchange=self.exchange, routing_key=event_type,
                                   extra_headers=headers, user_id=user_id)
            ledger.append(event_type, event_summary(event_data)
                          if isinstance(event_data, dict) else {"digest": digest(event_data)})

        dispatch_and_log.relay = lambda event_type, event_data: dispatch_and_log(
            event_type, event_data, relayed=True)
        return dispatch_and_log


def _store(container):
    """The service's database, from its ``Mongo`` dependency (the one every service has)."""
    for provider in container.dependencies:
        if isinstance(provider, Mongo):
            return provider.db
    raise LookupError(f"{container.service_name} has no Mongo dependency")


# Answered without a worker (``inline_http``): they must answer while every worker is busy.
@inline_http("GET", "/health", roles=PUBLIC)
def _health(container, request):
    service = container.service_name
    try:
        _store(container).command("ping")
    except Exception as exc:  # store down: say so, don't crash
        return json_response(503, {"service": service, "status": "degraded",
                                   "error": type(exc).__name__})
    return json_response(200, {"service": service, "status": "ok"})


BROKER_CHECK_SECONDS = 5.0  # a readiness probe opens at most one broker connection per 5 s
_broker_checks: dict[str, tuple[float, str | None]] = {}


def _broker_problem(container) -> str | None:
    """None when the broker accepts a connection (checked at most every 5 s), else why not."""
    uri = container.config.get(AMQP_URI_CONFIG_KEY)
    checked_at, problem = _broker_checks.get(uri, (0.0, None))
    if time.monotonic() - checked_at < BROKER_CHECK_SECONDS:
        return problem
    problem = None
    try:
        with Connection(uri, connect_timeout=2) as connection:
            connection.ensure_connection(max_retries=1)
    except Exception as exc:  # noqa: BLE001 - any failure means: not ready
        problem = type(exc).__name__
    _broker_checks[uri] = (time.monotonic(), problem)
    return problem


def _read_models(container) -> dict[str, bool]:
    """``{provider name: loaded}`` for every dependency with a read model (a ``ready()``)."""
    return {provider.attr_name: bool(provider.ready()) for provider in container.dependencies
            if callable(getattr(provider, "ready", None))}


@inline_http("GET", "/readyz", roles=PUBLIC)
def _readyz(container, request):
    """Ready to take traffic: store and broker reachable, read models loaded. Apart from
    ``/health`` (liveness), so that a balancer stops sending work without the orchestrator
    restarting a process that is only waiting for its store."""
    checks = {}
    try:
        _store(container).command("ping")
        checks["store"] = "ok"
    except Exception as exc:  # noqa: BLE001
        checks["store"] = f"unreachable ({type(exc).__name__})"
    problem = _broker_problem(container)
    checks["broker"] = "ok" if problem is None else f"unreachable ({problem})"
    for name, loaded in _read_models(container).items():
        checks[f"read_model:{name}"] = "ok" if loaded else "loading"
    ready = all(value == "ok" for value in checks.values())
    return json_response(200 if ready else 503, {
        "service": container.service_name, "status": "ready" if ready else "not_ready",
        "checks": checks})


@inline_http("GET", "/v1/about", roles=PUBLIC)
def _about(container, request):
    return json_response(200, build.about(container.service_name))


@inline_http("GET", "/openapi.json", roles=PUBLIC)
def _openapi_json(container, request):
    return Response(openapi.served(container.service_name), mimetype="application/json")


@inline_http("GET", "/asyncapi.json", roles=PUBLIC)
def _asyncapi_json(container, request):
    return Response(asyncapi.served(), mimetype="application/json")


@inline_http("GET", "/metrics", roles=PUBLIC)
def _metrics(container, request):
    process_metrics.build_info(build.build_info_labels(build.about(container.service_name)))
    body, content_type = process_metrics.exposition()
    return Response(body, headers={"Content-Type": content_type})


def published(service_cls):
    """Class decorator for every service: what it answers without a credential or a worker.

    ``GET /health`` (200, or 503 when the store does not answer), ``GET /readyz`` (200 when
    store, broker and read models are ready, else 503 naming what is not), ``GET /v1/about``
    (code and data versions, ``shared.about``), ``GET /openapi.json`` (this
    service's paths, from ``contracts.http``), ``GET /asyncapi.json`` (the broker's contract)
    and ``GET /metrics`` (Prometheus, this process); the documents are built once per process.
    A decorator rather than a base class: ``nameko run`` would take a base class with
    entrypoints, imported into a service module, for a service of its own.
    """
    service_cls.health = _health
    service_cls.readyz = _readyz
    service_cls.about = _about
    service_cls.openapi_json = _openapi_json
    service_cls.asyncapi_json = _asyncapi_json
    service_cls.metrics = _metrics
    return service_cls
