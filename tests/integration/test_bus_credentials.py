"""Credentials never travel on events, and a replayed dead letter keeps the admission it had.

Against the real broker and store: the agency's key must not reach any event, retry or
dead-letter queue; a dead letter that had no credential is refused again after replay (the
operator's key is never stamped on it); one that was admitted comes back as the same agency,
unless its key was revoked meanwhile; and the signed admission cannot be moved to another body.
"""
import json

import pika
import pytest
from nameko.testing.services import entrypoint_waiter

from services.violations.service import ViolationsService
from shared.agency_client import AgencyPublisher, _pika_uri
from shared.auth import KeyStore, PRINCIPAL_HEADER
from shared.deadletters import list_dead_letters, replay
from tests.factories import violation
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration
DLQ = "dlq.violations.intake"


@pytest.fixture
def violations(container_factory, config):
    container = container_factory(ViolationsService, config)
    container.start()
    return container


@pytest.fixture
def channel(rabbit_config):
    connection = pika.BlockingConnection(pika.URLParameters(_pika_uri(rabbit_config["AMQP_URI"])))
    channel = connection.channel()
    channel.confirm_delivery()
    yield channel
    connection.close()


def test_the_agency_key_travels_on_no_event(violations, config, keys, channel):
    key = keys("agency", "FJAMR")
    observer = channel.queue_declare("", exclusive=True).method.queue
    channel.queue_bind(observer, "violations.events", "#")
    with AgencyPublisher(config["AMQP_URI"], key) as agency:
        with entrypoint_waiter(violations, "on_intake", timeout=20) as result:
            agency.publish(violation())
    assert result.get()["status"] == "recorded"
    got = []
    wait_for(lambda: got.append(channel.basic_get(observer, auto_ack=True)) or
             any(m[0] is not None for m in got), message="the ViolationRecorded event")
    [(_, properties, body)] = [m for m in got if m[0] is not None]
    secret = key.split(".", 1)[1]
    assert not [k for k in properties.headers if "authorization" in k.lower()]
    assert secret not in json.dumps(properties.headers, default=str) and secret.encode() not in body
    assert properties.headers.get("nameko.principal", "").startswith("agency:FJAMR:")


def test_a_dead_letter_without_credential_stays_refused_after_replay(violations, config, db,
                                                                     keys):
    with AgencyPublisher(config["AMQP_URI"]) as anonymous:
        anonymous.publish(violation())
    wait_for(lambda: list_dead_letters(config["AMQP_URI"], DLQ), message="the refused message")
    assert replay(config["AMQP_URI"], DLQ) == 1
    [again] = wait_for(lambda: [d for d in list_dead_letters(config["AMQP_URI"], DLQ)
                                if d.headers.get("x-lianchen-replayed")],
                       message="the replayed message refused again")
    assert "credential" in again.reason and "authorization" not in again.headers
    assert db("violations").violations.count_documents({}) == 0


def test_an_admitted_dead_letter_is_replayed_as_its_agency_until_its_key_is_revoked(
        violations, config, db, mongo_client, db_prefix, keys):
    store = KeyStore(mongo_client[f"{db_prefix}_auth"], cache_seconds=0)
    key = keys("agency", "FJAMR")
    with AgencyPublisher(config["AMQP_URI"], key) as agency:
        agency.publish(violation(entity_name=""))  # invalid: dead-lettered with its reason
    [letter] = wait_for(lambda: list_dead_letters(config["AMQP_URI"], DLQ), message="a dead letter")
    assert "entity_name" in letter.reason
    assert "authorization" not in letter.headers
    assert letter.headers[PRINCIPAL_HEADER].startswith("agency:FJAMR:")
    with entrypoint_waiter(violations, "on_intake", timeout=20):
        assert replay(config["AMQP_URI"], DLQ) == 1  # handled again: admitted as FJAMR
    [again] = wait_for(lambda: list_dead_letters(config["AMQP_URI"], DLQ), message="back")
    assert "entity_name" in again.reason
    assert store.revoke(key[3:].split(".")[0])
    assert replay(config["AMQP_URI"], DLQ) == 1  # a signed admission is checked every time
    [refused] = wait_for(lambda: [d for d in list_dead_letters(config["AMQP_URI"], DLQ)
                                  if "revoked" in d.reason], message="refused once revoked")
    assert PRINCIPAL_HEADER not in refused.headers


def test_a_signed_admission_does_not_hold_for_another_body(violations, config, db, keys,
                                                           channel):
    with AgencyPublisher(config["AMQP_URI"], keys("agency", "FJAMR")) as agency:
        agency.publish(violation(entity_name=""))
    [letter] = wait_for(lambda: list_dead_letters(config["AMQP_URI"], DLQ), message="a dead letter")
    channel.queue_purge(DLQ)
    forged = violation(agency_code="FJAMR")
    headers = {k: v for k, v in letter.headers.items() if not k.startswith("x-lianchen-reason")}
    channel.basic_publish("", "violations.intake", json.dumps(forged).encode(),
                          pika.BasicProperties(content_type="application/json",
                                               headers=headers))
    [refused] = wait_for(lambda: list_dead_letters(config["AMQP_URI"], DLQ), message="refused")
    assert "signature" in refused.reason
    assert db("violations").violations.count_documents({}) == 0


def test_a_redacted_dead_letter_is_replayed_as_its_agency(violations, config, keys):
    """The intake copy's body is redacted (identity numbers replaced): the signed admission
    covers the bytes the copy carries, so the replay is admitted, not refused as forged."""
    with AgencyPublisher(config["AMQP_URI"], keys("agency", "FJAMR")) as agency:
        agency.publish(violation(entity_name="", legal_representative={
            "name": "陈大文", "id_number": "11010119900307803X"}))
    [letter] = wait_for(lambda: list_dead_letters(config["AMQP_URI"], DLQ), message="a dead letter")
    assert b"11010119900307803X" not in letter.body and "entity_name" in letter.reason
    with entrypoint_waiter(violations, "on_intake", timeout=20):
        assert replay(config["AMQP_URI"], DLQ) == 1
    [again] = wait_for(lambda: list_dead_letters(config["AMQP_URI"], DLQ), message="back")
    assert "entity_name" in again.reason, again.reason  # handled again: admitted
