"""Person measures against the real broker and store (issue 21): a violation record naming
persons, the measures imposed on their person ids, a registrar's ``POST /v1/persons:status``,
the registrar-only feed, lifting by revocation and repair, and the entity's gate unchanged."""
import socket
import time
from datetime import datetime, timezone

import pytest
from nameko.events import event_handler
from nameko.standalone.events import event_dispatcher
from nameko.testing.services import entrypoint_waiter

from contracts.events import make_event
from contracts.persons import PersonsStatusAnswerSchema
from contracts.registry import AppointmentsAnswerSchema
from services.registry.service import RegistryService
from shared import identity
from tests.factories import violation
from tests.integration.conftest import wait_for
from tests.integration.test_restrictions import restrictions, send, status  # noqa: F401

pytestmark = pytest.mark.integration

P = "110101198001010010"      # legal representative of A
D = "110101199003030036"      # director of A
Q = "110101198205050057"      # 直接负责的主管人员 of a food operator
OTHER_Q = "110101197006060063"  # another person with Q's name
LISTED = "2026-04-02T00:00:00+08:00"


def person(role, name, number, responsible=False):
    return {"role": role, "name": name, "id_number": number,
            "personal_responsibility": responsible}


def pid(number):
    return identity.person_id(identity.document("resident_id_card", number))


def ask(session, numbers, **extra):
    body = {"persons": [{"id_number": n} for n in numbers],
            "purpose": "设立登记 application 2026-0042", **extra}
    response = session.post("/v1/persons:status", json=body)
    assert response.status_code == 200, response.text
    PersonsStatusAnswerSchema().load(response.json())  # the answer is what the contract says
    assert not [n for n in numbers if n in response.text]  # never the number
    return response.json()


def test_serious_listing_bars_the_legal_representative_elsewhere_for_three_years(
        restrictions, config, make_session, db):
    registrar = make_session("registrar", "fuzhou-registration")
    gatekeeper = make_session("gatekeeper", "bank")
    body = violation(category="false_advertising",
                     penalties=[{"type": "fine", "amount": "80000.00"}],
                     listing={"list": "serious_violation", "listed_at": LISTED},
                     persons=[person("legal_representative", "张伟", P),
                              person("director", "王芳", D, True)])
    plain = violation(category="false_advertising",
                      penalties=[{"type": "fine", "amount": "80000.00"}],
                      listing={"list": "serious_violation", "listed_at": LISTED})
    send(config, restrictions, body)
    send(config, restrictions, plain)

    # the entity's gate does not change because of its persons' measures
    def gate(code):
        answer = status(gatekeeper, code)
        return answer["may_pass"], {s: [m["measure_id"] for m in e["measures"]]
                                    for s, e in answer["sectors"].items()}
    assert gate(body["uscc"]) == gate(plain["uscc"])
    assert gate(body["uscc"])[1]["market_access"] == ["SL-LIC"]

    answer = ask(registrar, [P, D], positions=["legal_representative", "principal", "director"])
    p, d = answer["results"]
    assert p["person_id"] == pid(P) and p["id_masked"] == "1****************0"
    barred = p["positions"]["legal_representative"]
    assert barred["may_take"] is False and p["may_take_all"] is False
    (measure,) = barred["measures"]
    assert measure["measure_id"] == "SL-LR" and measure["role"] == "legal_representative"
    assert measure["cause"]["uscc"] == body["uscc"] and measure["except_at"] == body["uscc"]
    assert measure["bases"][0]["article"] == "第十八条"
    assert datetime.fromisoformat(measure["ends_at"]) == datetime.fromisoformat(
        "2029-04-02T00:00:00+08:00")
    assert p["positions"]["director"]["may_take"] is True  # 第十八条 bars LR and 负责人 only
    assert d["may_take_all"] is True  # a director is not bound by 第十八条

    # at the entity that caused it, the bar on "other enterprises" does not apply
    own = ask(registrar, [P], positions=["legal_representative"])
    assert own["results"][0]["positions"]["legal_representative"]["may_take"] is False
    at_a = registrar.post("/v1/persons:status", json={
        "persons": [{"id_number": P, "for_uscc": body["uscc"]}],
        "positions": ["legal_representative"], "purpose": "变更登记 of A"}).json()
    assert at_a["results"][0]["positions"]["legal_representative"]["may_take"] is True
    # after the rule's end, P may
    later = ask(registrar, [P], as_of="2029-04-02T00:00:00+08:00")
    assert later["results"][0]["may_take_all"] is True
    before_end = ask(registrar, [P], as_of="2029-04-01T23:59:59+08:00")
    assert before_end["results"][0]["positions"]["legal_representative"]["may_take"] is False

    # audited: the registrar reads its own answer back; the store holds no number
    stored = registrar.get(f"/v1/answers/{answer['answer_id']}")
    assert stored.status_code == 200, stored.text
    substance = stored.json()["answer"]
    assert substance["purpose"] == "设立登记 application 2026-0042"
    assert substance["persons"][0]["positions"]["legal_representative"] == {
        "may_take": False, "restriction_ids": [measure["restriction_id"]]}
    assert make_session("registrar", "another-office").get(
        f"/v1/answers/{answer['answer_id']}").status_code == 404
    store = db("restrictions")
    for name in ("audit", "person_restrictions", "person_index", "sources"):
        text = str(list(store[name].find()))
        assert P not in text and D not in text, name

    # registrar-only: gate-keepers may not ask, and the person feed is not /v1/changes
    assert gatekeeper.post("/v1/persons:status", json={"persons": [{"id_number": P}],
                                                      "purpose": "curious"}).status_code == 403
    feed = registrar.get("/v1/persons/changes").json()
    assert {c["measure_id"] for c in feed["changes"]} == {"SL-LR"}
    assert {c["person_id"] for c in feed["changes"]} == {pid(P)}
    changes = gatekeeper.get("/v1/changes", params={"limit": 1000}).json()["changes"]
    assert not [c for c in changes if c["measure_id"] in ("SL-LR", "SL-PR")]
    assert registrar.get("/v1/changes").status_code == 403


