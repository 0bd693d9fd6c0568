"""The joint punishment engine and gate-keeping API against the real broker and store."""
from datetime import datetime, timedelta, timezone

import pytest
from nameko.events import event_handler
from nameko.standalone.events import event_dispatcher
from nameko.testing.services import entrypoint_hook, entrypoint_waiter

from contracts.events import SECTORS, make_event
from contracts.violation import ViolationSchema
from rules.measures import Catalog
from services.restrictions.service import RestrictionsService
from tests.factories import violation
import zlib

from bson import Binary

from services.restrictions.audit import find_answer, record_bytes, verify_answers
from shared.ledger import Verdict
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration

SEEN = []


class Listener:
    name = "listener"

    @event_handler("restrictions", "RestrictionLifted")
    def lifted(self, body):
        SEEN.append(body)


@pytest.fixture
def restrictions(container_factory, config):
    SEEN.clear()
    container = container_factory(RestrictionsService, config)
    container.start()
    return container


@pytest.fixture
def listener(container_factory, config):
    container = container_factory(Listener, config)
    container.start()
    return container


def send(config, container, body, event_type="ViolationRecorded", version=1, status="active",
         method=None):
    record = ViolationSchema().load(body)
    vid = f"{record['agency_code']}/{record['document_number']}"
    event = make_event(event_type, {"violation_id": vid, "version": version, "status": status,
                                    "record": record, "reason": "test"},
                       producer="violations", correlation_id="test")
    method = method or {"ViolationRecorded": "on_violation_recorded",
                        "ViolationAmended": "on_violation_amended",
                        "ViolationRevoked": "on_violation_revoked"}[event_type]
    with entrypoint_waiter(container, method, timeout=20):
        event_dispatcher(config)("violations", event_type, event)
    return vid


