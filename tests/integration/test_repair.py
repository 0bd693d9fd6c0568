"""Credit repair, objections and the public record against the real broker and store."""
import uuid
from datetime import date, datetime, timedelta, timezone

import pytest
from nameko.events import event_handler
from nameko.standalone.events import event_dispatcher
from nameko.testing.services import entrypoint_waiter

from contracts.common import CHINA_TZ
from contracts.events import make_event, read_event
from contracts.violation import ViolationSchema
from rules.calendar import WorkCalendar
from services.repair.service import RepairService
from tests.factories import violation
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration

EVENTS = []
CAL = WorkCalendar.load()
LETTER = {"signed_by": "王经理", "signed_at": "2026-11-01"}


class Listener:
    name = "repair_listener"

    @event_handler("repair", "RecordRepaired")
    def repaired(self, body):
        EVENTS.append(read_event(body))

    @event_handler("repair", "ObjectionOpened")
    def opened(self, body):
        EVENTS.append(read_event(body))

    @event_handler("repair", "ObjectionDecided")
    def decided(self, body):
        EVENTS.append(read_event(body))


@pytest.fixture
def db_prefix(mongo_client):
    """The shared fixture's, dropping this test's databases by name: listing every database
    on FerretDB can wait behind another client's long write."""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    yield prefix
    for service in ("repair", "restrictions", "auth"):
        mongo_client.drop_database(f"{prefix}_{service}")


@pytest.fixture
def repair(container_factory, config):
    EVENTS.clear()
    container = container_factory(RepairService, config)
    container.start()
    return container


@pytest.fixture
def listener(container_factory, config):
    container = container_factory(Listener, config)
    container.start()
    return container


def ago(days: float) -> str:
    return (datetime.now(CHINA_TZ) - timedelta(days=days)).isoformat(timespec="seconds")


def send(config, container, body, event_type="ViolationRecorded", version=1, status="active"):
    record = ViolationSchema().load(body)
    vid = f"{record['agency_code']}/{record['document_number']}"
    event = make_event(event_type, {"violation_id": vid, "version": version, "status": status,
                                    "record": record, "reason": "test reason"},
                       producer="violations", correlation_id="test")
    method = {"ViolationRecorded": "on_violation_recorded",
              "ViolationAmended": "on_violation_amended",
              "ViolationRevoked": "on_violation_revoked"}[event_type]
    with entrypoint_waiter(container, method, timeout=20):
        event_dispatcher(config)("violations", event_type, event)
    return vid


def listed_food(**overrides):
    """Food safety, serious, on the serious violation list for 400 days."""
    body = violation(occurred_at=ago(420), decided_at=ago(400),
                     listing={"list": "serious_violation", "listed_at": ago(400)})
    body.update(overrides)
    return body


def application(body, **overrides):
    data = {"agency_code": body["agency_code"], "document_number": body["document_number"],
            "uscc": body["uscc"], "applicant": {"name": "福州示例食品有限公司", "capacity": "entity"},
            "penalty_performed": True, "harm_removed": True, "commitment_letter": LETTER}
    data.update(overrides)
    return data


def objection(body, **overrides):
    data = {"agency_code": body["agency_code"], "document_number": body["document_number"],
            "uscc": body["uscc"], "applicant": {"name": "代理人", "capacity": "agent"},
            "grounds": "the fine was paid before the decision; the facts are wrong"}
    data.update(overrides)
    return data


def events(event_type, count=1):
    return wait_for(lambda: [p for e, p in EVENTS if e["type"] == event_type]
                    if len([1 for e, _ in EVENTS if e["type"] == event_type]) >= count else None,
                    message=f"{count} {event_type} event(s)")


