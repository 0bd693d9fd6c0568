"""The decision ledger against the real store: any edit, insertion or deletion is detected."""
import pytest

from shared.cli import main
from shared.ledger import Ledger, entry_hash, verify

pytestmark = pytest.mark.integration


@pytest.fixture
def ledger_db(db):
    return db("violations")


def write(db, n=20, service="violations"):
    ledger = Ledger(db, service)
    for i in range(n):
        ledger.append("ViolationRecorded", {"event_id": f"e{i}", "uscc": "X", "digest": str(i)})
    ledger.flush()
    return ledger


def test_an_untouched_ledger_verifies(ledger_db):
    write(ledger_db)
    write(ledger_db, 5)  # a second process: a second chain
    verdict = verify(ledger_db)
    assert verdict.ok, verdict.problems
    assert verdict.chains == 2 and verdict.entries == 25


def test_an_edited_entry_is_detected(ledger_db):
    ledger = write(ledger_db)
    ledger_db.ledger.update_one({"_id": f"{ledger.chain}:{7:012d}"},
                                {"$set": {"data.uscc": "Y"}})
    verdict = verify(ledger_db)
    assert not verdict.ok and "entry 7" in verdict.problems[0] and "edited" in verdict.problems[0]


def test_an_edit_with_a_recomputed_hash_breaks_the_next_link(ledger_db):
    ledger = write(ledger_db)
    doc = ledger_db.ledger.find_one({"_id": f"{ledger.chain}:{7:012d}"})
    doc["data"]["uscc"] = "Y"
    doc["hash"] = entry_hash(doc)
    ledger_db.ledger.replace_one({"_id": doc["_id"]}, doc)
    verdict = verify(ledger_db)
    assert not verdict.ok and "entry 8" in verdict.problems[0]


def test_a_deleted_entry_is_detected(ledger_db):
    ledger = write(ledger_db)
    ledger_db.ledger.delete_one({"_id": f"{ledger.chain}:{5:012d}"})
    verdict = verify(ledger_db)
    assert not verdict.ok and "entry 5 is missing" in verdict.problems[0]


def test_entries_deleted_from_the_end_are_detected(ledger_db):
    ledger = write(ledger_db)
    for seq in (19, 20):
        ledger_db.ledger.delete_one({"_id": f"{ledger.chain}:{seq:012d}"})
    verdict = verify(ledger_db)
    assert not verdict.ok and "deleted from the end" in verdict.problems[0]


def test_an_inserted_entry_is_detected(ledger_db):
    ledger = write(ledger_db)
    forged = ledger_db.ledger.find_one({"_id": f"{ledger.chain}:{3:012d}"})
    # shift entries 4.. up by one and slip a forged entry in at 4
    for seq in range(20, 3, -1):
        doc = ledger_db.ledger.find_one({"_id": f"{ledger.chain}:{seq:012d}"})
        ledger_db.ledger.delete_one({"_id": doc["_id"]})
        doc["seq"], doc["_id"] = seq + 1, f"{ledger.chain}:{seq + 1:012d}"
        ledger_db.ledger.insert_one(doc)
    forged.update({"_id": f"{ledger.chain}:{4:012d}", "seq": 4, "prev": forged["hash"],
                   "data": {"event_id": "forged"}})
    forged["hash"] = entry_hash(forged)
    ledger_db.ledger.insert_one(forged)
    verdict = verify(ledger_db)
    assert not verdict.ok and "entry 5" in verdict.problems[0]


def test_the_verify_command_exits_non_zero_on_tampering(ledger_db, db_prefix, monkeypatch,
                                                        capsys):
    ledger = write(ledger_db)
    monkeypatch.setenv("DB_PREFIX", db_prefix)
    assert main(["audit", "verify"]) == 0
    assert "ok" in capsys.readouterr().out
    ledger_db.ledger.update_one({"_id": f"{ledger.chain}:{2:012d}"}, {"$set": {"kind": "x"}})
    assert main(["audit", "verify"]) == 1
    assert "TAMPERED" in capsys.readouterr().out
