"""Hostile messages, generated: whatever headers and body arrive, every one ends in its
dead-letter queue exactly once, the service keeps answering, and the store is unchanged.

Fixed seed (the ``lianchen`` hypothesis profile is derandomized): the same messages each run.
Covers the headers the code reads (``x-lianchen-*``, ``nameko.*``, ``authorization``, content
type and encoding, ``compression``) and bodies (non-UTF-8, deeply nested, huge, not JSON, not
an envelope), published as one user (the development default). Each least-privilege
credential's reach and forged-producer envelopes: ``test_credential_reach.py``.
"""
import json
import time

import pika
import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from services.registry.service import RegistryService
from services.violations.service import ViolationsService
from shared.agency_client import _pika_uri
from shared.entrypoints import REASON_HEADER
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration
MESSAGES = 12  # per example
EXAMPLES = 10  # the first examples hypothesis draws are the simplest; later ones are not

scalar = st.one_of(st.none(), st.booleans(), st.integers(-2 ** 40, 2 ** 40),
                   st.text(max_size=40), st.binary(max_size=20))
value = st.one_of(scalar, st.lists(scalar, max_size=3),
                  st.dictionaries(st.text(max_size=5), scalar, max_size=3))
HEADERS = st.fixed_dictionaries({}, optional={
    "x-lianchen-attempts": value, "x-lianchen-outages": value,
    "x-lianchen-partition-key": value, "x-lianchen-reason": value,
    "x-lianchen-principal": value, "x-lianchen-principal-signature": value,
    "nameko.call_id_stack": value, "nameko.correlation_id": value, "correlation_id": value,
    "nameko.principal": value, "nameko.authorization": value, "authorization": value,
    "compression": st.sampled_from(["application/x-gzip", "application/x-bz2", "zlib"]),
})
BODY = st.one_of(
    st.binary(max_size=300),
    st.just(b"\xff\xfe\xfd not utf-8"),
    st.integers(1_000, 200_000).map(lambda n: b"[" * n + b"]" * n),
    st.just(b'"' + b"x" * 1_500_000 + b'"'),
    st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=10),
                 lambda inner: st.lists(inner, max_size=3)
                 | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                 max_leaves=10).map(lambda v: json.dumps(v).encode()),
)
PROPERTIES = st.fixed_dictionaries({
    "content_type": st.sampled_from(["application/json", "application/json",
                                     "application/x-python-serialize", "text/plain",
                                     "application/x-yaml"]),
    "content_encoding": st.sampled_from(["utf-8", "utf-8", "binary", "latin-1"]),
})
MESSAGE = st.tuples(HEADERS, BODY, PROPERTIES)


def _channel(config):
    connection = pika.BlockingConnection(pika.URLParameters(_pika_uri(config["AMQP_URI"])))
    channel = connection.channel()
    channel.confirm_delivery()
    return connection, channel


def _depth(channel, queue) -> int:
    return channel.queue_declare(queue, passive=True).method.message_count


def _publish_all(channel, exchange, routing_key, messages):
    for headers, body, properties in messages:
        channel.basic_publish(exchange, routing_key, body, pika.BasicProperties(
            headers=headers, delivery_mode=2, **properties))


def _each_dead_lettered_once(channel, dlq, expected):
    wait_for(lambda: _depth(channel, dlq) >= expected, timeout=60,
             message=f"{expected} dead letters on {dlq}")
    time.sleep(1.0)  # a second copy of any would arrive by now
    assert _depth(channel, dlq) == expected
    for _ in range(expected):
        method, properties, _ = channel.basic_get(dlq, auto_ack=True)
        assert method is not None and properties.headers.get(REASON_HEADER)
        assert not {"authorization", "nameko.authorization"} & set(properties.headers)


@pytest.fixture
def registry(container_factory, config):
    container = container_factory(RegistryService, config)
    container.start()
    return container


@pytest.fixture
def violations(container_factory, config):
    container = container_factory(ViolationsService, config)
    container.start()
    return container


@settings(max_examples=EXAMPLES)
@given(messages=st.lists(MESSAGE, min_size=MESSAGES, max_size=MESSAGES))
def test_hostile_events_never_stop_a_consumer(registry, config, web_config_port, db, messages):
    connection, channel = _channel(config)
    try:
        _publish_all(channel, "violations.events", "ViolationRecorded", messages)
        _each_dead_lettered_once(
            channel, "dlq.evt-violations-ViolationRecorded--registry.on_violation_recorded",
            MESSAGES)
    finally:
        connection.close()
    assert not registry._died.ready()
    assert requests.get(f"http://127.0.0.1:{web_config_port}/health", timeout=5).ok
    assert db("registry").entity_violations.count_documents({}) == 0


@settings(max_examples=EXAMPLES)
@given(messages=st.lists(st.tuples(MESSAGE, st.booleans()), min_size=MESSAGES,
                         max_size=MESSAGES))
def test_hostile_intake_messages_never_stop_violations(violations, config, web_config_port,
                                                       db, keys, messages):
    key = f"Bearer {keys('agency', 'FJAMR')}"
    messages = [({**headers, "authorization": key} if keyed else headers, body, properties)
                for (headers, body, properties), keyed in messages]
    connection, channel = _channel(config)
    try:
        _publish_all(channel, "lianchen.intake", "violation.record", messages)
        _each_dead_lettered_once(channel, "dlq.violations.intake", MESSAGES)
    finally:
        connection.close()
    assert not violations._died.ready()
    assert requests.get(f"http://127.0.0.1:{web_config_port}/health", timeout=5).ok
    assert db("violations").violations.count_documents({}) == 0
