"""Registry's person records on the real store: one person id per document, every lookup
logged with who asked and why, deletion after the retention period."""
from datetime import datetime, timedelta, timezone

import pytest

from rules.personal_data import Retention
from services.registry import persons
from services.registry.service import RegistryService
from shared import identity
from tests.factories import violation

pytestmark = pytest.mark.integration

NUMBER = "11010119900307803X"


@pytest.fixture
def registry(container_factory, config):
    container = container_factory(RegistryService, config)
    container.start()
    return container


def test_a_person_is_looked_up_only_with_a_purpose_and_each_lookup_is_logged(
        registry, make_session, db):
    regulator = make_session("regulator", "samr-credit")
    code = violation()["uscc"]
    answer = regulator.put(f"/v1/registry/entities/{code}", json={
        "name": "福州市某某食品有限公司",
        "legal_representative": {"name": "陈大文", "id_number": NUMBER}})
    assert answer.status_code == 201, answer.text
    rep = answer.json()["legal_representative"]
    expected = identity.person_id(identity.document("resident_id_card", NUMBER))
    assert rep["person_id"] == expected and rep["id_masked"] == "1****************X"
    assert NUMBER not in answer.text

    public = regulator.get(f"/v1/registry/entities/{code}").json()["legal_representative"]
    assert public == {"name": "陈**", "document_type": "resident_id_card",
                      "id_masked": "1****************X"}
    refused = regulator.get(f"/v1/registry/entities/{code}", params={"view": "full"})
    assert refused.status_code == 400 and "purpose" in refused.text
    full = regulator.get(f"/v1/registry/entities/{code}",
                         params={"view": "full", "purpose": "case 2026-17 hearing"})
    assert full.status_code == 200 and full.json()["legal_representative"]["name"] == "陈大文"

    assert regulator.get(f"/v1/registry/persons/{expected}").status_code == 400
    person = regulator.get(f"/v1/registry/persons/{expected}",
                           params={"purpose": "check before a licence decision"})
    assert person.status_code == 200, person.text
    assert person.json()["entities"] == [code] and person.json()["ended_at"] is None
    log = list(db("registry").person_access.find({"person_id": expected}).sort("at", 1))
    assert [(e["purpose"], e["asked_by"].split(":")[:2]) for e in log] == [
        ("case 2026-17 hearing", ["regulator", "samr-credit"]),
        ("check before a licence decision", ["regulator", "samr-credit"])]
    assert regulator.get("/v1/registry/persons/p1_" + "0" * 64,
                         params={"purpose": "looking for nobody"}).status_code == 404


def test_a_person_nothing_refers_to_is_deleted_after_the_retention_period(
        registry, make_session, db):
    regulator = make_session("regulator", "samr")
    code = violation()["uscc"]
    rep = {"name": "陈大文", "id_number": NUMBER}
    regulator.put(f"/v1/registry/entities/{code}", json={"name": "某公司", "legal_representative": rep})
    pid = identity.person_id(identity.document("resident_id_card", NUMBER))
    store = db("registry")
    retention = Retention(days=30, version="test")
    later = datetime.now(timezone.utc) + timedelta(days=400)
    assert persons.purge(store, retention, now=later) == 0  # still the entity's representative
    # another representative registered: nothing refers to the person any more
    regulator.put(f"/v1/registry/entities/{code}", json={"name": "某公司", "legal_representative": {
        "name": "李四", "id_number": "35010219900101123" + identity.ric.calc_check_digit(
            "350102199001011230")}})
    ended = store.persons.find_one({"_id": pid})["ended_at"]
    assert ended is not None
    assert persons.purge(store, retention, now=ended + timedelta(days=29)) == 0
    assert persons.purge(store, retention, now=ended + timedelta(days=31)) == 1
    assert store.persons.find_one({"_id": pid}) is None
    assert store.persons.count_documents({}) == 1  # the new representative stays
