"""The audit log's pages: every answer stored exactly once, found by its id, failures heard."""
from __future__ import annotations

import zlib

import eventlet
import pytest

from services.restrictions.audit import AuditLog, find_answer, stored_digest


class Collection:
    """Just enough of a pymongo collection: insert_one and find_one by _id."""

    def __init__(self, fail=False):
        self.docs, self.fail, self.inserts = {}, fail, 0

    def insert_one(self, doc):
        eventlet.sleep(0.01)  # a store round trip: other requests arrive meanwhile
        if self.fail:
            raise RuntimeError("store down")
        assert doc["_id"] not in self.docs
        self.inserts += 1
        self.docs[doc["_id"]] = doc

    def find_one(self, query):
        return self.docs.get(query["_id"])


class Ledger:
    def __init__(self):
        self.entries = []

    def append(self, kind, data):
        self.entries.append((kind, data))


def test_concurrent_answers_share_pages_and_each_is_found_by_its_id():
    collection, ledger = Collection(), Ledger()
    log = AuditLog(collection, ledger)
    pool = eventlet.GreenPool(300)

    def ask(i):
        eventlet.sleep(i * 0.0005)  # requests keep arriving while pages are being stored
        return log.write({"asked_by": f"gatekeeper:g{i}", "answer": {"uscc": f"U{i}"}})

    ids = list(pool.imap(ask, range(300)))
    assert len(set(ids)) == 300
    assert 1 < collection.inserts < 300  # grouped, not one document per answer
    for i, answer_id in enumerate(ids):
        stored = find_answer(collection, answer_id)
        assert stored["asked_by"] == f"gatekeeper:g{i}" and stored["answer"]["uscc"] == f"U{i}"
    in_ledger = [a["answer_id"] for kind, data in ledger.entries for a in data["answers"]]
    assert sorted(in_ledger) == sorted(ids)
    assert {kind for kind, _ in ledger.entries} == {"AnswersGiven"}


def test_a_stored_answer_is_compressed_and_matches_its_ledger_digest_byte_for_byte():
    collection, ledger = Collection(), Ledger()
    log = AuditLog(collection, ledger)
    answer = {"uscc": "U1", "sectors": {s: {"may_pass": True, "restriction_ids": []}
                                        for s in ("credit", "taxes")}}
    answer_id = log.write({"asked_by": "gatekeeper:g", "answer": answer})
    (page,) = collection.docs.values()
    (entry,) = page["answers"]
    assert set(entry) == {"answer_id", "asked_by", "record_z"}  # no nested fields to store
    (_, data), = ledger.entries
    assert stored_digest(entry) == data["answers"][0]["digest"]
    assert find_answer(collection, answer_id)["answer"] == answer
    entry["record_z"] = zlib.compress(b'{"answer":{"uscc":"U2"}}')
    assert stored_digest(entry) != data["answers"][0]["digest"]  # an edit is detectable


def test_a_page_that_cannot_be_stored_fails_its_requests_and_hands_out_no_id():
    log = AuditLog(Collection(fail=True), Ledger())
    with pytest.raises(RuntimeError, match="store down"):
        log.write({"asked_by": "gatekeeper:g", "answer": {}})
    assert log.ledger.entries == []


@pytest.mark.parametrize("bad", ["", "nope", "abc-", "-1", "abc-x", "abc-99"])
def test_unknown_or_malformed_answer_ids_are_not_found(bad):
    collection = Collection()
    log = AuditLog(collection)
    good = log.write({"asked_by": "gatekeeper:g", "answer": {}})
    assert find_answer(collection, good) is not None
    assert find_answer(collection, bad) is None
    page = good.rpartition("-")[0]
    assert find_answer(collection, f"{page}-5") is None
