"""Scoring against the real broker and store: score and class follow the facts, CreditChanged
once per change, the daily rescore, positive records, and who may see the class."""
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from nameko.events import event_handler
from nameko.standalone.events import event_dispatcher
from nameko.testing.services import entrypoint_hook, entrypoint_waiter

from contracts.violation import ViolationSchema
from services.scoring import scores
from rules.score_model import today
from services.scoring.rescore import Rescorer
from services.scoring.service import MODEL, ScoringService
from tests.contract_check import checked
from tests.factories import make_uscc, violation
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def make_session(make_session):
    """Sessions whose every answer is checked against contracts/http.py."""
    return lambda *args, **kwargs: checked(make_session(*args, **kwargs), "scoring")

CHANGES = []


class Listener:
    name = "credit_listener"

    @event_handler("scoring", "CreditChanged")
    def credit_changed(self, body):
        CHANGES.append(body)


@pytest.fixture
def scoring(container_factory, config):
    CHANGES.clear()
    container = container_factory(ScoringService, config)
    container.start()
    return container


@pytest.fixture
def listener(container_factory, config):
    container = container_factory(Listener, config)
    container.start()
    return container


def send(config, container, source, event_type, payload, method, event_id=None):
    from contracts.events import make_event
    event = make_event(event_type, payload, producer=source, correlation_id="test",
                       event_id=event_id)
    with entrypoint_waiter(container, method, timeout=20):
        event_dispatcher(config)(source, event_type, event)
    return event


def send_violation(config, container, body, event_type="ViolationRecorded", version=1,
                   status="active"):
    record = ViolationSchema().load(body)
    vid = f"{record['agency_code']}/{record['document_number']}"
    method = {"ViolationRecorded": "on_violation_recorded", "ViolationAmended": "on_violation_amended",
              "ViolationRevoked": "on_violation_revoked"}[event_type]
    send(config, container, "violations", event_type,
         {"violation_id": vid, "version": version, "status": status, "record": record,
          "reason": "test"}, method, event_id=f"{vid}@v{version}")
    return vid


def changes_for(code):
    return [c["payload"] for c in CHANGES if c["payload"]["uscc"] == code]


def settle(code, count):
    """Wait until ``count`` CreditChanged events for ``code`` arrived."""
    return wait_for(lambda: len(changes_for(code)) >= count and changes_for(code),
                    message=f"{count} CreditChanged for {code}")


def adds_up(view) -> bool:
    return Decimal(str(view["base"])) + sum(
        (Decimal(str(c["points"])) for c in view["explanation"]), Decimal(0)) == Decimal(str(view["score"]))


def regulator_view(session, code):
    response = session.get(f"/v1/scores/{code}")
    assert response.status_code == 200, response.text
    return response.json()


def test_score_and_class_follow_recorded_amended_repaired_and_revoked(
        scoring, listener, config, make_session):
    regulator = make_session("regulator", "samr")
    body = violation(category="food_safety", severity="serious",
                     decided_at=(datetime.now(timezone.utc) - timedelta(days=30)).isoformat(),
                     occurred_at=(datetime.now(timezone.utc) - timedelta(days=40)).isoformat(),
                     listing={"list": "serious_violation",
                              "listed_at": (datetime.now(timezone.utc) - timedelta(days=29)).isoformat()})
    code = body["uscc"]
    vid = send_violation(config, scoring, body)
    (first,) = settle(code, 1)
    assert first["old_class"] is None and first["new_class"] == "D"
    view = regulator_view(regulator, code)
    assert view["risk_class"] == "D" and "serious violation list" in view["class_reason"]
    assert adds_up(view) and view["explanation"][0]["violation_id"] == vid

    amended = dict(body, severity="general", listing=None)
    send_violation(config, scoring, amended, "ViolationAmended", version=2)
    second = settle(code, 2)[1]
    assert (second["old_class"], second["new_class"]) == ("D", "B")
    view = regulator_view(regulator, code)
    assert view["risk_class"] == "B" and 75 <= view["score"] < 90 and adds_up(view)

    send_violation(config, scoring, amended, "ViolationAmended", version=2)  # redelivered
    send_violation(config, scoring, body, "ViolationRecorded", version=1)  # stale
    send(config, scoring, "repair", "RecordRepaired", {
        "application_id": "app-1", "uscc": code, "violation_id": vid, "scope": "publicity",
        "decided_by": "FJAMR", "decided_at": datetime.now(timezone.utc) - timedelta(hours=1),
        "reason": "penalty performed"}, "on_record_repaired", event_id="repair:app-1")
    third = settle(code, 3)[2]
    assert (third["old_class"], third["new_class"], third["new_score"]) == ("B", "A", 100.0)
    view = regulator_view(regulator, code)
    (contribution,) = view["explanation"]
    assert contribution["state"] == "repaired" and contribution["points"] == 0
    assert adds_up(view)

    send_violation(config, scoring, amended, "ViolationRevoked", version=3, status="revoked")
    view = regulator_view(regulator, code)
    assert view["explanation"] == [] and view["score"] == 100
    assert len(changes_for(code)) == 3  # redelivery, stale version, no-move: no event


