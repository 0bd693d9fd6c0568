"""The store goes away under a running service (a restart, a network cut) and comes back.

The service reaches the real store through a TCP proxy that this test cuts (connections
closed, then connection refused, as during a restart) and restores. The service must stay up,
messages that arrive meanwhile must wait, and none may spend its bounded attempts on the
outage or end in a dead-letter queue.

Regressions: (1) an intake message's credential is checked against the key store before a
worker starts; a store error there escaped nameko's consumer thread and killed the container
(the fault suite's store restart stopped the violations service for good). (2) A handler
failing only because the store was down spent an attempt per failure: an outage longer than
the retry budget dead-lettered every message in flight.
"""
from urllib.parse import urlsplit

import eventlet
import pytest
from kombu import Connection, Queue

from shared.entrypoints import consume, event_handler
from shared.mongo import Mongo
from tests.integration import test_broker_drop as broker_drop
from tests.integration.conftest import MONGO_URI, wait_for
from tests.system import free_port

pytestmark = pytest.mark.integration

INTAKE = Queue("guarded.intake", durable=True)
OVERRIDES = {}  # e.g. {"RETRY_MAX_OUTAGES": 0}: the old behaviour, to see this test fail


class StoreProxy:
    """Forwards 127.0.0.1:<port> to the store; ``cut`` closes every connection and refuses new
    ones, ``restore`` listens again on the same port."""

    def __init__(self):
        target = urlsplit(MONGO_URI)
        self.target = (target.hostname or "127.0.0.1", target.port or 27017)
        self.port = free_port()
        self.uri = f"mongodb://127.0.0.1:{self.port}/"
        self.sockets = []
        self.server = self.acceptor = None

    def restore(self):
        self.server = eventlet.listen(("127.0.0.1", self.port))
        self.acceptor = eventlet.spawn(self._accept, self.server)

    def cut(self):
        self.acceptor.kill()
        self.server.close()
        for sock in self.sockets:
            sock.close()
        self.sockets.clear()

    def _accept(self, server):
        while True:
            client, _ = server.accept()
            try:
                upstream = eventlet.connect(self.target)
            except OSError:
                client.close()  # the client sees a dropped connection and tries again
                continue
            self.sockets += [client, upstream]
            eventlet.spawn(self._pipe, client, upstream)
            eventlet.spawn(self._pipe, upstream, client)

    @staticmethod
    def _pipe(source, sink):
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except (OSError, EOFError):  # eventlet raises EOFError on a socket closed under it
            pass
        finally:
            for sock in (source, sink):
                sock.close()


class Guarded:
    name = "guarded"
    db = Mongo("guarded")

    @consume(INTAKE, roles=("agency",))
    def on_intake(self, body, meta):
        self.db.handled.update_one({"_id": f"intake-{body['n']}"}, {"$inc": {"times": 1}},
                                   upsert=True)

    @event_handler("alpha", "Happened")
    def on_alpha(self, body):
        self.db.handled.update_one({"_id": f"event-{body['n']}"}, {"$inc": {"times": 1}},
                                   upsert=True)


def publish(amqp_uri, key, numbers):
    broker_drop.publish(amqp_uri, numbers, intake=INTAKE, keys=3,
                        intake_headers={"authorization": f"Bearer {key}"})


def dead_letters(amqp_uri) -> int:
    with Connection(amqp_uri) as connection:
        channel = connection.channel()
        return sum(channel.queue_declare(queue, passive=True).message_count
                   for queue in (f"dlq.{INTAKE.name}",
                                 "dlq.evt-alpha-Happened--guarded.on_alpha"))


def test_a_service_waits_out_the_store_going_away(container_factory, config, db, keys):
    proxy = StoreProxy()
    proxy.restore()
    key = keys("agency", "FJAMR")
    # Every intake message checks its credential in the store. One attempt only: any failure
    # that counted would dead-letter its message. An operation fails after the client's 5 s
    # server selection timeout.
    overrides = {"MONGO_URI": proxy.uri, "AUTH_CACHE_SECONDS": 0, "RETRY_MAX_ATTEMPTS": 1,
                 **OVERRIDES}
    container = container_factory(Guarded, {**config, **overrides})
    container.start()
    handled = db("guarded").handled

    def done(numbers):
        ids = [f"{kind}-{n}" for n in numbers for kind in ("intake", "event")]
        rows = {d["_id"]: d["times"] for d in handled.find({"_id": {"$in": ids}})}
        return len(rows) == len(ids) and rows

    publish(config["AMQP_URI"], key, range(5))
    wait_for(lambda: done(range(5)), timeout=30, message="the first messages handled")

    proxy.cut()
    publish(config["AMQP_URI"], key, range(5, 15))
    eventlet.sleep(12)  # the first message of every shard fails, and the credential checks
    assert not container._died.ready(), "the service died while the store was away"
    assert handled.count_documents({"_id": {"$in": [f"intake-{n}" for n in range(5, 15)]}}) == 0

    proxy.restore()
    try:
        rows = wait_for(lambda: done(range(15)), timeout=120, message="every message handled")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; handled: {sorted(d['_id'] for d in handled.find({}))}; "
                             f"dead letters: {dead_letters(config['AMQP_URI'])}") from None
    assert set(rows.values()) == {1}  # once each
    assert dead_letters(config["AMQP_URI"]) == 0
    assert not container._died.ready()
    proxy.cut()
