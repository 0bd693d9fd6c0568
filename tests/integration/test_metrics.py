"""GET /metrics counts what the reliable entrypoints did: messages handled, failed, retried and
dead-lettered per queue, HTTP requests per endpoint and status, and their latency."""
import pytest
from nameko.standalone.events import event_dispatcher
from nameko.testing.services import entrypoint_waiter
from prometheus_client.parser import text_string_to_metric_families

from shared.entrypoints import dlq_name, event_handler, http, json_response
from shared.service import published

pytestmark = pytest.mark.integration

QUEUE = "evt-source-Happened--metered.handle"


@published
class Metered:
    name = "metered"

    @event_handler("source", "Happened")
    def handle(self, body):
        if body["fail"]:
            raise RuntimeError("always fails")

    @http("GET", "/v1/things/<string:thing>", roles=("regulator",))
    def thing(self, request, thing):
        return json_response(200, {"thing": thing})


def scrape(session) -> dict:
    response = session.get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.text)
            for sample in family.samples}


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_count_messages_and_requests(container_factory, config, make_session,
                                             queue_reader):
    container = container_factory(Metered, config)
    container.start()
    anonymous, regulator = make_session(None), make_session("regulator", "samr")
    before = scrape(anonymous)
    dispatch = event_dispatcher(config)
    with entrypoint_waiter(container, "handle", timeout=10):
        dispatch("source", "Happened", {"fail": False})
    dispatch("source", "Happened", {"fail": True})
    queue_reader.get_all(dlq_name(QUEUE), timeout=20)
    assert anonymous.get("/v1/things/a").status_code == 401
    assert regulator.get("/v1/things/a").status_code == 200
    assert regulator.get("/v1/things/b").status_code == 200

    after = scrape(anonymous)
    queue = {"service": "metered", "queue": QUEUE}
    moved = {kind: value(after, f"lianchen_messages_{kind}_total", **queue)
             - value(before, f"lianchen_messages_{kind}_total", **queue)
             for kind in ("handled", "failed", "retried", "dead_lettered")}
    attempts = config["RETRY_MAX_ATTEMPTS"]
    assert moved == {"handled": 1, "failed": attempts, "retried": attempts - 1,
                     "dead_lettered": 1}
    route = {"service": "metered", "method": "GET", "endpoint": "/v1/things/<string:thing>"}
    assert value(after, "lianchen_http_requests_total", status="200", **route) == 2
    assert value(after, "lianchen_http_requests_total", status="401", **route) == 1
    assert value(after, "lianchen_http_request_duration_seconds_count", **route) == 3
    assert value(after, "lianchen_http_request_duration_seconds_sum", **route) > 0
