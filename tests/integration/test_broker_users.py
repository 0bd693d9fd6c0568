"""Validated producers against the real broker, every party as its own least-privilege user.

An event of ``violations.events`` is handled only when violations' own broker user published
it (``user_id``, which the broker checks is the connection's user); a retry re-published by the
consumer and a dead letter replayed by the operator keep that identity through the seal
(``shared.bususers``); a forged event, and a forged or refused one replayed, is dead-lettered
once with the reason and never handled. Intake: an agency's broker user carries only its own
agency's keys.
"""
import json
import uuid

import pika
import pytest
from nameko.testing.services import entrypoint_waiter

from services.violations.service import ViolationsService
from shared.agency_client import AgencyPublisher, _pika_uri
from shared.bususers import PRODUCER_HEADER, SEAL_HEADER
from shared.deadletters import list_dead_letters, replay
from shared.entrypoints import REASON_HEADER, ROUTING_KEY_HEADER, event_handler
from shared.shards import PARTITION_HEADER, SOURCE_HEADER
from tests.factories import violation
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration
DLQ = "dlq.evt-violations-ViolationRecorded--scoring.on_recorded"
CALLS: list[str] = []


class FlakyScoring:
    """A stand-in for scoring (its broker user, its queue names): fails an event whose
    ``payload.fail`` says how many attempts fail."""

    name = "scoring"

    @event_handler("violations", "ViolationRecorded")
    def on_recorded(self, body):
        CALLS.append(body["event_id"])
        if CALLS.count(body["event_id"]) <= body["payload"].get("fail", 0):
            raise RuntimeError("transient failure, for the test")


@pytest.fixture
def scoring(least_privilege, container_factory):
    CALLS.clear()
    container = container_factory(FlakyScoring, {
        "AMQP_URI": least_privilege.uri("scoring"), "RETRY_BASE_DELAY_MS": 20,
        "RETRY_MAX_ATTEMPTS": 3, "SHARDS": 2, "SHARD_REBALANCE_SECONDS": 0})
    container.start()
    return container


def _channel(uri):
    connection = pika.BlockingConnection(pika.URLParameters(_pika_uri(uri)))
    channel = connection.channel()
    channel.confirm_delivery()
    return connection, channel


def _event(fail=0):
    return {"event_id": uuid.uuid4().hex, "type": "ViolationRecorded",
            "payload": {"uscc": "91350100M000100Y43", "fail": fail}}


def _publish(lp, user, exchange, routing_key, event, headers=None):
    connection, channel = _channel(lp.uri(user))
    try:
        channel.basic_publish(exchange, routing_key, json.dumps(event).encode(),
                              pika.BasicProperties(
                                  content_type="application/json", delivery_mode=2,
                                  user_id=f"{lp.namespace}.{user}",
                                  headers={PARTITION_HEADER: "91350100M000100Y43",
                                           **(headers or {})}))
    finally:
        connection.close()


FORGED_ROUTE = {SOURCE_HEADER: "violations", ROUTING_KEY_HEADER: "ViolationRecorded"}


def _dead_letters(lp, count):
    wait_for(lambda: len(list_dead_letters(lp.uri("operator"), DLQ)) >= count, timeout=20,
             message=f"{count} dead letter(s) on {DLQ}")
    letters = list_dead_letters(lp.uri("operator"), DLQ)
    assert len(letters) == count
    return letters


def test_the_producers_event_is_handled_and_its_retry_keeps_the_identity(scoring, least_privilege):
    event = _event(fail=1)  # the first attempt fails: the second comes from scoring's retry
    with entrypoint_waiter(scoring, "on_recorded", timeout=20,
                           callback=lambda worker, result, exc: exc is None):
        _publish(least_privilege, "violations", "violations.events", "ViolationRecorded", event)
    assert CALLS == [event["event_id"]] * 2
    assert list_dead_letters(least_privilege.uri("operator"), DLQ) == []


def test_a_forged_event_is_dead_lettered_once_and_stays_refused_after_replay(scoring,
                                                                           least_privilege):
    lp = least_privilege
    # repair's user reaches scoring's shard queue through the default exchange (its retries
    # need it): the event claims to be violations' and is refused
    _publish(lp, "repair", "", "scoring.shard.0", _event(), headers=FORGED_ROUTE)
    (letter,) = _dead_letters(lp, 1)
    assert letter.reason.startswith("ForgedProducer") and f"{lp.namespace}.repair" in letter.reason
    assert PRODUCER_HEADER not in letter.headers and SEAL_HEADER not in letter.headers

    assert replay(lp.uri("operator"), DLQ) == 1
    (again,) = _dead_letters(lp, 1)
    assert again.reason.startswith("ForgedProducer") and "without a valid seal" in again.reason

    # a seal copied from nowhere, put on by the operator: refused too
    _publish(lp, "operator", "scoring.shards", "ViolationRecorded", _event(), headers={
        **FORGED_ROUTE, PRODUCER_HEADER: f"{lp.namespace}.violations", SEAL_HEADER: "0" * 64})
    _dead_letters(lp, 2)
    assert CALLS == []


