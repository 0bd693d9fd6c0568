"""Per-entity routing on the real broker (shared/shards.py): two instances of a service, events
of two sources, one entity's events handled one at a time and in order; a failing handler is
retried and replayed alone."""
import time

import eventlet
import pytest
import requests
from kombu import Connection, Exchange, Producer
from nameko.extensions import DependencyProvider

from shared import broker_admin
from shared.deadletters import list_dead_letters, replay
from shared.entrypoints import dlq_name, event_handler
from shared.shards import PARTITION_HEADER, shard_queue_name
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration

LOG: list[tuple] = []  # (container, source, key, n, started, ended)
CALLS: dict[str, int] = {}
POISONED = {"on": True}


class Instance(DependencyProvider):
    def get_dependency(self, worker_ctx):
        return id(self.container)


class Sharded:
    name = "sharded"
    instance = Instance()

    @event_handler("alpha", "Happened")
    def on_alpha(self, body):
        self._work("alpha", body)

    @event_handler("beta", "Noticed")
    def on_beta(self, body):
        self._work("beta", body)

    def _work(self, source, body):
        started = time.monotonic()
        eventlet.sleep(0.003)  # a store round trip: room for another instance to interleave
        LOG.append((self.instance, source, body["key"], body["n"], started, time.monotonic()))


class Picky:
    """Two handlers of one event: only the failing one may run again."""

    name = "picky"

    @event_handler("alpha", "Happened")
    def steady(self, body):
        CALLS["steady"] = CALLS.get("steady", 0) + 1

    @event_handler("alpha", "Happened")
    def fragile(self, body):
        CALLS["fragile"] = CALLS.get("fragile", 0) + 1
        if POISONED["on"]:
            raise RuntimeError("not today")


@pytest.fixture(autouse=True)
def reset():
    LOG.clear()
    CALLS.clear()
    POISONED["on"] = True


def publish(config, events):
    """``events``: (source, event type, key, body), published as the services publish them:
    with publisher confirms. Without them a burst could lose its last messages when the
    connection closed right after it (seen here: up to 6 of 240, at the tail, 4 runs in 87)."""
    with Connection(config["AMQP_URI"], transport_options={"confirm_publish": True}) as connection:
        producer = Producer(connection.channel(), serializer="json")
        for source, event_type, key, body in events:
            exchange = Exchange(f"{source}.events", type="topic", durable=True)
            producer.publish(body, exchange=exchange, routing_key=event_type, declare=[exchange],
                             headers={PARTITION_HEADER: key}, delivery_mode=2)


def active_instances(config, service):
    base, auth = broker_admin.management_url()
    rows = requests.get(f"{base}/api/consumers/{config['vhost']}", auth=auth, timeout=10).json()
    return {row["consumer_tag"].split("|")[0] for row in rows
            if row["queue"]["name"].startswith(f"{service}.shard.") and row.get("active")}


def test_two_instances_take_turns_per_entity_and_keep_its_order(container_factory, config):
    config = {**config, "SHARD_REBALANCE_SECONDS": 1}
    first, second = container_factory(Sharded, config), container_factory(Sharded, config)
    first.start()
    second.start()
    # the first one up took every shard; rebalancing hands half of them to the second
    wait_for(lambda: len(active_instances(config, "sharded")) == 2, timeout=60,
             message="both instances active on some shard")

    events = [("alpha", "Happened", f"k{n % 8}", {"key": f"k{n % 8}", "n": n}) if n % 3 else
              ("beta", "Noticed", f"k{n % 8}", {"key": f"k{n % 8}", "n": n})
              for n in range(240)]
    publish(config, events)
    wait_for(lambda: len(LOG) >= len(events), timeout=60, message="every event handled")
    eventlet.sleep(0.5)

    assert sorted(n for _, _, _, n, _, _ in LOG) == list(range(240))  # each exactly once
    assert {source for _, source, _, _, _, _ in LOG} == {"alpha", "beta"}
    assert len({instance for instance, *_ in LOG}) == 2  # both instances did work
    for key in {f"k{i}" for i in range(8)}:
        runs = sorted((started, ended, n) for _, _, k, n, started, ended in LOG if k == key)
        for (_, ended, _), (started, _, _) in zip(runs, runs[1:]):
            assert started >= ended, f"two events of {key} were handled at the same time"
        assert [n for _, _, n in runs] == sorted(n for _, _, n in runs), f"{key} out of order"


def test_each_entity_lands_in_one_shard_whatever_the_source(container_factory, config):
    container = container_factory(Sharded, config)
    container.start()
    container.stop()  # the shards stay, nobody consumes
    publish(config, [("alpha", "Happened", "one-entity", {"key": "one-entity", "n": n})
                     for n in range(10)] +
            [("beta", "Noticed", "one-entity", {"key": "one-entity", "n": n})
             for n in range(10, 20)] +
            [("alpha", "Happened", f"e{n}", {"key": f"e{n}", "n": n}) for n in range(200)])

    def depths():
        with Connection(config["AMQP_URI"]) as connection:
            channel = connection.channel()
            return [channel.queue_declare(shard_queue_name("sharded", k), passive=True)
                    .message_count for k in range(12)]

    counts = wait_for(lambda: (lambda d: d if sum(d) == 220 else None)(depths()), timeout=20,
                      message="220 messages in the shards")
    assert max(counts) >= 20  # one shard holds the 20 events of one-entity, among others
    assert sum(1 for c in counts if c) >= 10  # 200 other entities spread over the shards


def test_a_failing_handler_is_retried_and_replayed_alone(container_factory, config):
    container = container_factory(Picky, config)
    container.start()
    publish(config, [("alpha", "Happened", "k1", {"key": "k1", "n": 1})])
    dlq = dlq_name("evt-alpha-Happened--picky.fragile")
    [letter] = wait_for(lambda: list_dead_letters(config["AMQP_URI"], dlq), timeout=30,
                        message="the fragile handler's dead letter")
    assert letter.attempts == config["RETRY_MAX_ATTEMPTS"]
    assert CALLS == {"steady": 1, "fragile": config["RETRY_MAX_ATTEMPTS"]}

    POISONED["on"] = False
    assert replay(config["AMQP_URI"], dlq) == 1
    wait_for(lambda: CALLS["fragile"] == config["RETRY_MAX_ATTEMPTS"] + 1, timeout=30,
             message="the replayed message handled")
    eventlet.sleep(0.5)
    assert CALLS["steady"] == 1  # never ran again
    assert list_dead_letters(config["AMQP_URI"], dlq) == []