def test_food_licence_revocation_bars_the_manager_from_food_roles_only(
        restrictions, config, make_session):
    registrar = make_session("registrar", "food-licensing")
    body = violation(category="food_safety", penalties=[{"type": "licence_revocation"}],
                     listing=None, persons=[person("responsible_manager", "钱琪", Q)])
    send(config, restrictions, body)
    q, other = ask(registrar, [Q, OTHER_Q])["results"]
    positions = q["positions"]
    assert {p for p, e in positions.items() if not e["may_take"]} == {
        "food_licence", "food_management", "food_safety_manager"}
    (measure,) = positions["food_management"]["measures"]
    assert measure["measure_id"] == "FL-RM" and measure["bases"][0]["article"] == "第一百三十五条"
    assert datetime.fromisoformat(measure["ends_at"]) == datetime.fromisoformat(
        "2031-04-01T10:00:00+08:00")  # 5 years from the decision
    assert positions["legal_representative"]["may_take"] is True
    assert other["may_take_all"] is True  # the same name, another document: not barred
    assert measure["under_review"] is False

    # due process: an objection to the record (through the entity) flags the person's bar
    vid = measure["cause"]["violation_id"]
    event = make_event("ObjectionOpened", {
        "objection_id": "obj-1", "uscc": body["uscc"], "violation_id": vid,
        "opened_at": datetime.now(timezone.utc)}, producer="repair", correlation_id="test")
    with entrypoint_waiter(restrictions, "on_objection_opened", timeout=20):
        event_dispatcher(config)("repair", "ObjectionOpened", event)
    reviewed = ask(registrar, [Q], positions=["food_management"])["results"][0]
    entry = reviewed["positions"]["food_management"]
    assert entry["may_take"] is False and entry["measures"][0]["under_review"] is True


