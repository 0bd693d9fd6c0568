"""Prometheus metrics of one service process, served at ``GET /metrics`` (``PUBLIC``).

Each process has its own registry (scrape every instance). Counted centrally by the reliable
entrypoints (``shared.entrypoints``), so every handler and endpoint is covered without code of
its own:

- ``lianchen_messages_handled_total{service,queue}``: messages whose handler succeeded
- ``lianchen_messages_failed_total{service,queue}``: handler failures (each attempt)
- ``lianchen_messages_retried_total{service,queue}``: failures re-published for a retry
- ``lianchen_messages_dead_lettered_total{service,queue}``: messages sent to ``dlq.<queue>``
- ``lianchen_http_requests_total{service,method,endpoint,status}``: ``endpoint`` is the
  route as declared (``/v1/entities/<string:code>/status``), never the concrete path
- ``lianchen_http_request_duration_seconds{service,method,endpoint}``: latency histogram
  (for the status endpoints: the gate-keeping lookup latency)

- ``lianchen_build_info{service,version,commit,catalog,score_model,calendar,provisional_years}``:
  always 1; the code and the data versions answers come from (``shared.about``)

plus the process's CPU, memory and open files (``process_*``).
"""
from __future__ import annotations

from prometheus_client import (CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, Info,
                               ProcessCollector, disable_created_metrics, generate_latest)

disable_created_metrics()  # no *_created series: they double the output and nobody reads them

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)

_QUEUE_LABELS = ("service", "queue")
MESSAGES = {
    kind: Counter(f"lianchen_messages_{kind}", text, _QUEUE_LABELS, registry=REGISTRY)
    for kind, text in (
        ("handled", "Messages whose handler succeeded"),
        ("failed", "Handler failures (each attempt)"),
        ("retried", "Failed messages re-published for a later attempt"),
        ("dead_lettered", "Messages sent to the dead-letter queue"),
    )
}
HTTP_REQUESTS = Counter("lianchen_http_requests", "HTTP requests answered",
                        ("service", "method", "endpoint", "status"), registry=REGISTRY)
HTTP_LATENCY = Histogram("lianchen_http_request_duration_seconds",
                         "Time to answer an HTTP request", ("service", "method", "endpoint"),
                         buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                  0.5, 1.0, 2.5, 5.0, 10.0),
                         registry=REGISTRY)


BUILD_INFO = Info("lianchen_build", "Code and data versions this process answers under",
                  ("service",), registry=REGISTRY)


def build_info(labels: dict[str, str]) -> None:
    """Set ``lianchen_build_info`` for this process (``shared.about.build_info_labels``)."""
    BUILD_INFO.labels(labels["service"]).info({k: v for k, v in labels.items() if k != "service"})


def message(kind: str, service: str, queue: str) -> None:
    """Count one message ``handled`` | ``failed`` | ``retried`` | ``dead_lettered``."""
    MESSAGES[kind].labels(service, queue).inc()


def http_request(service: str, method: str, endpoint: str, status: int, seconds: float) -> None:
    HTTP_REQUESTS.labels(service, method, endpoint, str(status)).inc()
    HTTP_LATENCY.labels(service, method, endpoint).observe(seconds)


def exposition() -> tuple[bytes, str]:
    """The text to serve and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
