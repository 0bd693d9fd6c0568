"""The risk class never reaches gate-keepers and never changes the measures: scoring and
restrictions together on the real broker and store, with an entity in class D. Before catalog
format 2 a class-D memorandum (MOU-RISK-D-2023, T-RD-1) imposed credit and platform measures;
the class sets inspection ratios and frequency only (晋市监发〔2023〕216号 (十九)), so an
entity in class D gets exactly the measures its records give in any class."""
import json
import re

import pytest
from nameko.standalone.events import event_dispatcher
from nameko.testing.services import entrypoint_waiter

from contracts.events import make_event
from contracts.gate import MeasureViewSchema
from contracts.violation import ViolationSchema
from rules.measures import Catalog
from services.restrictions.service import RestrictionsService
from services.scoring.service import ScoringService
from tests.factories import violation
from tests.integration.conftest import wait_for
from tests.system import free_port

pytestmark = pytest.mark.integration


# A class, as a key or in words: "risk_class", "class": "D", "class D", "RISK-D", "(class D)".
CLASS_KEY = re.compile(r'"(risk_?class|class|credit_class|risk)"', re.I)
CLASS_WORDS = re.compile(r"(?i)(risk[\s_-]*class|credit[\s_-]*class|\bclass)\W{0,3}[ABCD]\b|RISK-[ABCD]\b")


def leaks_class(text: str) -> list[str]:
    return CLASS_KEY.findall(text) + [m.group(0) for m in CLASS_WORDS.finditer(text)]


def test_the_leak_detector_catches_what_it_should():
    assert leaks_class('{"risk_class": "D"}') and leaks_class('{"class": "A"}')
    assert leaks_class('"memorandum": "MOU-RISK-D-2023"')
    assert leaks_class("entity in credit risk class D") and leaks_class("class: B")
    assert not leaks_class('{"measure_id": "CR-01", "action": "Tightened loan review; '
                           'listed as key risk client"}')


def scoring_db_class(db, code):
    from services.scoring import scores
    return wait_for(lambda: (scores.current(db("scoring")).find_one({"_id": code}) or {}).get(
        "risk_class"), message="the entity scored")


@pytest.fixture
def services(container_factory, config):
    """Restrictions on the test's web port (the gate-keeping API), scoring on another."""
    scoring = container_factory(ScoringService, {
        **config, "WEB_SERVER_ADDRESS": f"127.0.0.1:{free_port()}"})
    restrictions = container_factory(RestrictionsService, config)
    scoring.start()
    restrictions.start()
    return scoring, restrictions


def test_gatekeeping_answers_never_carry_the_risk_class(services, config, make_session, db):
    scoring, restrictions = services
    body = violation(category="product_quality", severity="serious")  # on the serious list
    record = ViolationSchema().load(body)
    vid = f"{record['agency_code']}/{record['document_number']}"
    event = make_event("ViolationRecorded", {"violation_id": vid, "version": 1, "status": "active",
                                             "record": record}, producer="violations",
                       correlation_id="gate-test", event_id=f"{vid}@v1")
    with entrypoint_waiter(scoring, "on_violation_recorded", timeout=30), \
            entrypoint_waiter(restrictions, "on_violation_recorded", timeout=30):
        event_dispatcher(config)("violations", "ViolationRecorded", event)
    code = body["uscc"]
    regulator = make_session("regulator", "samr")
    scored = scoring_db_class(db, code)
    assert scored == "D"

    # Restrictions hears CreditChanged (class D) and re-decides the entity's records: the
    # measures stay those of the facts (the same as in class A).
    wait_for(lambda: (db("restrictions").entities.find_one({"_id": code}) or {}).get(
        "reconciled_class") == "D", timeout=30, message="restrictions reconciled class D")
    stored = {d["measure_id"] for d in db("restrictions").restrictions.find(
        {"source.violation_id": vid, "lifted_at": None})}
    decided = {m["measure"].id for m in Catalog.load().decide(record, "A").entity_measures}
    assert stored == decided and "PL-02" not in stored and all(
        d["rule"] != "T-RD-1" for d in db("restrictions").restrictions.find({}))

    gatekeeper = make_session("gatekeeper", "bank-1")
    single = gatekeeper.get(f"/v1/entities/{code}/status")
    assert single.status_code == 200
    platforms = single.json()["sectors"]["platforms"]["measures"]
    (plat,) = [m for m in platforms if m["measure_id"] == "SL-PLAT"]  # told as what it is
    assert plat["effect"] == "inform" and plat["bases"] and plat["memorandum"] == "SAMR-ORDER-44"
    declared = set(MeasureViewSchema().fields)
    assert MeasureViewSchema().validate({k: v for k, v in plat.items() if k in declared}) == {}
    batch = gatekeeper.post("/v1/status:batch", json={"codes": [code]})
    changes = gatekeeper.get("/v1/changes")
    replay = gatekeeper.get(f"/v1/answers/{single.json()['answer_id']}")
    for response in (single, batch, changes, replay):
        assert response.status_code == 200, response.text
        assert leaks_class(response.text) == [], (response.request.url, leaks_class(response.text))
    regulator_answer = regulator.get(f"/v1/entities/{code}/status")
    assert leaks_class(regulator_answer.text) == []
    assert json.loads(regulator_answer.text)["sectors"]["platforms"]["may_pass"] is True