def status(web_session, code, **params):
    response = web_session.get(f"/v1/entities/{code}/status", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_serious_listing_prohibits_only_where_the_law_does(restrictions, config, web_session, db):
    """Order 44 art. 15: considerations (licences, procurement), supervision, stricter review
    (no 告知承诺), a prohibition for SAMR honours; shared with tax (inform). Only the honours
    sector says may not pass; every measure carries its effect and verbatim bases."""
    body = violation(penalties=[{"type": "fine", "amount": "300000.00"}])
    send(config, restrictions, body)
    answer = status(web_session, body["uscc"])
    assert answer["schema_version"] == 2
    assert answer["record"] == "restricted" and answer["may_pass"] is False
    assert set(answer["sectors"]) == set(SECTORS)
    barred = {s for s, e in answer["sectors"].items() if not e["may_pass"]}
    assert barred == {"honours"}
    effects = {m["measure_id"]: m["effect"] for e in answer["sectors"].values()
               for m in e["measures"]}
    assert effects["SL-LIC"] == effects["SL-PROC"] == "consideration"
    assert effects["SL-HON"] == "prohibit" and effects["SL-TAX"] == "inform"
    assert "taxes" not in barred and answer["sectors"]["credit"]["measures"] == []
    for sector, entry in answer["sectors"].items():
        for measure in entry["measures"]:
            assert measure["subject"] == "entity" and measure["bases"], measure["measure_id"]
            assert all(b["quote"] in measure["legal_basis"] for b in measure["bases"])
            assert measure["source"]["document_number"] == body["document_number"]
    lic = next(m for m in answer["sectors"]["market_access"]["measures"] if m["measure_id"] == "SL-LIC")
    assert lic["bases"][0]["article"] == "第十五条" and lic["bases"][0]["item"] == "（一）"
    assert "none prohibits" in answer["sectors"]["market_access"]["reason"]
    audit = find_answer(db("restrictions").audit, answer["answer_id"])
    assert audit["answer"]["may_pass"] is False
    assert web_session.get(f"/v1/answers/{answer['answer_id']}").status_code == 200


def test_considerations_alone_let_the_entity_pass(restrictions, config, web_session):
    listing = {"list": "abnormal_operations", "listed_at": "2026-04-02T00:00:00+08:00"}
    body = violation(listing=listing, severity="general", penalties=[{"type": "warning"}])
    send(config, restrictions, body)
    answer = status(web_session, body["uscc"])
    assert answer["may_pass"] is True and answer["record"] == "measures_without_prohibition"
    assert {m["effect"] for e in answer["sectors"].values() for m in e["measures"]} == {
        "consideration", "inform"}


def test_an_edited_audit_record_no_longer_matches_the_ledger(restrictions, config, web_session,
                                                             db):
    body = violation()
    send(config, restrictions, body)
    answer_id = status(web_session, body["uscc"])["answer_id"]
    store = db("restrictions")
    page_id = answer_id.rpartition("-")[0]
    wait_for(lambda: any(e["data"]["page"] == page_id
                         for e in store.ledger.find({"kind": "AnswersGiven"})),
             message="the answer's ledger entry")
    verdict = Verdict()
    verify_answers(store, verdict)
    assert verdict.ok, verdict.problems
    forged = dict(find_answer(store.audit, answer_id), answer={"may_pass": True})
    store.audit.update_one({"_id": page_id}, {"$set": {"answers": [
        {"answer_id": answer_id, "asked_by": forged["asked_by"],
         "record_z": Binary(zlib.compress(record_bytes(forged)))}]}})
    verify_answers(store, verdict)
    assert [p for p in verdict.problems if answer_id in p and "edited" in p]


def test_redelivered_event_changes_nothing(restrictions, config, db):
    body = violation()
    send(config, restrictions, body)
    count = db("restrictions").restrictions.count_documents({})
    send(config, restrictions, body)
    assert db("restrictions").restrictions.count_documents({}) == count > 0


def test_minor_first_offence_gets_only_a_supervision_action(restrictions, config, web_session, db):
    body = violation(severity="minor", first_offence=True, corrected=True, listing=None,
                     penalties=[{"type": "warning"}])
    vid = send(config, restrictions, body)
    assert db("restrictions").restrictions.count_documents({}) == 0
    action = db("restrictions").supervision_actions.find_one({"_id": vid})
    assert action["actions"] == ["reminder", "administrative_guidance", "interview"]
    assert status(web_session, body["uscc"])["may_pass"] is True


def test_as_of_before_inside_and_after_the_window(restrictions, config, web_session):
    body = violation(listing=None, penalties=[{"type": "licence_revocation"}],
                     decided_at="2026-04-01T10:00:00+08:00")
    send(config, restrictions, body)
    code, sector = body["uscc"], "market_access"
    before = status(web_session, code, sector=sector, as_of="2026-04-01T09:59:59+08:00")
    start = status(web_session, code, sector=sector, as_of="2026-04-01T10:00:00+08:00")
    inside = status(web_session, code, sector=sector, as_of="2031-03-31T10:00:00+08:00")
    end = status(web_session, code, sector=sector, as_of="2031-04-01T10:00:00+08:00")
    assert [a["sectors"][sector]["may_pass"] for a in (before, start, inside, end)] == \
        [True, False, False, True]  # FL-ENT: 5 years from the decision (食品安全法 art. 135)
    # Each answer names the catalog version in force at its as_of (catalog/versions.json
    # measures_versions): before format 2 took effect (2026-12-02T00:00+08:00), the format-1
    # version; the record was decided only under format 2, so its measure is shown, naming it.
    from rules import loader
    current = loader.load().measures.version  # the version in force now decided the record
    assert [a["catalog_version"] for a in (start, inside)] == ["2026-11-01.1", current]
    assert status(web_session, code, sector=sector, as_of="2026-12-01T23:59:59+08:00")[
        "catalog_version"] == "2026-12-01.1"
    assert start["catalog_in_force"]["approved_by"] is None
    assert start["catalog_in_force"]["approval_pending"]
    assert inside["catalog_in_force"]["effective_from"].startswith("2026-12-0")
    assert [m["catalog_version"] for m in start["sectors"][sector]["measures"]] == [current]


def test_revocation_lifts_everywhere_and_is_in_the_change_feed(
        restrictions, listener, config, web_session):
    body = violation()
    send(config, restrictions, body)
    feed = web_session.get("/v1/changes").json()
    imposed = {c["restriction_id"] for c in feed["changes"] if c["change"] == "imposed"}
    assert imposed
    send(config, restrictions, body, "ViolationRevoked", version=2, status="revoked")
    answer = status(web_session, body["uscc"])
    assert answer["may_pass"] is True and answer["record"] == "no_active_restriction"
    later = web_session.get("/v1/changes", params={"since": feed["next"]}).json()
    lifted = {c["restriction_id"] for c in later["changes"] if c["change"] == "lifted"}
    assert lifted == imposed
    assert all(c["lift_reason"].startswith("violation revoked") for c in later["changes"])


def test_expiry_emits_a_lift_event(restrictions, listener, config):
    old = violation(listing=None, penalties=[{"type": "suspension", "months": 3}],
                    occurred_at="2020-01-01T00:00:00+08:00", decided_at="2020-02-01T00:00:00+08:00")
    send(config, restrictions, old)
    with entrypoint_waiter(listener, "lifted", timeout=20):
        with entrypoint_hook(restrictions, "lift_expired") as lift_expired:
            lift_expired()
    reasons = {e["payload"]["lift_reason"] for e in SEEN}
    assert reasons == {"expired: end of the measure's period"}


def test_batch_and_single_lookups_agree(restrictions, config, web_session):
    restricted = violation()
    send(config, restrictions, restricted)
    clean = violation()["uscc"]
    batch = web_session.post("/v1/status:batch", json={"codes": [restricted["uscc"], clean]})
    assert batch.status_code == 200
    results = {r["uscc"]: r for r in batch.json()["results"]}
    for code in (restricted["uscc"], clean):
        single = status(web_session, code)
        assert results[code]["sectors"] == single["sectors"]
        assert results[code]["record"] == single["record"]
    assert results[clean]["record"] == "entity_unknown"


def test_bad_queries_are_400_naming_the_problem(restrictions, web_session):
    code = violation()["uscc"]
    r = web_session.get("/v1/entities/91350100M000100Y44/status")
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "uscc"
    r = web_session.get(f"/v1/entities/{code}/status", params={"as_of": "last tuesday"})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "as_of"
    r = web_session.get(f"/v1/entities/{code}/status", params={"sector": "fishing"})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "sector"
    r = web_session.post("/v1/status:batch", json={"codes": [code] * 1001})
    assert r.status_code == 400 and "1 to 1000" in r.json()["errors"][0]["problem"]
    r = web_session.post("/v1/status:batch", json={"codes": [code, "nope"]})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "codes[1]"
    r = web_session.get("/v1/changes", params={"since": "%%%"})
    assert r.status_code == 400


def test_a_catalog_that_would_orphan_active_restrictions_refuses_to_start(
        container_factory, config, db):
    from rules.measures import InvalidCatalog
    db("restrictions").restrictions.insert_one({
        "_id": "X/1#GONE-01", "measure_id": "GONE-01", "lifted_at": None, "uscc": "x"})
    container = container_factory(RestrictionsService, config)
    with pytest.raises(InvalidCatalog, match="GONE-01 is gone from catalog"):
        container.start()


def test_an_amendment_that_no_longer_triggers_a_measure_lifts_it(
        restrictions, config, web_session, db):
    body = violation()
    send(config, restrictions, body)
    assert status(web_session, body["uscc"])["may_pass"] is False
    amended = dict(body, severity="general", listing=None, category="product_quality")
    send(config, restrictions, amended, "ViolationAmended", version=2)
    answer = status(web_session, body["uscc"])
    assert answer["may_pass"] is True
    lifted = list(db("restrictions").restrictions.find({"lifted_at": {"$ne": None}}))
    assert lifted and all(d["lift_reason"].startswith("violation amended") for d in lifted)
    # a stale redelivery of version 1 changes nothing
    send(config, restrictions, body, "ViolationRecorded", version=1)
    assert status(web_session, body["uscc"])["may_pass"] is True


def test_every_instance_answers_from_the_same_facts(container_factory, config, restrictions,
                                                   web_session, keys):
    """A second instance learns restrictions it did not write (broadcast read model)."""
    import requests
    key = keys("gatekeeper", "bank")

    from tests.system import free_port
    port = free_port()
    other = container_factory(RestrictionsService, {**config,
                                                    "WEB_SERVER_ADDRESS": f"127.0.0.1:{port}"})
    other.start()
    body = violation()
    record = ViolationSchema().load(body)
    event_dispatcher(config)("violations", "ViolationRecorded", make_event(
        "ViolationRecorded", {"violation_id": "FJAMR-350100/x", "version": 1,
                              "status": "active", "record": record},
        producer="violations", correlation_id="test"))  # one of the two instances takes it

    from tests.integration.conftest import wait_for

    def answer_from(url):
        r = requests.get(f"{url}/v1/entities/{body['uscc']}/status",
                         headers={"Authorization": f"Bearer {key}"})
        return r.json() if r.ok and r.json()["record"] == "restricted" else None

    first_port = config["WEB_SERVER_ADDRESS"].split(":")[1]
    expected = len(Catalog.load().decide(record).entity_measures)

    def complete(url):
        answer = answer_from(url)
        count = answer and sum(len(e["measures"]) for e in answer["sectors"].values())
        return answer if count == expected else None

    a = wait_for(lambda: complete(f"http://127.0.0.1:{first_port}"), message="instance 1")
    b = wait_for(lambda: complete(f"http://127.0.0.1:{port}"), message="instance 2")
    assert a["sectors"] == b["sectors"]


def test_a_measure_an_amendment_brings_back_is_imposed_again(
        restrictions, config, web_session, db):
    body = violation(listing=None, penalties=[{"type": "licence_revocation"}])
    sector = "market_access"
    send(config, restrictions, body)
    assert status(web_session, body["uscc"], sector=sector)["sectors"][sector]["may_pass"] is False
    send(config, restrictions, dict(body, penalties=[{"type": "fine", "amount": "1000.00"}]),
         "ViolationAmended", version=2)
    assert status(web_session, body["uscc"], sector=sector)["sectors"][sector]["may_pass"] is True
    send(config, restrictions, body, "ViolationAmended", version=3)
    again = status(web_session, body["uscc"], sector=sector)["sectors"][sector]
    assert again["may_pass"] is False
    assert all(m["restriction_id"].endswith("~1") for m in again["measures"])


def test_a_late_older_credit_change_does_not_overwrite_a_newer_class(restrictions, config, db):
    """CreditChanged events of one entity can arrive out of order (a retry; the outbox relay
    after an instance died): the newest computed class stands. Seen in a CI run of
    test_scale_out: an entity kept class A in restrictions while scoring had it in class D."""
    code = ViolationSchema().load(violation())["uscc"]
    newer = datetime.now(timezone.utc)

    def credit(new_class, computed_at):
        event = make_event("CreditChanged", {
            "uscc": code, "old_score": None, "new_score": 500.0, "old_class": None,
            "new_class": new_class, "model_version": "test", "cause_event_id": "test",
            "computed_at": computed_at}, producer="scoring", correlation_id="test")
        with entrypoint_waiter(restrictions, "on_credit_changed", timeout=20):
            event_dispatcher(config)("scoring", "CreditChanged", event)

    credit("D", newer)
    credit("A", newer - timedelta(seconds=5))  # computed before, delivered after
    assert db("restrictions").entities.find_one({"_id": code})["risk_class"] == "D"
    credit("B", newer + timedelta(seconds=5))
    assert db("restrictions").entities.find_one({"_id": code})["risk_class"] == "B"
