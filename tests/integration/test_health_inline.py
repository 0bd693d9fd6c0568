"""``/health``, ``/metrics`` and the published contracts answer while every worker is busy.

A restarted instance takes its backlog at once and its consumers fill the worker pool. When
``/health`` needed a worker it waited behind them: in a 10,000-violation fault run a scoring
instance worked normally but did not answer ``/health`` for 5 minutes. These endpoints are
answered by the HTTP server's own greenthread (``inline_http``).
"""
import time

import eventlet
import pytest
import requests
from eventlet.event import Event

from shared.entrypoints import http, json_response
from shared.mongo import Mongo
from shared.service import published

pytestmark = pytest.mark.integration


@published
class Busy:
    name = "registry"  # a service the published contracts know
    db = Mongo("registry")
    release = None

    @http("GET", "/v1/slow", roles=("regulator",))
    def slow(self, request):
        Busy.release.wait()
        return json_response(200, {"done": True})


def test_health_answers_while_the_only_worker_is_busy(container_factory, config,
                                                      web_config_port, make_session):
    Busy.release = Event()
    container = container_factory(Busy, {**config, "max_workers": 1})
    container.start()
    base = f"http://127.0.0.1:{web_config_port}"
    slow = eventlet.spawn(make_session("regulator", "r1").get, "/v1/slow")
    try:
        eventlet.sleep(0.3)
        assert container._worker_pool.free() == 0  # the one worker waits in /v1/slow
        for path in ("/health", "/readyz", "/v1/about", "/metrics", "/openapi.json",
                     "/asyncapi.json"):
            started = time.monotonic()
            response = requests.get(base + path, timeout=5)
            assert response.status_code == 200, (path, response.text)
            assert time.monotonic() - started < 2, path
        assert requests.get(base + "/health", timeout=5).json() == {"service": "registry",
                                                                    "status": "ok"}
        assert not slow.dead  # still waiting: the answers above did not need its worker
    finally:
        Busy.release.send()
    assert slow.wait().json() == {"done": True}


def test_health_says_degraded_when_the_store_does_not_answer(container_factory, config,
                                                            web_config_port):
    container = container_factory(Busy, {**config, "MONGO_URI":
                                         "mongodb://127.0.0.1:9/"})
    container.start()
    response = requests.get(f"http://127.0.0.1:{web_config_port}/health", timeout=10)
    assert response.status_code == 503
    assert response.json()["status"] == "degraded"


def test_readyz_names_what_is_missing(container_factory, config, web_config_port):
    """Liveness and readiness differ: with its store down the service is alive but not ready;
    with its broker unreachable too, the check names both."""
    container = container_factory(Busy, {**config, "MONGO_URI": "mongodb://127.0.0.1:9/"})
    container.start()
    base = f"http://127.0.0.1:{web_config_port}"
    response = requests.get(base + "/readyz", timeout=10)
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not_ready" and body["checks"]["broker"] == "ok"
    assert body["checks"]["store"].startswith("unreachable")


def test_readyz_and_about_when_everything_answers(container_factory, config, web_config_port):
    from shared.about import about
    container = container_factory(Busy, config)
    container.start()
    base = f"http://127.0.0.1:{web_config_port}"
    ready = requests.get(base + "/readyz", timeout=10)
    assert ready.status_code == 200, ready.text
    assert ready.json() == {"service": "registry", "status": "ready",
                            "checks": {"store": "ok", "broker": "ok"}}
    served = requests.get(base + "/v1/about", timeout=10).json()
    assert served == about("registry")
    metrics = requests.get(base + "/metrics", timeout=10).text
    line = next(x for x in metrics.splitlines() if x.startswith("lianchen_build_info{"))
    assert f'catalog="{served["catalog"]}"' in line and 'service="registry"' in line
    assert f'calendar="{served["calendar"]["version"]}"' in line