def test_too_early_is_refused_with_the_rule_and_the_earliest_date(repair, config, make_session):
    body = violation(category="product_quality", severity="general", listing=None,
                     occurred_at=ago(40), decided_at=ago(30))
    send(config, repair, body)
    desk = make_session("regulator", "credit-desk")
    r = desk.post("/v1/repair/applications", json=application(body))
    assert r.status_code == 422, r.text
    answer = r.json()
    assert answer["eligible"] is False and answer["scope"] == "publicity"
    assert [b["rule"] for b in answer["blocking"]] == ["too_early"]
    decided = datetime.fromisoformat(body["decided_at"])
    from rules.periods import Periods, months_after
    # Order 45 art. 14 (公示达到规定时限): from publication; not reported, so the art. 9
    # deadline (20 working days after the decision) is assumed
    published = Periods.shipped().publication_deadline(decided)
    assert datetime.fromisoformat(answer["earliest_at"]) == months_after(published, 6)
    assert "assumed" in answer["blocking"][0]["detail"]


def test_ineligible_and_unentitled_applications_are_refused(repair, config, make_session):
    revoked_licence = violation(listing=None, occurred_at=ago(800), decided_at=ago(700),
                                penalties=[{"type": "licence_revocation"}])
    send(config, repair, revoked_licence)
    desk = make_session("regulator", "credit-desk")
    r = desk.post("/v1/repair/applications", json=application(revoked_licence))
    assert r.status_code == 422
    assert r.json()["blocking"][0]["rule"] == "not_repairable"
    assert r.json()["earliest_at"] is None

    other = violation()["uscc"]
    r = desk.post("/v1/repair/applications", json=application(revoked_licence, uscc=other))
    assert r.status_code == 403 and r.json()["blocking"][0]["rule"] == "not_entitled"
    r = make_session("agency", "FJAMR").post("/v1/repair/applications",
                                             json=application(revoked_licence))
    assert r.status_code == 403 and "recording agency" in r.json()["error"]
    r = make_session("gatekeeper", "bank").post("/v1/repair/applications",
                                                json=application(revoked_licence))
    assert r.status_code == 403
    r = make_session(None).post("/v1/repair/applications", json=application(revoked_licence))
    assert r.status_code == 401

    r = desk.post("/v1/repair/applications", json=application(
        revoked_licence, penalty_performed=False, commitment_letter=None))
    assert {b["rule"] for b in r.json()["blocking"]} >= {"penalty_not_performed",
                                                         "no_commitment_letter"}


def test_bad_input_is_400_naming_the_field(repair, config, make_session):
    desk = make_session("regulator", "credit-desk")
    r = desk.post("/v1/repair/applications", json={"agency_code": "FJAMR-350100"})
    assert r.status_code == 400
    fields = {e["field"] for e in r.json()["errors"]}
    assert {"document_number", "uscc", "applicant"} <= fields
    r = desk.post("/v1/repair/applications", json=application(violation(), uscc="9135X"))
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "uscc"
    r = desk.post("/v1/repair/applications", data="not json")
    assert r.status_code == 400
    r = desk.post("/v1/repair/applications", json=[1])
    assert r.status_code == 400
    r = desk.post("/v1/repair/applications", json=application(violation(), extra=1))
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "extra"
    r = desk.post("/v1/repair/applications", json=application(violation()))
    assert r.status_code == 404
    r = desk.get(f"/v1/public/entities/{violation()['uscc']}", params={"as_of": "yesterday"})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "as_of"
    r = desk.get("/v1/public/entities/91350100M000100Y44")
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "uscc"
    r = make_session("agency", "FJAMR").post("/v1/repair/applications/RA-x/decision",
                                             json={"decision": "maybe", "reason": "x"})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "decision"


