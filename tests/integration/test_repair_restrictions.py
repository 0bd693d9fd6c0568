"""The restrictions service's reaction to credit repair and objections (real broker and store)."""
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from nameko.events import event_handler
from nameko.standalone.events import event_dispatcher
from nameko.testing.services import entrypoint_waiter

from contracts.events import SECTORS, make_event, read_event
from contracts.violation import ViolationSchema
from rules.periods import months_after
from services.restrictions.service import RestrictionsService
from tests.factories import violation
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration

LIFTED = []
# T-SL-1 (the serious list, Order 44 art. 15): end with the listing.
LISTING_ONLY = {"SL-LIC", "SL-PROC", "SL-SUP", "SL-NCP", "SL-HON", "SL-HON-OTHER", "SL-TAX",
                "SL-PLAT"}
# The food licence revocation: T-FL-1 (食品安全法 art. 135, 5 years) and T-GP-1 (政府采购法
# art. 22(5), 3 years), both from the decision, whatever becomes of the listing.
PENALTY = {"FL-ENT", "GP-EXCL"}


class Listener:
    name = "lift_listener"

    @event_handler("restrictions", "RestrictionLifted")
    def lifted(self, body):
        LIFTED.append(read_event(body)[1])


@pytest.fixture
def db_prefix(mongo_client):
    """Drops this test's databases by name (listing them can wait behind other clients)."""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    yield prefix
    for service in ("restrictions", "auth"):
        mongo_client.drop_database(f"{prefix}_{service}")


@pytest.fixture
def restrictions(container_factory, config):
    LIFTED.clear()
    container = container_factory(RestrictionsService, config)
    container.start()
    return container


@pytest.fixture
def listener(container_factory, config):
    container = container_factory(Listener, config)
    container.start()
    return container


def record(config, container, body):
    loaded = ViolationSchema().load(body)
    vid = f"{loaded['agency_code']}/{loaded['document_number']}"
    event = make_event("ViolationRecorded", {"violation_id": vid, "version": 1,
                                             "status": "active", "record": loaded},
                       producer="violations", correlation_id="test")
    with entrypoint_waiter(container, "on_violation_recorded", timeout=20):
        event_dispatcher(config)("violations", "ViolationRecorded", event)
    return vid


def from_repair(config, container, event_type, payload, event_id, method):
    event = make_event(event_type, payload, producer="repair", correlation_id="test-repair",
                       event_id=event_id)
    with entrypoint_waiter(container, method, timeout=20):
        event_dispatcher(config)("repair", event_type, event)


def repaired(config, container, vid, code, scope, app_id):
    from_repair(config, container, "RecordRepaired", {
        "application_id": app_id, "uscc": code, "violation_id": vid, "scope": scope,
        "decided_by": "agency:FJAMR", "decided_at": datetime.now(timezone.utc),
        "reason": "penalty performed, harm removed"}, f"repair:{app_id}:approved",
        "on_record_repaired")


def objection(config, container, vid, code, oid, outcome=None):
    payload = {"objection_id": oid, "uscc": code, "violation_id": vid,
               "opened_at": datetime.now(timezone.utc)}
    if outcome:
        payload.update(outcome=outcome, decided_at=datetime.now(timezone.utc), reason="checked")
    kind = "ObjectionDecided" if outcome else "ObjectionOpened"
    from_repair(config, container, kind, payload, f"objection:{oid}:{kind}",
                "on_objection_decided" if outcome else "on_objection_opened")


def status(session, code, **params):
    r = session.get(f"/v1/entities/{code}/status", params=params)
    assert r.status_code == 200, r.text
    return r.json()


def active_measures(answer):
    return {m["measure_id"] for entry in answer["sectors"].values() for m in entry["measures"]}


def listed_food():
    ago = lambda days: (datetime.now(timezone.utc) - timedelta(days=days)).isoformat()  # noqa: E731
    return violation(occurred_at=ago(420), decided_at=ago(400),
                     penalties=[{"type": "fine", "amount": "50000.00"},
                                {"type": "licence_revocation"}],
                     listing={"list": "serious_violation", "listed_at": ago(400)})


