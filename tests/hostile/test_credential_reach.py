"""Each broker credential the scripts create, tried against everything on the vhost.

The users are ``shared.broker_admin.create_users``' (what ``make infra`` and the e2e system
create), on a fresh vhost with the topology and the registry service running as its own user:

* every user publishes to every exchange (and the default one): the broker accepts exactly what
  ``shared.bususers`` grants it (an agency: ``lianchen.intake`` only; violations' user: not
  ``repair.events``; a platform or the monitor: nothing);
* every user that can reach a registry shard (the default exchange, the shard exchange) sends a
  forged ``ViolationRecorded`` there: each is refused, dead-lettered exactly once with the
  reason; the registry still answers ``/health`` and stored nothing;
* an observer queue bound to every ``*.events`` exchange saw nothing its producer did not send.
"""
import json
import time
import uuid

import pika
import pytest
import requests

from services.registry.service import RegistryService
from shared import bususers
from shared.agency_client import _pika_uri
from shared.broker_admin import _call
from shared.entrypoints import REASON_HEADER, ROUTING_KEY_HEADER
from shared.shards import PARTITION_HEADER, SOURCE_HEADER
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration
DLQ = "dlq.evt-violations-ViolationRecorded--registry.on_violation_recorded"
OBSERVER = "observer.all-events"


def _kind(lp, user: str) -> str:
    return user.removeprefix(f"{lp.namespace}.").split(".")[0]


def may_publish(lp, user: str, exchange: str) -> bool:
    """What ``shared.bususers`` grants, said again independently of its regexes."""
    kind = _kind(lp, user)
    if kind == "agency":
        return exchange == "lianchen.intake"
    if kind in ("platform", "monitor"):
        return False
    if kind == "operator":
        return exchange == "amq.default" or exchange.endswith(".shards")
    service = kind
    return (exchange in ("amq.default", "lianchen.dlx") or exchange.startswith(f"{service}.")
            or (exchange == "nameko-rpc" and service in ("registry", "notifications")))


def _try_publish(uri, user, exchange, routing_key, body, headers=None) -> bool:
    connection = pika.BlockingConnection(pika.URLParameters(_pika_uri(uri)))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish("" if exchange == "amq.default" else exchange, routing_key, body,
                              pika.BasicProperties(content_type="application/json",
                                                   user_id=user, headers=headers))
        return True
    except (pika.exceptions.ChannelClosedByBroker, pika.exceptions.UnroutableError):
        return False
    finally:
        if connection.is_open:
            connection.close()


@pytest.fixture
def registry(least_privilege, container_factory, config):
    container = container_factory(RegistryService, {
        **config, "AMQP_URI": least_privilege.uri("registry"), "SHARD_REBALANCE_SECONDS": 0})
    container.start()
    return container


@pytest.fixture
def observer(least_privilege):
    connection = pika.BlockingConnection(pika.URLParameters(_pika_uri(least_privilege.admin_uri)))
    channel = connection.channel()
    channel.queue_declare(OBSERVER, durable=True)
    for service in bususers.SERVICES:
        channel.queue_bind(OBSERVER, f"{service}.events", "#")
    yield channel
    connection.close()


def test_each_credential_reaches_only_what_it_may_and_forgeries_are_refused(
        least_privilege, registry, observer, web_config_port, db):
    lp = least_privilege
    exchanges = sorted(row["name"] or "amq.default"
                       for row in _call("GET", f"exchanges/{lp.vhost}?columns=name").json())
    assert {"lianchen.intake", "violations.events", "repair.events",
            "registry.shards"} <= set(exchanges)
    event = json.dumps({"event_id": uuid.uuid4().hex, "type": "ViolationRecorded",
                        "payload": {"uscc": "91350100M000100Y43"}}).encode()

    # 1. reach: every user, every exchange, what the broker accepts
    reached = {}
    for user in sorted(lp.passwords):
        for exchange in exchanges:
            # routing keys that route nowhere: nothing reaches a consumer here
            routing_key = "nobody.listens" if exchange != "amq.default" else "no-such-queue"
            reached[user, exchange] = _try_publish(lp.uri(user), user, exchange, routing_key,
                                                   event)
    wrong = sorted(f"{user} -> {exchange}: {'accepted' if got else 'refused'}"
                   for (user, exchange), got in reached.items()
                   if got != may_publish(lp, user, exchange))
    assert not wrong, wrong
    agency, violations = f"{lp.namespace}.agency.FJAMR", f"{lp.namespace}.violations"
    assert not reached[agency, "violations.events"] and not reached[agency, "repair.events"]
    assert not reached[violations, "repair.events"] and reached[violations, "violations.events"]

    # 2. a forged ViolationRecorded from every user that reaches a registry shard
    forgers = [user for user in sorted(lp.passwords)
               if user != violations and (reached[user, "amq.default"]
                                          or reached[user, "registry.shards"])]
    assert len(forgers) == len(bususers.SERVICES) - 1 + 1  # five other services, the operator
    route = {SOURCE_HEADER: "violations", ROUTING_KEY_HEADER: "ViolationRecorded",
             PARTITION_HEADER: "91350100M000100Y43"}
    for user in forgers:
        if reached[user, "amq.default"]:
            shard = registry_shard_of("91350100M000100Y43", lp)
            assert _try_publish(lp.uri(user), user, "amq.default", shard, event, route)
        else:
            assert _try_publish(lp.uri(user), user, "registry.shards", "ViolationRecorded",
                                event, route)
    admin = pika.BlockingConnection(pika.URLParameters(_pika_uri(lp.admin_uri))).channel()
    depth = lambda queue: admin.queue_declare(queue, passive=True).method.message_count  # noqa
    wait_for(lambda: depth(DLQ) >= len(forgers), timeout=30,
             message=f"{len(forgers)} forged events dead-lettered")
    time.sleep(1.0)  # a second copy of any would be there by now
    assert depth(DLQ) == len(forgers)
    refused_from = set()
    for _ in forgers:
        _, properties, _ = admin.basic_get(DLQ, auto_ack=True)
        reason = properties.headers[REASON_HEADER]
        assert reason.startswith("ForgedProducer"), reason
        refused_from |= {user for user in forgers if repr(user) in reason}
    assert refused_from == set(forgers)

    assert not registry._died.ready()
    assert requests.get(f"http://127.0.0.1:{web_config_port}/health", timeout=5).ok
    assert db("registry").entity_violations.count_documents({}) == 0

    # 3. the observer: only what producers published on their own exchanges
    seen = []
    while True:
        method, properties, _ = observer.basic_get(OBSERVER, auto_ack=True)
        if method is None:
            break
        seen.append((method.exchange, properties.user_id))
    forged = [(exchange, user) for exchange, user in seen
              if user != f"{lp.namespace}.{exchange.removesuffix('.events')}"]
    assert not forged, forged
    # each service's own publication to its own exchange (step 1) is all there was
    assert sorted(seen) == sorted((f"{service}.events", f"{lp.namespace}.{service}")
                                  for service in bususers.SERVICES)


def registry_shard_of(key: str, lp) -> str:
    """Any registry shard queue: the consumer takes whatever arrives on its shards."""
    return "registry.shard.0"
