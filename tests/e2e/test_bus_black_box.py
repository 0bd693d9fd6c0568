"""Issue 26's "Done when" for the bus, black box against the started system (six processes,
each its own least-privilege broker user, as ``make run`` starts them).

* the two poison messages of the issue kill nothing;
* an agency's broker user publishes nowhere but ``lianchen.intake``; violations' own user not to
  ``repair.events``;
* a forged ``ViolationRecorded`` published by another service's user is refused;
* a dead letter that had no credential stays refused after the operator's replay.
"""
import json
import time
import uuid

import pika
import pytest
import requests

from shared import bususers
from shared.agency_client import AgencyPublisher, _pika_uri
from shared.broker_admin import _call, queue_depths
from shared.deadletters import list_dead_letters, replay
from shared.entrypoints import ROUTING_KEY_HEADER
from shared.shards import PARTITION_HEADER, SOURCE_HEADER
from tests.factories import violation

pytestmark = pytest.mark.e2e
REGISTRY_DLQ = "dlq.evt-violations-ViolationRecorded--registry.on_violation_recorded"
INTAKE_DLQ = "dlq.violations.intake"


def _publish(uri, exchange, routing_key, body, headers=None) -> bool:
    """True if the broker accepted the message (publisher confirms), False if it refused."""
    user = bususers.user_of(uri)
    connection = pika.BlockingConnection(pika.URLParameters(_pika_uri(uri)))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish(exchange, routing_key, body, pika.BasicProperties(
            content_type="application/json", delivery_mode=2, user_id=user, headers=headers))
        return True
    except (pika.exceptions.ChannelClosedByBroker, pika.exceptions.UnroutableError):
        return False
    finally:
        if connection.is_open:
            connection.close()


def _all_healthy(system):
    assert not system.dead(), system.dead()
    for service in system.services:
        assert requests.get(system.url(service, "/health"), timeout=5).ok, service


def _wait_depth(system, queue, at_least):
    return system.wait_for(lambda: queue_depths(system.vhost).get(queue, 0) >= at_least,
                           timeout=30, message=f"{at_least} message(s) on {queue}")


def test_the_two_poison_messages_kill_nothing(system):
    registry_before = queue_depths(system.vhost).get(REGISTRY_DLQ, 0)
    intake_before = queue_depths(system.vhost).get(INTAKE_DLQ, 0)
    poison = {"x-lianchen-attempts": "boom", PARTITION_HEADER: "x"}
    assert _publish(system.service_uri("violations"), "violations.events", "ViolationRecorded",
                    b"not an envelope", poison)
    key = system.key("agency", "FJAMR")
    assert _publish(system.agency_uri("FJAMR"), "lianchen.intake", "violation.record",
                    b"not an envelope", {**poison, "authorization": f"Bearer {key}"})
    _wait_depth(system, REGISTRY_DLQ, registry_before + 1)
    _wait_depth(system, INTAKE_DLQ, intake_before + 1)
    time.sleep(2)  # a crash would have happened by now
    _all_healthy(system)


def test_an_agency_publishes_only_to_intake_and_violations_not_to_repair(system):
    exchanges = sorted(row["name"] or "amq.default"
                       for row in _call("GET", f"exchanges/{system.vhost}?columns=name").json())
    assert "repair.events" in exchanges and "violations.events" in exchanges
    agency = system.agency_uri("FJAMR")
    reached = [exchange for exchange in exchanges
               if _publish(agency, "" if exchange == "amq.default" else exchange,
                           "nobody.listens", b"{}")]
    assert reached == ["lianchen.intake"]
    violations = system.service_uri("violations")
    assert not _publish(violations, "repair.events", "RecordRepaired", b"{}")
    assert not _publish(violations, "scoring.events", "CreditChanged", b"{}")
    assert _publish(violations, "violations.events", "nobody.listens", b"{}")


def test_a_forged_violation_recorded_from_another_services_user_is_refused(system):
    before = queue_depths(system.vhost).get(REGISTRY_DLQ, 0)
    code = violation()["uscc"]
    forged = json.dumps({"event_id": uuid.uuid4().hex, "type": "ViolationRecorded",
                         "payload": {"uscc": code}}).encode()
    route = {SOURCE_HEADER: "violations", ROUTING_KEY_HEADER: "ViolationRecorded",
             PARTITION_HEADER: code}
    assert _publish(system.service_uri("scoring"), "", "registry.shard.0", forged, route)
    _wait_depth(system, REGISTRY_DLQ, before + 1)
    letters = list_dead_letters(system.operator_uri, REGISTRY_DLQ, limit=1000)
    assert any(letter.reason.startswith("ForgedProducer") and "scoring" in letter.reason
               for letter in letters)
    admin = system.session()
    assert admin.get(system.url("registry", f"/v1/registry/entities/{code}")).status_code == 404
    _all_healthy(system)


def test_a_dead_letter_without_credential_stays_refused_after_replay(system):
    record = violation()
    letters = lambda: list_dead_letters(system.operator_uri, INTAKE_DLQ, limit=1000)  # noqa
    keyless = lambda: [letter for letter in letters()  # noqa: E731
                       if record["document_number"].encode() in letter.body]
    with AgencyPublisher(system.agency_uri("FJAMR"), credential=None) as agency:
        agency.publish(record)
    system.wait_for(keyless, message="the keyless record dead-lettered")
    (letter,) = keyless()
    assert "missing credential" in letter.reason
    count = len(letters())
    assert replay(system.operator_uri, INTAKE_DLQ) == count
    system.wait_for(lambda: len(letters()) >= count, message="the replayed letters back")
    time.sleep(1)
    assert len(letters()) == count  # every one refused again, once
    (again,) = keyless()
    assert "missing credential" in again.reason
    regulator = system.session("regulator", "black-box")
    path = f"/v1/violations/{record['agency_code']}/{record['document_number']}"
    assert regulator.get(system.url("violations", path)).status_code == 404
