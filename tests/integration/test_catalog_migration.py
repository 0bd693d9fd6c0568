"""Catalog migration (issue 18 item 6) on a store filled under catalog format 1, real broker and
store: restrictions refuses to start on it; ``migrate`` lifts the format-1 measures with the
reason and article and imposes what format 2 gives; the service then starts and its outbox relay
publishes the events (to the ledger and the consumers); a second run changes nothing."""
from datetime import datetime, timezone

import pytest
from nameko.events import event_handler
from nameko.standalone.events import event_dispatcher  # noqa: F401

from contracts.events import read_event
from contracts.violation import ViolationSchema
from rules.measures import Catalog, InvalidCatalog
from services.restrictions.migrate import migrate
from services.restrictions.service import RestrictionsService
from tests.factories import violation
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration

SEEN = []


class Listener:
    name = "migration_listener"

    @event_handler("restrictions", "RestrictionLifted")
    def lifted(self, body):
        SEEN.append(read_event(body))

    @event_handler("restrictions", "RestrictionsImposed")
    def imposed(self, body):
        envelope, payload = read_event(body)  # one event per decision: one per restriction here
        SEEN.extend((envelope, r) for r in payload["restrictions"])


def format_1_store(store, body):
    """What the format-1 engine left for a listed serious food case: TX-01 and PL-01 among
    others (two are enough), as documents it wrote."""
    record = ViolationSchema().dump(ViolationSchema().load(body))
    vid = f"{body['agency_code']}/{body['document_number']}"
    store.sources.insert_one({"_id": vid, "uscc": body["uscc"], "status": "active",
                              "record": record, "event_id": "old", "version": 1,
                              "imposed": ["PL-01", "TX-01"], "generations": {}})
    at = datetime(2026, 4, 1, 2, tzinfo=timezone.utc)
    for mid, sector in (("PL-01", "platforms"), ("TX-01", "taxes")):
        store.restrictions.insert_one({
            "_id": f"{vid}#{mid}", "uscc": body["uscc"], "entity_name": body["entity_name"],
            "sector": sector, "measure_id": mid, "action": "format 1", "legal_basis": "old",
            "department": "old", "memorandum": "MOU-SERIOUS-2018",
            "source": {"violation_id": vid, "agency_code": body["agency_code"],
                       "document_number": body["document_number"], "category": "food_safety",
                       "severity": "serious"},
            "starts_at": at, "ends_at": None, "rule": "T-SV-1", "reason": "old",
            "lifted_at": None, "lift_reason": None, "imposed_at": at, "changed_at": at,
            "catalog_version": "2026-12-01.1", "event_ids": [f"{vid}#{mid}:imposed"]})
    store.entities.insert_one({"_id": body["uscc"], "violation_ids": [vid]})
    return vid


def test_migration_lifts_with_the_article_imposes_anew_and_lets_the_service_start(
        container_factory, config, db, web_session):
    SEEN.clear()
    store = db("restrictions")
    body = violation()
    vid = format_1_store(store, body)

    refused = container_factory(RestrictionsService, config)
    with pytest.raises(InvalidCatalog, match="PL-01 is gone from catalog"):
        refused.start()

    counts = migrate(store)
    assert counts["orphans_left"] == 0 and counts["records"] == 1 and counts["lifted"] == 2
    lifted = {d["measure_id"]: d["lift_reason"] for d in store.restrictions.find(
        {"lifted_at": {"$ne": None}})}
    assert "重大税收违法失信主体信息公布管理办法 第二条" in lifted["TX-01"]
    assert lifted["PL-01"].startswith(
        f"catalog migration to {Catalog.load().version}: no rule held obliges")
    new = {d["measure_id"] for d in store.restrictions.find({"lifted_at": None})}
    assert new == {"SL-LIC", "SL-PROC", "SL-SUP", "SL-NCP", "SL-HON", "SL-HON-OTHER",
                   "SL-TAX", "SL-PLAT"}
    staged = store.outbox.count_documents({})
    assert staged >= 1  # staged, for the service's relay
    again = migrate(store)  # a second run changes nothing, and stages nothing
    assert (again["imposed"], again["lifted"]) == (0, 0)
    assert store.outbox.count_documents({}) == staged

    listener = container_factory(Listener, config)
    listener.start()
    service = container_factory(RestrictionsService, config)
    service.start()  # no orphan left: it starts
    def kinds():
        return {(e["type"], p.get("measure_id") or p["restriction"]["measure_id"])
                for e, p in list(SEEN)}

    wanted = {("RestrictionLifted", "TX-01"), ("RestrictionLifted", "PL-01")} | {
        ("RestrictionsImposed", mid) for mid in new}
    wait_for(lambda: wanted <= kinds(), timeout=30, message="the staged events published")
    lifts = [p for e, p in SEEN if e["type"] == "RestrictionLifted"]
    assert all(p["lift_reason"].startswith("catalog migration to") for p in lifts)
    wait_for(lambda: store.outbox.count_documents({}) == 0, message="the outbox emptied")
    assert store.ledger.count_documents({"kind": "RestrictionLifted"}) >= 2
    in_ledger = {rid for entry in store.ledger.find({"kind": "RestrictionsImposed"})
                 for rid in entry["data"]["restriction_ids"]}
    assert {f"{vid}#{mid}" for mid in new} <= in_ledger  # one entry names the decision's all
    answer = web_session.get(f"/v1/entities/{body['uscc']}/status").json()
    assert answer["sectors"]["taxes"]["may_pass"] is True
    assert [m["measure_id"] for m in answer["sectors"]["taxes"]["measures"]] == ["SL-TAX"]
    assert vid
