"""No message stops a service: hostile headers and bodies, published to the real broker.

Each poison message must end in its dead-letter queue exactly once, with the reason, and the
services must keep answering (``/health``) and consuming (a second message is handled too).
"""
import json
import zlib

import pika
import pytest
import requests

from services.registry.service import RegistryService
from services.violations.service import ViolationsService
from shared.agency_client import _pika_uri
from shared.entrypoints import REASON_HEADER
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration

REGISTRY_DLQ = "dlq.evt-violations-ViolationRecorded--registry.on_violation_recorded"
INTAKE_DLQ = "dlq.violations.intake"

# (name, headers, body, properties): each published to violations.events as ViolationRecorded
EVENT_POISONS = [
    ("attempts header not a number, body not an envelope",
     {"x-lianchen-attempts": "boom", "x-lianchen-partition-key": "k1"}, b'"not an envelope"', {}),
    ("outages header not a number", {"x-lianchen-outages": "x", "x-lianchen-attempts": -7,
                                     "x-lianchen-partition-key": "k2"}, b'{"a": 1}', {}),
    ("partition key a table (unhashable)", {"x-lianchen-partition-key": {"a": 1}},
     b'{"a": 1}', {}),
    ("partition key a list", {"x-lianchen-partition-key": [1, 2]}, b'{"a": 1}', {}),
    ("call id stack not a list", {"nameko.call_id_stack": 5, "x-lianchen-partition-key": "k3"},
     b'{"a": 1}', {}),
    ("not JSON", {"x-lianchen-partition-key": "k4"}, b"\xff\xfe{[", {}),
    ("deeply nested", {"x-lianchen-partition-key": "k5"}, b"[" * 100_000 + b"]" * 100_000, {}),
    ("a pickle", {"x-lianchen-partition-key": "k6"}, b"\x80\x04K\x01.",
     {"content_type": "application/x-python-serialize"}),
    ("compressed (a bomb decoded before any size check)",
     {"x-lianchen-partition-key": "k7", "compression": "application/x-gzip"},
     zlib.compress(b"[" + b"1," * 4_000_000 + b"1]"), {}),
    ("huge", {"x-lianchen-partition-key": "k8"}, b'"' + b"x" * 3_000_000 + b'"', {}),
    ("a compression header on a body that is not compressed",
     {"x-lianchen-partition-key": "k9", "compression": "application/x-gzip"}, b'{"a": 1}', {}),
]


@pytest.fixture
def channel(rabbit_config):
    connection = pika.BlockingConnection(pika.URLParameters(_pika_uri(rabbit_config["AMQP_URI"])))
    channel = connection.channel()
    channel.confirm_delivery()
    yield channel
    connection.close()


def _publish(channel, exchange, routing_key, body, headers, **properties):
    properties.setdefault("content_type", "application/json")
    channel.basic_publish(exchange, routing_key, body, pika.BasicProperties(
        headers=headers, delivery_mode=2, **properties))


def _dead_letters(channel, queue, expect, timeout=30.0):
    got = []

    def poll():
        method, properties, body = channel.basic_get(queue, auto_ack=True)
        if method is not None:
            got.append((properties, body))
        return len(got) >= expect

    wait_for(poll, timeout, message=f"{expect} dead letter(s) on {queue}")
    return got


def _alive(container, port):
    assert not container._died.ready(), "the container died"
    assert requests.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200


def _settle(channel, queue, seconds=1.5):
    """Nothing more arrives on ``queue`` within ``seconds`` (a second copy would be a bug)."""
    import time
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        method, _, body = channel.basic_get(queue, auto_ack=True)
        assert method is None, f"a second dead letter on {queue}: {body[:100]!r}"
        time.sleep(0.1)


def test_hostile_events_are_dead_lettered_once_and_the_consumer_lives(
        container_factory, config, channel, web_config_port):
    registry = container_factory(RegistryService, config)
    registry.start()
    for name, headers, body, properties in EVENT_POISONS:
        _publish(channel, "violations.events", "ViolationRecorded", body, headers, **properties)
        [(dead, _)] = _dead_letters(channel, REGISTRY_DLQ, 1)
        assert dead.headers.get(REASON_HEADER), name
        _settle(channel, REGISTRY_DLQ, 0.5)
        _alive(registry, web_config_port)
    _settle(channel, REGISTRY_DLQ)
    _alive(registry, web_config_port)


def test_hostile_intake_messages_are_dead_lettered_once_and_violations_lives(
        container_factory, config, channel, keys, web_config_port):
    violations = container_factory(ViolationsService, config)
    violations.start()
    key = f"Bearer {keys('agency', 'FJAMR')}"
    poisons = [
        ({"x-lianchen-attempts": "boom", "authorization": key}, b'"not an envelope"', {}),
        ({"x-lianchen-attempts": "boom", "x-lianchen-outages": [1], "authorization": key},
         b"\xff{", {}),
        ({"authorization": 12345}, b"{}", {}),
        ({"authorization": key, "nameko.call_id_stack": {"a": 1}}, b"{}", {}),
        ({"authorization": key, "compression": "application/x-gzip"},
         zlib.compress(b'"' + b"x" * 5_000_000 + b'"'), {}),
        ({"authorization": key}, b'"' + b"y" * 3_000_000 + b'"', {}),
        ({"authorization": key}, json.dumps({"record": 1}).encode(),
         {"content_type": "application/x-python-serialize"}),
    ]
    for headers, body, properties in poisons:
        _publish(channel, "lianchen.intake", "violation.record", body, headers, **properties)
        [(dead, _)] = _dead_letters(channel, INTAKE_DLQ, 1)
        assert dead.headers.get(REASON_HEADER)
        assert "authorization" not in dead.headers and "nameko.authorization" not in dead.headers
        _settle(channel, INTAKE_DLQ, 0.5)
        _alive(violations, web_config_port)
    _settle(channel, INTAKE_DLQ)
    _alive(violations, web_config_port)
