"""store_lock: a lease in the store that serialises writers of one document across processes
(another process is played by writing its lease document directly)."""
from datetime import datetime, timedelta, timezone

import eventlet
import pytest

from shared.locks import LockBusy, store_lock
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration


def foreign_lease(db, key, expires_in: float):
    db.leases.insert_one({"_id": key, "owner": "another-process",
                          "expires_at": datetime.now(timezone.utc) + timedelta(seconds=expires_in)})


def test_a_writer_waits_for_the_lease_another_process_holds(db):
    store = db("locks")
    foreign_lease(store, "docs/d1", expires_in=60)
    entered = []

    def writer():
        with store_lock(store.docs, "d1"):
            entered.append(store.leases.find_one({"_id": "docs/d1"})["owner"])

    thread = eventlet.spawn(writer)
    eventlet.sleep(0.3)
    assert entered == []  # still held by the other process
    store.leases.delete_one({"_id": "docs/d1"})  # the other process is done
    thread.wait()
    assert entered and entered[0] != "another-process"
    assert store.leases.count_documents({}) == 0  # released after use


def test_the_lease_of_a_process_that_died_is_broken(db):
    store = db("locks")
    foreign_lease(store, "docs/d2", expires_in=-1)
    with store_lock(store.docs, "d2"):
        assert store.leases.find_one({"_id": "docs/d2"})["owner"] != "another-process"
    assert store.leases.count_documents({}) == 0


def test_giving_up_says_so_and_leaves_the_other_lease_alone(db):
    store = db("locks")
    foreign_lease(store, "docs/d3", expires_in=60)
    with pytest.raises(LockBusy, match="docs/d3"):
        with store_lock(store.docs, "d3", wait=0.2):
            pytest.fail("entered a document another process holds")
    assert store.leases.find_one({"_id": "docs/d3"})["owner"] == "another-process"


def test_writers_of_one_document_take_turns(db):
    store = db("locks")
    store.docs.insert_one({"_id": "c", "items": []})

    def append(n):
        with store_lock(store.docs, "c"):
            items = store.docs.find_one({"_id": "c"})["items"]
            eventlet.sleep(0)
            store.docs.update_one({"_id": "c"}, {"$set": {"items": items + [n]}})

    pool = eventlet.GreenPool(10)
    list(pool.imap(append, range(30)))
    wait_for(lambda: len(store.docs.find_one({"_id": "c"})["items"]) == 30,
             message="every append kept")
    assert sorted(store.docs.find_one({"_id": "c"})["items"]) == list(range(30))
