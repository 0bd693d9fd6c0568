"""`lianchen pii migrate` on the real store: records from before issue 19 are re-masked, their
hashes replaced by keyed legacy refs, counted as unmigrated until the number is resent."""
import pytest

from contracts.violation import ViolationSchema
from shared import identity
from shared.cli import main
from shared.pii_migration import link_legacy
from tests.factories import violation

pytestmark = pytest.mark.integration

NUMBER = "11010119900307803X"


def old_forms():
    pepper_hash, registry_hash = identity.legacy_hashes(NUMBER, {})
    return ({"name": "陈大文", "id_number_masked": "110101********803X",
             "id_number_hash": pepper_hash},
            {"name": "陈大文", "id_masked": "110***********803X", "id_hash": registry_hash})


def test_old_records_are_remasked_counted_and_linked_when_the_number_comes_back(
        mongo_client, db_prefix, monkeypatch, capsys):
    monkeypatch.setenv("DB_PREFIX", db_prefix)
    violations_db, registry_db = mongo_client[f"{db_prefix}_violations"], \
        mongo_client[f"{db_prefix}_registry"]
    old_violation, old_registry = old_forms()
    record = {**violation(), "legal_representative": old_violation}
    violations_db.violations.insert_one({"_id": "V/1", "record": record,
                                         "versions": [{"version": 1, "record": record}]})
    registry_db.entities.insert_one({"_id": record["uscc"], "legal_representative": old_registry})
    violations_db.ledger.insert_one({"_id": "chain:1", "data": {"note": "never rewritten"}})

    assert main(["pii", "migrate"]) == 0
    out = capsys.readouterr().out
    assert "changed 2" in out and "3 copies re-masked" in out and "unmigrated: 3" in out
    stored = violations_db.violations.find_one({"_id": "V/1"})
    rep = stored["record"]["legal_representative"]
    assert rep["id_masked"] == "1****************X" and rep["person_id"] is None
    assert rep["unmigrated"] is True and rep["legacy_ref"].startswith("l1_")
    text = str(stored) + str(registry_db.entities.find_one({}))
    assert "110101" not in text and old_violation["id_number_hash"] not in text
    assert old_registry["id_hash"] not in text
    assert stored["pii_migrations"][0]["paths"] == ["record.legal_representative",
                                                    "versions.0.record.legal_representative"]
    # a migrated copy still loads (a revocation re-emits it)
    assert ViolationSchema().load(stored["record"])["legal_representative"]["person_id"] is None

    # the source resends the number: the intake links it; the next run completes the copies
    holder = identity.Keyholder(identity.current_key())
    person = holder.protect(identity.document("resident_id_card", NUMBER))["person_id"]
    link_legacy(violations_db, holder, NUMBER, person)
    assert main(["pii", "migrate"]) == 0
    out = capsys.readouterr().out
    assert "3 linked" in out and "unmigrated: 0" in out
    rep = violations_db.violations.find_one({"_id": "V/1"})["record"]["legal_representative"]
    assert rep == {"name": "陈大文", "id_masked": "1****************X", "person_id": person}
    assert registry_db.entities.find_one({})["legal_representative"]["person_id"] == person
    assert violations_db.ledger.find_one({"_id": "chain:1"})["data"] == {"note": "never rewritten"}
