"""Broadcast read-model handlers (``broadcast_handler``) let what they cannot take in time
expire, instead of piling up behind a burst: the periodic sync brings in what expired."""
import eventlet
import pytest
from kombu import Connection, Exchange, Producer

from shared.entrypoints import broadcast_handler

pytestmark = pytest.mark.integration


class Slow:
    name = "slow"
    seen = []

    @broadcast_handler("alpha", "Changed")
    def on_changed(self, body):
        Slow.seen.append(body["n"])
        eventlet.sleep(0.5)


def test_a_burst_beyond_the_handler_expires_instead_of_piling_up(container_factory, config):
    Slow.seen = []
    container = container_factory(Slow, {**config, "max_workers": 1,
                                          "BROADCAST_TTL_SECONDS": 1})
    container.start()
    alpha = Exchange("alpha.events", type="topic", durable=True)
    with Connection(config["AMQP_URI"]) as connection:
        producer = Producer(connection.channel(), serializer="json")
        for n in range(20):
            producer.publish({"n": n}, exchange=alpha, routing_key="Changed", declare=[alpha])
    eventlet.sleep(4)  # 20 messages at 0.5 s each would take 10 s
    assert Slow.seen[:1] == [0]  # the first were handled...
    assert len(Slow.seen) < 10  # ...the rest expired after 1 s in the queue
    seen = len(Slow.seen)
    eventlet.sleep(2)
    assert len(Slow.seen) <= seen + 1  # nothing left waiting