def test_a_redelivered_repair_changes_nothing(scoring, listener, config, db):
    body = violation(listing=None, severity="serious")
    code = body["uscc"]
    vid = send_violation(config, scoring, body)
    settle(code, 1)
    repair = {"application_id": "app-9", "uscc": code, "violation_id": vid, "scope": "publicity",
              "decided_by": "FJAMR", "decided_at": datetime.now(timezone.utc), "reason": "ok"}
    send(config, scoring, "repair", "RecordRepaired", repair, "on_record_repaired")
    settle(code, 2)
    before = db("scoring").records.find_one({"_id": code})
    send(config, scoring, "repair", "RecordRepaired", repair, "on_record_repaired")
    after = db("scoring").records.find_one({"_id": code})
    assert before == after and len(after["repairs"]) == 1
    assert len(changes_for(code)) == 2


def test_a_registered_entity_is_known_at_the_base_score_without_an_event(
        scoring, listener, config, make_session):
    code = make_uscc("350102")
    send(config, scoring, "registry", "EntityRegistered", {
        "uscc": code, "name": "福州鼓楼示例商行", "provisional": False, "region_code": "350102",
        "entity_type": "enterprise"}, "on_entity_registered")
    view = regulator_view(make_session("regulator", "samr"), code)
    assert view["known"] is True and view["name"] == "福州鼓楼示例商行"
    assert (view["score"], view["risk_class"]) == (100, "A")
    unknown = regulator_view(make_session("regulator", "samr"), make_uscc())
    assert unknown["known"] is False
    assert changes_for(code) == []


def test_the_class_is_for_regulators_only(scoring, listener, config, make_session):
    body = violation(severity="serious", category="food_safety")
    code = body["uscc"]
    send_violation(config, scoring, body)
    settle(code, 1)
    for role in ("gatekeeper", "platform", "agency"):
        assert make_session(role, "x").get(f"/v1/scores/{code}").status_code == 403
        public = make_session(role, "x").get(f"/v1/scores/{code}/public")
        assert public.status_code == 200
        text = public.text
        assert "risk_class" not in text and "class" not in text.lower()
        assert "score" not in public.json() and "points" not in text
        (record,) = public.json()["records"]
        assert record["document_number"] == body["document_number"]
    assert make_session(None).get(f"/v1/scores/{code}/public").status_code == 401
    assert regulator_view(make_session("regulator", "x"), code)["risk_class"] == "D"


def test_a_repaired_record_is_no_longer_in_the_public_view(scoring, listener, config, make_session):
    body = violation(listing=None, severity="serious")
    code = body["uscc"]
    vid = send_violation(config, scoring, body)
    settle(code, 1)
    public = make_session("gatekeeper", "bank")
    assert len(public.get(f"/v1/scores/{code}/public").json()["records"]) == 1
    send(config, scoring, "repair", "RecordRepaired", {
        "application_id": "app-2", "uscc": code, "violation_id": vid, "scope": "publicity",
        "decided_by": "FJAMR", "decided_at": datetime.now(timezone.utc), "reason": "ok"},
         "on_record_repaired")
    assert public.get(f"/v1/scores/{code}/public").json()["records"] == []


def test_positive_records_add_credit_once_per_key(scoring, listener, config, make_session):
    agency = make_session("agency", "FJAMR")
    code = make_uscc("350100")
    body = {"key": "honour-2026-001", "uscc": code, "kind": "honour", "title": "守合同重信用企业",
            "awarded_at": (datetime.now(timezone.utc) - timedelta(days=3)).isoformat()}
    first = agency.post("/v1/positive-records", json=body)
    assert first.status_code == 201, first.text
    assert first.json()["record_id"] == "FJAMR/honour-2026-001"
    again = agency.post("/v1/positive-records", json=body)
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    conflict = agency.post("/v1/positive-records", json={**body, "title": "另一项荣誉"})
    assert conflict.status_code == 409
    view = regulator_view(make_session("regulator", "samr"), code)
    assert view["score"] == 103 and [c["kind"] for c in view["explanation"]] == ["positive"]
    assert adds_up(view)
    assert len(settle(code, 1)) == 1  # None -> 103 once; the duplicate changed nothing


def test_positive_record_bad_input_is_400_naming_the_field(scoring, make_session):
    agency = make_session("agency", "FJAMR")
    good = {"key": "k1", "uscc": make_uscc("350100"), "kind": "honour", "title": "award",
            "awarded_at": "2026-01-01T00:00:00+08:00"}

    def fields_of(response):
        assert response.status_code == 400, response.text
        return {e["field"] for e in response.json()["errors"]}

    assert fields_of(agency.post("/v1/positive-records", json={**good, "kind": "bribe"})) == {"kind"}
    assert "uscc" in fields_of(agency.post("/v1/positive-records", json={**good, "uscc": "123"}))
    assert "awarded_at" in fields_of(agency.post("/v1/positive-records", json={
        **good, "awarded_at": "2999-01-01T00:00:00+08:00"}))
    outside = agency.post("/v1/positive-records", json={**good, "uscc": make_uscc("140100")})
    assert fields_of(outside) == {"uscc"} and "jurisdiction" in outside.text
    assert "points" in fields_of(agency.post("/v1/positive-records", json={**good, "points": 50}))
    assert make_session("gatekeeper", "g").post("/v1/positive-records", json=good).status_code == 403
    assert agency.post("/v1/positive-records", data="{oops").status_code == 400


