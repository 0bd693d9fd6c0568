"""An operator scraping GET /metrics sees the counters move with the traffic."""
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from shared.agency_client import AgencyPublisher
from tests.factories import violation

pytestmark = pytest.mark.e2e


def scrape(system, service) -> dict:
    response = requests.get(system.url(service, "/metrics"), timeout=10)  # no credential
    assert response.status_code == 200
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.text) for s in family.samples}


def value(samples, name, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_lookups_and_handled_messages_move_the_counters(system):
    gatekeeper = system.session("gatekeeper", "metrics-bank")
    queue = "evt-violations-ViolationRecorded--registry.on_violation_recorded"
    route = {"service": "restrictions", "method": "GET",
             "endpoint": "/v1/entities/<string:code>/status"}
    before_gate, before_registry = scrape(system, "restrictions"), scrape(system, "registry")
    before_intake = scrape(system, "violations")

    body = violation()
    for _ in range(3):
        assert gatekeeper.get(system.url("restrictions",
                                         f"/v1/entities/{body['uscc']}/status")).ok
    with AgencyPublisher(system.agency_uri("FJAMR"), system.key("agency", "FJAMR")) as agency:
        agency.publish(body)
        agency.publish(violation(uscc="91350100M000100Y44"))  # bad check character

    after_gate = scrape(system, "restrictions")
    assert value(after_gate, "lianchen_http_requests_total", status="200", **route) \
        - value(before_gate, "lianchen_http_requests_total", status="200", **route) == 3
    assert value(after_gate, "lianchen_http_request_duration_seconds_count", **route) \
        - value(before_gate, "lianchen_http_request_duration_seconds_count", **route) == 3

    labels = {"service": "registry", "queue": queue}
    system.wait_for(lambda: value(scrape(system, "registry"), "lianchen_messages_handled_total",
                                  **labels)
                    > value(before_registry, "lianchen_messages_handled_total", **labels),
                    message="the registry to count the ViolationRecorded it handled")
    intake = {"service": "violations", "queue": "violations.intake"}
    after_intake = system.wait_for(
        lambda: (lambda s: s if value(s, "lianchen_messages_dead_lettered_total", **intake)
                 > value(before_intake, "lianchen_messages_dead_lettered_total", **intake)
                 else None)(scrape(system, "violations")),
        message="the refused record to be counted as dead-lettered")
    assert value(after_intake, "lianchen_messages_handled_total", **intake) \
        > value(before_intake, "lianchen_messages_handled_total", **intake)
    assert value(after_intake, "lianchen_messages_failed_total", **intake) \
        > value(before_intake, "lianchen_messages_failed_total", **intake)
    assert value(after_intake, "process_resident_memory_bytes") > 0