def test_a_replayed_dead_letter_of_the_producer_is_handled_again(scoring, least_privilege):
    lp = least_privilege
    event = _event(fail=3)  # RETRY_MAX_ATTEMPTS: dead-lettered after the third
    _publish(lp, "violations", "violations.events", "ViolationRecorded", event)
    (letter,) = _dead_letters(lp, 1)
    assert letter.reason.startswith("RuntimeError")
    assert letter.headers[PRODUCER_HEADER] == f"{lp.namespace}.violations"
    with entrypoint_waiter(scoring, "on_recorded", timeout=20,
                           callback=lambda worker, result, exc: exc is None):
        assert replay(lp.uri("operator"), DLQ) == 1
    assert CALLS == [event["event_id"]] * 4
    assert list_dead_letters(lp.uri("operator"), DLQ) == []


def test_an_event_without_user_id_on_the_producers_exchange_is_refused(scoring, least_privilege):
    """Publishing to violations.events is violations' alone; what reaches scoring's shards
    another way without ``user_id`` (here: violations' shard exchange is scoring's to write,
    so the operator's replay path) is refused."""
    lp = least_privilege
    connection, channel = _channel(lp.uri("operator"))
    try:
        channel.basic_publish("scoring.shards", "ViolationRecorded", json.dumps(_event()).encode(),
                              pika.BasicProperties(content_type="application/json",
                                                   headers={PARTITION_HEADER: "x",
                                                            **FORGED_ROUTE}))
    finally:
        connection.close()
    (letter,) = _dead_letters(lp, 1)
    assert letter.reason.startswith("ForgedProducer")
    assert CALLS == []


@pytest.fixture
def violations(least_privilege, container_factory, config):
    container = container_factory(ViolationsService, {
        **config, "AMQP_URI": least_privilege.uri("violations"), "SHARD_REBALANCE_SECONDS": 0})
    container.start()
    return container


def test_an_agency_user_carries_only_its_own_agencys_keys(violations, least_privilege, keys, db):
    lp = least_privilege
    fjamr_key = keys("agency", "FJAMR")
    with AgencyPublisher(lp.uri("agency.SAMR"), fjamr_key) as samr:  # SAMR's user, FJAMR's key
        samr.publish(violation())
    connection, channel = _channel(lp.uri("operator"))
    try:
        wait_for(lambda: channel.queue_declare("dlq.violations.intake", passive=True)
                 .method.message_count == 1, timeout=20, message="the refused intake message")
        _, properties, _ = channel.basic_get("dlq.violations.intake", auto_ack=True)
        assert properties.headers[REASON_HEADER].startswith("ForgedProducer")
    finally:
        connection.close()
    assert db("violations").violations.count_documents({}) == 0

    with entrypoint_waiter(violations, "on_intake", timeout=20):
        with AgencyPublisher(lp.uri("agency.FJAMR"), fjamr_key) as fjamr:  # its own: recorded
            fjamr.publish(violation())
    wait_for(lambda: db("violations").violations.count_documents({}) == 1, timeout=20,
             message="the agency's own record stored")


def test_the_monitor_reads_the_shard_consumers_and_nothing_else(scoring, least_privilege):
    """What the shard rebalancer reads (``/api/consumers/<vhost>``) as ``<ns>.monitor``; the
    same user can neither change the topology nor publish."""
    import requests

    from shared import broker_admin
    from shared.shards import shards_to_yield

    lp = least_privilege
    user = f"{lp.namespace}.monitor"
    base = broker_admin.management_url()[0]
    auth = (user, lp.passwords[user])

    def consumers():
        rows = requests.get(f"{base}/api/consumers/{lp.vhost}", auth=auth, timeout=10)
        assert rows.status_code == 200
        queues = {row["queue"]["name"] for row in rows.json()}
        return rows.json() if {"scoring.shard.0", "scoring.shard.1"} <= queues else None

    # (the management API's figures lag by its statistics interval)
    rows = wait_for(consumers, timeout=30, message="the monitor to see scoring's consumers")
    assert shards_to_yield(rows, "nobody", "scoring", 2) == []
    refused = requests.put(f"{base}/api/queues/{lp.vhost}/monitor-made", auth=auth, json={},
                           timeout=10)
    assert refused.status_code in (401, 403)
    connection = pika.BlockingConnection(pika.URLParameters(_pika_uri(lp.uri("monitor"))))
    try:
        with pytest.raises(pika.exceptions.ChannelClosedByBroker, match="ACCESS_REFUSED"):
            channel = connection.channel()
            channel.basic_publish("scoring.shards", "x", b"{}")
            channel.queue_declare("scoring.shard.0", passive=False, durable=True)
    finally:
        if connection.is_open:
            connection.close()