def test_serious_list_then_publicity_repair(repair, listener, config, make_session, db):
    body = listed_food()
    vid = send(config, repair, body)
    desk = make_session("regulator", "credit-desk")
    agency = make_session("agency", "FJAMR")
    code = body["uscc"]

    public = desk.get(f"/v1/public/entities/{code}").json()
    assert [p["document_number"] for p in public["penalties"]] == [body["document_number"]]
    assert [entry["list"] for entry in public["listings"]] == ["serious_violation"]

    r = desk.post("/v1/repair/applications", json=application(body))
    assert r.status_code == 201, r.text
    first = r.json()
    assert first["scope"] == "serious_list" and first["status"] == "pending"
    assert first["filed_by"] == "regulator:credit-desk" and first["overdue"] is False
    today = datetime.now(timezone.utc)
    assert first["due_by"] == CAL.deadline(today, 15).isoformat()
    again = desk.post("/v1/repair/applications", json=application(body))
    assert again.status_code == 409 and again.json()["application_id"] == first["application_id"]

    decide = f"/v1/repair/applications/{first['application_id']}/decision"
    r = make_session("agency", "SXAMR").post(decide, json={"decision": "approved", "reason": "not mine"})
    assert r.status_code == 403
    r = make_session("platform", "mall").post(decide, json={"decision": "approved", "reason": "not mine"})
    assert r.status_code == 403
    r = agency.post(decide, json={"decision": "approved", "reason": "fine paid, harm removed"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "approved"
    assert r.json()["decision"]["decided_by"] == "agency:FJAMR"
    r = agency.post(decide, json={"decision": "rejected", "reason": "second thoughts"})
    assert r.status_code == 409 and "already decided" in r.json()["error"]

    (repaired,) = events("RecordRepaired")
    assert repaired["scope"] == "serious_list" and repaired["violation_id"] == vid
    assert repaired["application_id"] == first["application_id"]
    assert repaired["decided_by"] == "agency:FJAMR"

    public = desk.get(f"/v1/public/entities/{code}").json()
    assert public["listings"] == [] and len(public["penalties"]) == 1

    r = desk.post("/v1/repair/applications", json=application(body))
    assert r.status_code == 201 and r.json()["scope"] == "publicity"
    second = r.json()["application_id"]
    r = make_session("regulator", "samr").post(f"/v1/repair/applications/{second}/decision",
                                               json={"decision": "approved", "reason": "ok"})
    assert r.status_code == 200
    assert [p["scope"] for p in events("RecordRepaired", 2)] == ["serious_list", "publicity"]
    public = desk.get(f"/v1/public/entities/{code}").json()
    assert public["penalties"] == [] and public["listings"] == []
    # Before the repairs the record was public: the record changes with the instant asked.
    past = desk.get(f"/v1/public/entities/{code}", params={"as_of": ago(1)}).json()
    assert len(past["penalties"]) == 1 and len(past["listings"]) == 1

    r = desk.post("/v1/repair/applications", json=application(body))
    assert r.status_code == 422 and r.json()["blocking"][0]["rule"] == "already_repaired"
    outbox = db("repair").outbox
    wait_for(lambda: outbox.count_documents({}) == 0, message="the outbox to drain")


def test_rejection_emits_nothing_and_overdue_cases_are_listed(repair, listener, config,
                                                              make_session):
    body = listed_food()
    send(config, repair, body)
    desk = make_session("regulator", "credit-desk")
    app = desk.post("/v1/repair/applications", json=application(body)).json()
    due = date.fromisoformat(app["due_by"])
    on_due_day = datetime.combine(due, datetime.min.time(), CHINA_TZ) + timedelta(hours=23)
    day_after = datetime.combine(due + timedelta(days=1), datetime.min.time(), CHINA_TZ)

    def overdue(as_of):
        r = desk.get("/v1/repair/applications", params={"overdue": "true",
                                                        "as_of": as_of.isoformat()})
        assert r.status_code == 200, r.text
        return [a["application_id"] for a in r.json()["applications"]]

    assert overdue(on_due_day) == []
    assert overdue(day_after) == [app["application_id"]]
    # An agency sees its own agency's cases; another agency does not.
    mine = make_session("agency", "FJAMR").get("/v1/repair/applications").json()
    assert [a["application_id"] for a in mine["applications"]] == [app["application_id"]]
    theirs = make_session("agency", "SXAMR").get("/v1/repair/applications").json()
    assert theirs["applications"] == []
    assert make_session("agency", "SXAMR").get(
        f"/v1/repair/applications/{app['application_id']}").status_code == 404

    r = make_session("agency", "FJAMR").post(
        f"/v1/repair/applications/{app['application_id']}/decision",
        json={"decision": "rejected", "reason": "harm not removed: complaints continue"})
    assert r.status_code == 200 and r.json()["status"] == "rejected"
    assert overdue(day_after) == []
    assert not [e for e, _ in EVENTS if e["type"] == "RecordRepaired"]
    public = desk.get(f"/v1/public/entities/{body['uscc']}").json()
    assert len(public["listings"]) == 1


def test_eligibility_preview_at_boundary_dates(repair, config, make_session):
    body = listed_food()
    send(config, repair, body)
    desk = make_session("regulator", "credit-desk")
    listed_at = datetime.fromisoformat(body["listing"]["listed_at"])
    from rules.periods import months_after
    earliest = months_after(listed_at, 12)
    params = {k: body[k] for k in ("agency_code", "document_number", "uscc")}

    def check(as_of):
        r = desk.get("/v1/repair/eligibility", params={**params, "as_of": as_of.isoformat()})
        assert r.status_code == 200, r.text
        return r.json()

    before = check(earliest - timedelta(days=1))
    assert before["eligible"] is False and before["blocking"][0]["rule"] == "too_early"
    assert datetime.fromisoformat(before["earliest_at"]) == earliest
    assert check(earliest)["eligible"] is True
    assert check(earliest + timedelta(days=1))["eligible"] is True
    assert desk.get("/v1/repair/eligibility", params={"uscc": body["uscc"]}).status_code == 400


def test_objection_flags_the_record_and_is_decided_once(repair, listener, config, make_session):
    body = listed_food()
    vid = send(config, repair, body)
    platform = make_session("platform", "mall")
    r = platform.post("/v1/objections", json=objection(body))
    assert r.status_code == 201, r.text
    obj = r.json()
    assert obj["status"] == "open" and obj["filed_by"] == "platform:mall"
    assert obj["due_by"] == CAL.deadline(datetime.now(timezone.utc), 10).isoformat()
    (opened,) = events("ObjectionOpened")
    assert opened["violation_id"] == vid and opened["outcome"] is None
    assert platform.post("/v1/objections", json=objection(body)).status_code == 409

    public = platform.get(f"/v1/public/entities/{body['uscc']}").json()
    assert public["penalties"][0]["under_review"] is True
    assert public["listings"][0]["under_review"] is True

    decide = f"/v1/objections/{obj['objection_id']}/decision"
    agency = make_session("agency", "FJAMR")
    r = agency.post(decide, json={"outcome": "revoked", "reason": "overturned"})
    assert r.status_code == 409 and "violation intake" in r.json()["error"]
    r = agency.post(decide, json={"outcome": "corrected", "reason": "amount corrected"})
    assert r.status_code == 409 and "amend" in r.json()["error"]
    r = make_session("agency", "SXAMR").post(decide, json={"outcome": "upheld", "reason": "not mine"})
    assert r.status_code == 403
    r = agency.post(decide, json={"outcome": "upheld", "reason": "facts confirmed on file"})
    assert r.status_code == 200 and r.json()["outcome"] == "upheld"
    assert agency.post(decide, json={"outcome": "upheld", "reason": "again"}).status_code == 409
    decided = events("ObjectionDecided")[0]
    assert decided["outcome"] == "upheld" and decided["objection_id"] == obj["objection_id"]
    public = platform.get(f"/v1/public/entities/{body['uscc']}").json()
    assert public["penalties"][0]["under_review"] is False
    # The platform sees the objection it filed; another platform does not.
    assert platform.get(f"/v1/objections/{obj['objection_id']}").status_code == 200
    assert make_session("platform", "other").get(
        f"/v1/objections/{obj['objection_id']}").status_code == 404


def test_correction_through_intake_then_decided_as_corrected(repair, listener, config,
                                                             make_session):
    body = listed_food()
    send(config, repair, body)
    obj = make_session("regulator", "desk").post("/v1/objections", json=objection(body)).json()
    amended = dict(body, penalties=[{"type": "fine", "amount": "20000.00"}])
    send(config, repair, amended, "ViolationAmended", version=2)
    r = make_session("agency", "FJAMR").post(f"/v1/objections/{obj['objection_id']}/decision",
                                             json={"outcome": "corrected", "reason": "amount"})
    assert r.status_code == 200 and r.json()["outcome"] == "corrected"
    public = make_session("gatekeeper", "bank").get(f"/v1/public/entities/{body['uscc']}").json()
    assert public["penalties"][0]["penalties"] == [{"type": "fine", "amount": "20000.00",
                                                    "months": None}]


def test_revocation_decides_open_objections_and_closes_applications(repair, listener, config,
                                                                    make_session):
    body = listed_food()
    send(config, repair, body)
    desk = make_session("regulator", "desk")
    obj = desk.post("/v1/objections", json=objection(body)).json()
    app = desk.post("/v1/repair/applications", json=application(body)).json()
    send(config, repair, body, "ViolationRevoked", version=2, status="revoked")
    decided = events("ObjectionDecided")[0]
    assert decided["outcome"] == "revoked" and "test reason" in decided["reason"]
    got = desk.get(f"/v1/objections/{obj['objection_id']}").json()
    assert got["status"] == "decided" and got["decided_by"] == "system"
    got = desk.get(f"/v1/repair/applications/{app['application_id']}").json()
    assert got["status"] == "closed"
    public = desk.get(f"/v1/public/entities/{body['uscc']}").json()
    assert public["penalties"] == [] and public["listings"] == []
    assert desk.post("/v1/objections", json=objection(body)).status_code == 409
    # the same revocation again changes nothing
    send(config, repair, body, "ViolationRevoked", version=2, status="revoked")
    assert len(events("ObjectionDecided")) == 1


def test_public_record_windows_and_masking(repair, config, make_session):
    small = violation(category="product_quality", severity="general", listing=None,
                      entity_name="李四 13912345678 个体工商户",
                      penalties=[{"type": "fine", "amount": "3000.00"}],
                      occurred_at=ago(60), decided_at=ago(50))
    send(config, repair, small)
    code = small["uscc"]
    reader = make_session("gatekeeper", "bank")
    from rules.periods import Periods, months_after
    # Order 45 art. 13 from the publication day; not reported: the art. 9 deadline is assumed
    published = Periods.shipped().publication_deadline(datetime.fromisoformat(small["decided_at"]))
    end = months_after(published, 3)

    def penalties(as_of):
        r = reader.get(f"/v1/public/entities/{code}", params={"as_of": as_of.isoformat()})
        assert r.status_code == 200, r.text
        return r.json()["penalties"]

    assert len(penalties(end - timedelta(days=1))) == 1
    assert penalties(end) == []
    assert penalties(end + timedelta(days=1)) == []
    now = reader.get(f"/v1/public/entities/{code}").json()
    assert "13912345678" not in str(now) and "139****5678" in now["penalties"][0]["entity_name"]
    assert datetime.fromisoformat(now["penalties"][0]["published_until"]) == end
    assert datetime.fromisoformat(now["penalties"][0]["published_from"]) == published
    assert now["penalties"][0]["publication_assumed"] is True
    assert penalties(published - timedelta(seconds=1)) == [] and len(penalties(published)) == 1
    unknown = reader.get(f"/v1/public/entities/{violation()['uscc']}").json()
    assert unknown["penalties"] == [] and unknown["listings"] == []


def test_calendar_deadline_endpoint(repair, make_session):
    r = make_session("gatekeeper", "bank").get("/v1/calendar/deadline",
                                               params={"from": "2026-09-30", "working_days": 3})
    assert r.status_code == 200
    assert r.json()["due_by"] == "2026-10-10" and r.json()["covered"] is True
    r = make_session("gatekeeper", "bank").get("/v1/calendar/deadline",
                                               params={"from": "x", "working_days": -1})
    assert r.status_code == 400
    assert {e["field"] for e in r.json()["errors"]} == {"from", "working_days"}


def test_list_filters_are_checked(repair, make_session):
    desk = make_session("regulator", "credit-desk")
    r = desk.get("/v1/repair/applications", params={"status": "lost"})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "status"
    r = desk.get("/v1/objections", params={"colour": "red"})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "colour"
    r = desk.get("/v1/objections", params={"uscc": "123"})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "uscc"
    assert desk.get("/v1/objections", params={"status": "open"}).json()["objections"] == []