def test_revocation_lifts_and_early_removal_keeps_the_listing_bar(
        restrictions, config, make_session):
    registrar = make_session("registrar", "registration")
    listed = violation(listing={"list": "serious_violation", "listed_at": LISTED},
                       persons=[person("legal_representative", "张伟", P)])
    revoked = violation(category="food_safety", penalties=[{"type": "licence_revocation"}],
                        listing=None, persons=[person("responsible_staff", "钱琪", Q)])
    vid = send(config, restrictions, listed)
    send(config, restrictions, revoked)
    assert not ask(registrar, [Q])["results"][0]["may_take_all"]
    send(config, restrictions, revoked, event_type="ViolationRevoked", version=2,
         status="revoked")
    assert ask(registrar, [Q])["results"][0]["may_take_all"] is True
    lifted = [c for c in registrar.get("/v1/persons/changes").json()["changes"]
              if c["change"] == "lifted"]
    assert [c["measure_id"] for c in lifted] == ["FL-RS"]
    assert lifted[0]["lift_reason"].startswith("violation revoked")

    # credit repair: removal from the serious list ends the entity's listing measures, not
    # the person's 3 years (catalog: SL-LR on_early_removal ends false, with its reasoning)
    event = make_event("RecordRepaired", {
        "application_id": "rep-1", "uscc": listed["uscc"], "violation_id": vid,
        "scope": "serious_list", "decided_by": "regulator:samr",
        "decided_at": datetime.now(timezone.utc), "reason": "履行义务，消除影响"},
        producer="repair", correlation_id="test")
    with entrypoint_waiter(restrictions, "on_record_repaired", timeout=20):
        event_dispatcher(config)("repair", "RecordRepaired", event)
    assert not ask(registrar, [P])["results"][0]["positions"]["legal_representative"]["may_take"]
    # publicity repair ends every measure of the record, the person's too
    event = make_event("RecordRepaired", {
        "application_id": "rep-2", "uscc": listed["uscc"], "violation_id": vid,
        "scope": "publicity", "decided_by": "regulator:samr",
        "decided_at": datetime.now(timezone.utc), "reason": "公示期满，信用修复"},
        producer="repair", correlation_id="test")
    with entrypoint_waiter(restrictions, "on_record_repaired", timeout=20):
        event_dispatcher(config)("repair", "RecordRepaired", event)
    assert ask(registrar, [P])["results"][0]["may_take_all"] is True


def test_bad_requests_name_the_field(restrictions, make_session):
    registrar = make_session("registrar", "registration")
    cases = [
        ({"persons": [{"id_number": P}]}, "purpose"),
        ({"persons": [{"id_number": "110101198001010011"}], "purpose": "a check"},
         "persons.0.id_number"),
        ({"persons": [{"id_number": P}] * 1001, "purpose": "a check"}, "persons"),
        ({"persons": [{"id_number": P}], "positions": ["mayor"], "purpose": "a check"},
         "positions.0"),
        ({"persons": [{"id_number": P, "person_id": "x"}], "purpose": "a check"},
         "persons.0.person_id"),
    ]
    for body, field in cases:
        response = registrar.post("/v1/persons:status", json=body)
        assert response.status_code == 400, (field, response.text)
        assert field in [e["field"] for e in response.json()["errors"]], response.text
        assert P not in response.text
    assert registrar.get("/v1/persons/changes", params={"since": "bad"}).status_code == 400
    assert registrar.get("/v1/persons/changes", params={"limit": 0}).status_code == 400


BARRED = []


class AlertListener:
    name = "alert_listener"

    @event_handler("registry", "BarredAppointmentRecorded")
    def barred(self, body):
        BARRED.append(body)


