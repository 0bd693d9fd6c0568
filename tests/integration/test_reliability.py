"""Bounded retries, dead letters, the outbox relay and pymongo under eventlet, for real."""
import eventlet
import pytest
from nameko.standalone.events import event_dispatcher
from nameko.testing.services import entrypoint_waiter

from shared import outbox
from shared.locks import doc_lock, held
from shared.entrypoints import ATTEMPTS_HEADER, REASON_HEADER, dlq_name, event_handler
from shared.mongo import Mongo

pytestmark = pytest.mark.integration

CALLS = []


class Flaky:
    """Fails the first ``fail_times`` deliveries of each message."""

    name = "flaky"
    db = Mongo("flaky")

    @event_handler("source", "Happened")
    def handle(self, body):
        CALLS.append(body["n"])
        if CALLS.count(body["n"]) <= body["fail_times"]:
            raise RuntimeError(f"transient failure {CALLS.count(body['n'])}")
        self.db.done.insert_one({"_id": body["n"]})


QUEUE = "evt-source-Happened--flaky.handle"


@pytest.fixture(autouse=True)
def reset_calls():
    CALLS.clear()


def test_a_transient_failure_is_retried_and_then_succeeds(container_factory, config, db):
    container = container_factory(Flaky, config)
    container.start()
    dispatch = event_dispatcher(config)

    def succeeded(worker_ctx, result, exc_info):
        return exc_info is None

    with entrypoint_waiter(container, "handle", callback=succeeded, timeout=20):
        dispatch("source", "Happened", {"n": 1, "fail_times": 2})
    assert CALLS == [1, 1, 1]
    assert db("flaky").done.count_documents({"_id": 1}) == 1


def test_a_poison_message_ends_in_the_dead_letter_queue_with_its_reason(
        container_factory, config, queue_reader, db):
    container = container_factory(Flaky, config)
    container.start()
    event_dispatcher(config)("source", "Happened", {"n": 2, "fail_times": 99})
    [(properties, _)] = queue_reader.get_all(dlq_name(QUEUE), timeout=20)
    assert properties.headers[ATTEMPTS_HEADER] == config["RETRY_MAX_ATTEMPTS"]
    assert "transient failure 3" in properties.headers[REASON_HEADER]
    eventlet.sleep(0.5)
    assert CALLS == [2, 2, 2]  # bounded: exactly RETRY_MAX_ATTEMPTS deliveries
    assert db("flaky").done.count_documents({}) == 0


def test_outbox_events_left_by_a_crash_are_published_by_the_sweep(db):
    collection = db("outbox").docs
    event = {"event_id": "e1", "type": "X", "occurred_at": "2020-01-01T00:00:00+00:00"}
    collection.insert_one({"_id": "d1", "state": 1, outbox.OUTBOX: [event]})
    sent = []
    assert outbox.sweep(collection, lambda t, e: sent.append(e["event_id"])) == 1
    assert sent == ["e1"]
    assert collection.find_one({"_id": "d1"})[outbox.OUTBOX] == []
    assert outbox.sweep(collection, lambda t, e: sent.append(e)) == 0


def test_pymongo_under_eventlet_with_concurrent_green_workers(db):
    """The pinned PyMongo works with monkey-patched sockets and many greenthreads, and
    doc_lock keeps concurrent read-modify-writes of one document from losing updates (which
    FerretDB 1.x does without it, see shared/locks.py)."""
    collection = db("concurrency").counters
    collection.insert_one({"_id": "c", "n": 0})

    def bump(_):
        for _ in range(20):
            with doc_lock(collection, "c"):
                collection.update_one({"_id": "c"}, {"$inc": {"n": 1}})
        return True

    pool = eventlet.GreenPool(50)
    assert all(pool.imap(bump, range(50)))
    assert collection.find_one({"_id": "c"})["n"] == 1000
    assert held() == 0