def test_daily_rescore_writes_a_new_generation_and_announces_what_moved(
        scoring, listener, config, db, make_session):
    recent = violation(listing=None, severity="general", category="product_quality",
                       penalties=[{"type": "fine", "amount": "20000"}],
                       decided_at=(datetime.now(timezone.utc) - timedelta(days=2)).isoformat(),
                       occurred_at=(datetime.now(timezone.utc) - timedelta(days=9)).isoformat())
    send_violation(config, scoring, recent)
    clean = make_uscc("350100")
    send(config, scoring, "registry", "EntityRegistered", {
        "uscc": clean, "name": "clean", "provisional": False, "region_code": "350100",
        "entity_type": "enterprise"}, "on_entity_registered")
    settle(recent["uscc"], 1)
    store = db("scoring")

    # Today's run: the event-driven path already scored today, so nothing moves.
    with entrypoint_hook(scoring, "rescore_daily") as rescore_daily:
        result = rescore_daily()
    assert result["status"] == "done" and result["entities"] == 2 and result["changed"] == 0
    with entrypoint_hook(scoring, "rescore_daily") as rescore_daily:
        assert rescore_daily()["status"] == "done already"
    generation = scores.current_name(store)
    assert generation.startswith("scores_")

    # A year later the fine has faded by a third: one event, for the entity that moved.
    dispatch = event_dispatcher(config)
    later = today() + timedelta(days=365)
    result = Rescorer(store, MODEL, lambda e: dispatch("scoring", e["type"], e)).run(later)
    assert (result["entities"], result["changed"], result["published"]) == (2, 1, 1)
    moved = settle(recent["uscc"], 2)[1]
    assert moved["old_score"] == 92.0 and 94 < moved["new_score"] < 96
    assert scores.current_name(store) != generation
    assert set(store.list_collection_names()) >= {scores.current_name(store), generation}
    view = regulator_view(make_session("regulator", "samr"), recent["uscc"])
    assert view["day"] == later.isoformat() and view["score"] == moved["new_score"]
    assert adds_up(view)
    assert changes_for(clean) == []
    again = Rescorer(store, MODEL, lambda e: dispatch("scoring", e["type"], e)).run(later)
    assert again["status"] == "done already"


def test_a_rescore_interrupted_after_the_switch_publishes_on_the_next_run(
        scoring, listener, config, db):
    body = violation(listing=None, severity="general",
                     decided_at=(datetime.now(timezone.utc) - timedelta(days=2)).isoformat(),
                     occurred_at=(datetime.now(timezone.utc) - timedelta(days=9)).isoformat())
    send_violation(config, scoring, body)
    settle(body["uscc"], 1)
    store = db("scoring")
    day = today() + timedelta(days=100)

    def crash(event):
        raise ConnectionError("broker gone")

    with pytest.raises(ConnectionError):
        Rescorer(store, MODEL, crash).run(day)
    run = store.rescore_runs.find_one({"_id": f"{day.isoformat()}:{MODEL.version}"})
    assert run["status"] == "switched" and store[run["events"]].count_documents({}) == 1
    dispatch = event_dispatcher(config)
    resumed = Rescorer(store, MODEL, lambda e: dispatch("scoring", e["type"], e)).run(day)
    assert resumed["resumed"] is True and resumed["published"] == 1
    assert len(settle(body["uscc"], 2)) == 2
    assert run["events"] not in store.list_collection_names()


def test_a_run_in_progress_is_left_alone_and_a_dead_one_taken_over(scoring, db):
    store = db("scoring")
    day = today() + timedelta(days=3)
    run_id = f"{day.isoformat()}:{MODEL.version}"
    now = datetime.now(timezone.utc)
    store.rescore_runs.insert_one({"_id": run_id, "status": "building", "started_at": now,
                                   "heartbeat_at": now, "target": "scores_x", "events": "credit_events_x"})
    assert Rescorer(store, MODEL, lambda e: None).run(day)["status"] == "running elsewhere"
    store.rescore_runs.update_one({"_id": run_id}, {"$set": {
        "heartbeat_at": now - timedelta(minutes=30)}})
    store["scores_x"].insert_one({"_id": "half-built"})
    result = Rescorer(store, MODEL, lambda e: None).run(day)
    assert result["status"] == "done"
    assert "scores_x" not in store.list_collection_names()
    assert store.rescore_runs.find_one({"_id": run_id})["status"] == "done"