@pytest.fixture
def registry_url(container_factory, config):
    """The registry on a port of its own (the restrictions container holds the test's)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    container = container_factory(RegistryService, {
        **config, "WEB_SERVER_ADDRESS": f"127.0.0.1:{port}"})
    container.start()
    BARRED.clear()
    container_factory(AlertListener, config).start()
    return f"http://127.0.0.1:{port}"


def test_registration_of_a_barred_person_is_recorded_flagged_and_alerts_regulators(
        restrictions, registry_url, config, keys, db):
    import requests
    office = requests.Session()
    office.headers["Authorization"] = f"Bearer {keys('registrar', 'fuzhou-registration')}"
    regulator = requests.Session()
    regulator.headers["Authorization"] = f"Bearer {keys('regulator', 'samr')}"
    listed = violation(listing={"list": "serious_violation", "listed_at": LISTED},
                       persons=[person("legal_representative", "张伟", P)])
    send(config, restrictions, listed)
    wait_for(lambda: db("registry").person_bars.find_one({"person_id": pid(P)}),
             message="the registry heard of the person measure")
    other = violation()["uscc"]
    # P as legal representative of another enterprise B: recorded, flagged, alerted
    answer = office.put(f"{registry_url}/v1/registry/entities/{other}", json={
        "name": "福州另一家有限公司", "legal_representative": {"name": "张伟", "id_number": P},
        "officers": [{"role": "director", "name": "王芳", "id_number": D}],
        "override_reason": "法院判决恢复任职资格 (2026)闽01行终12号"})
    assert answer.status_code == 201, answer.text
    (flagged,) = answer.json()["barred_appointments"]
    assert flagged["role"] == "legal_representative" and flagged["person_id"] == pid(P)
    assert flagged["flags"][0]["measure_id"] == "SL-LR"
    assert "第十八条" in flagged["flags"][0]["legal_basis"]
    assert flagged["flags"][0]["cause_uscc"] == listed["uscc"]
    assert flagged["override_reason"].startswith("法院判决")
    wait_for(lambda: BARRED, message="BarredAppointmentRecorded")
    alert = BARRED[0]["payload"]
    assert alert["uscc"] == other and alert["person_id"] == pid(P)
    assert alert["override_reason"].startswith("法院判决") and P not in str(BARRED)
    # at the entity that caused it, 「其他企业」: no flag
    own = office.put(f"{registry_url}/v1/registry/entities/{listed['uscc']}", json={
        "name": listed["entity_name"], "legal_representative": {"name": "张伟", "id_number": P}})
    assert own.status_code in (200, 201), own.text
    assert own.json()["barred_appointments"] == []

    # the history: a new legal representative ends P's appointment at B, it is not overwritten
    changed = office.put(f"{registry_url}/v1/registry/entities/{other}", json={
        "name": "福州另一家有限公司", "effective_from": "2026-09-01T00:00:00+08:00",
        "legal_representative": {"name": "钱琪", "id_number": Q}})
    assert changed.status_code == 200 and changed.json()["barred_appointments"] == []
    assert regulator.get(f"{registry_url}/v1/registry/entities/{other}/appointments"
                         ).status_code == 400  # names persons: a purpose is required
    history = regulator.get(f"{registry_url}/v1/registry/entities/{other}/appointments",
                            params={"purpose": "review of flagged appointment"})
    assert history.status_code == 200, history.text
    AppointmentsAnswerSchema().load(history.json())
    rows = {(a["role"], a["person_id"]): a for a in history.json()["appointments"]}
    assert datetime.fromisoformat(rows[("legal_representative", pid(P))]["to"]) == \
        datetime.fromisoformat("2026-09-01T00:00:00+08:00")
    assert rows[("legal_representative", pid(P))]["flags"]
    assert rows[("legal_representative", pid(Q))]["to"] is None
    assert rows[("director", pid(D))]["to"] is None  # officers absent: unchanged
    assert P not in history.text
    assert office.get(f"{registry_url}/v1/registry/entities/{other}/appointments",
                      params={"purpose": "a registrar"}).status_code == 403


def _numbers(count):
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    out = []
    for i in range(count):
        body = f"1101011980{1 + i // 28 % 12:02d}{1 + i % 28:02d}{i % 1000:03d}"
        out.append(body + "10X98765432"[sum(int(a) * w for a, w in zip(body, weights)) % 11])
    return out


def test_a_batch_of_1000_persons_is_one_request_and_finds_the_barred_one(
        restrictions, config, make_session):
    registrar = make_session("registrar", "batch-office")
    body = violation(listing={"list": "serious_violation", "listed_at": LISTED},
                     persons=[person("legal_representative", "张伟", P)])
    send(config, restrictions, body)
    numbers = _numbers(999) + [P]
    started = time.monotonic()
    answer = ask(registrar, numbers, positions=["legal_representative"])
    took = time.monotonic() - started
    print(f"persons:status, 1,000 persons: {took * 1000:.0f} ms")
    barred = [r for r in answer["results"] if not r["may_take_all"]]
    assert [r["person_id"] for r in barred] == [pid(P)]
    assert len(answer["results"]) == 1000 and answer["results"][-1]["person_id"] == pid(P)
    assert took < 60