def test_objection_flags_every_measure_of_the_record_until_decided(restrictions, config,
                                                                   make_session):
    body = listed_food()
    vid = record(config, restrictions, body)
    other = violation(listing=None, uscc=body["uscc"], category="product_quality",
                      penalties=[{"type": "suspension", "months": 3}])
    other_vid = record(config, restrictions, other)
    gate = make_session("gatekeeper", "bank")
    objection(config, restrictions, vid, body["uscc"], "OB-1")
    answer = status(gate, body["uscc"])
    assert answer["records_under_review"] == [vid]
    assert answer["may_pass"] is False  # the record stands while it is reviewed
    assert {s for s in SECTORS if answer["sectors"][s]["measures"]} == set(SECTORS) - {"credit"}
    for sector in SECTORS:
        for m in answer["sectors"][sector]["measures"]:
            source = f"{m['source']['agency_code']}/{m['source']['document_number']}"
            assert m["under_review"] is (source == vid), (sector, m["measure_id"])
    assert other_vid not in answer["records_under_review"]

    objection(config, restrictions, vid, body["uscc"], "OB-1", outcome="upheld")
    answer = status(gate, body["uscc"])
    assert answer["records_under_review"] == []
    assert not any(m["under_review"] for e in answer["sectors"].values() for m in e["measures"])
    # A late redelivery of the opening does not reopen a decided objection.
    objection(config, restrictions, vid, body["uscc"], "OB-1")
    assert status(gate, body["uscc"])["records_under_review"] == []


def test_repair_lifts_the_listing_measures_then_the_rest(restrictions, listener, config,
                                                         make_session, db):
    body = listed_food()
    vid = record(config, restrictions, body)
    gate = make_session("gatekeeper", "bank")
    assert active_measures(status(gate, body["uscc"])) == LISTING_ONLY | PENALTY

    repaired(config, restrictions, vid, body["uscc"], "serious_list", "RA-1")
    answer = status(gate, body["uscc"])
    assert active_measures(answer) == PENALTY
    assert [s for s, entry in answer["sectors"].items() if not entry["may_pass"]] == [
        "market_access", "procurement"]
    wait_for(lambda: len(LIFTED) >= len(LISTING_ONLY - PENALTY), message="lift events")
    assert {e["restriction"]["measure_id"] for e in LIFTED} == LISTING_ONLY - PENALTY
    for event in LIFTED:
        assert event["lift_reason"].startswith("credit repair approved (application RA-1 by "
                                               "agency:FJAMR): removed from the serious "
                                               "violation list")

    # The same approval again changes nothing.
    repaired(config, restrictions, vid, body["uscc"], "serious_list", "RA-1")
    assert active_measures(status(gate, body["uscc"])) == PENALTY

    # (The repair service would refuse a publicity repair after a revocation, Order 45 art. 14;
    # the event is sent directly here to check how restrictions reacts to one.)
    repaired(config, restrictions, vid, body["uscc"], "publicity", "RA-2")
    answer = status(gate, body["uscc"])
    assert answer["may_pass"] is True and answer["record"] == "no_active_restriction"
    wait_for(lambda: len(LIFTED) >= len(LISTING_ONLY | PENALTY), message="all lift events")
    late = [e for e in LIFTED if e["restriction"]["measure_id"] in PENALTY]
    assert all("application RA-2" in e["lift_reason"] and "publicity ended" in e["lift_reason"]
               for e in late)
    stored = db("restrictions").restrictions.find({"lifted_at": None})
    assert list(stored) == []


def test_serious_list_measures_end_three_years_after_listing(restrictions, config, make_session):
    body = violation(category="unfair_competition", severity="general",
                     occurred_at="2025-01-01T00:00:00+08:00",
                     decided_at="2025-02-01T00:00:00+08:00",
                     listing={"list": "serious_violation", "listed_at": "2025-02-10T00:00:00+08:00"})
    record(config, restrictions, body)
    gate = make_session("gatekeeper", "bank")
    end = months_after(datetime.fromisoformat(body["listing"]["listed_at"]), 36)
    follows_listing = LISTING_ONLY

    def active(as_of):
        return active_measures(status(gate, body["uscc"], as_of=as_of.isoformat()))

    assert follows_listing <= active(end - timedelta(days=1))
    assert not follows_listing & active(end)
    assert not follows_listing & active(end + timedelta(days=1))
    # Every measure of the listing has ended by then (fixed ones ran from the decision).
    assert active(end + timedelta(days=1)) == set()
