"""Inspection plans (双随机、一公开) against the real store: draw, reproduce, record, publish."""
import random
from datetime import datetime, timedelta, timezone

import pytest

from contracts.violation import ViolationSchema
from services.scoring import facts
from rules.score_model import today
from services.scoring.rescore import Rescorer
from services.scoring.service import MODEL, ScoringService
from tests.contract_check import checked
from tests.factories import make_uscc, violation

pytestmark = pytest.mark.integration


@pytest.fixture
def make_session(make_session):
    """Sessions whose every answer is checked against contracts/http.py."""
    return lambda *args, **kwargs: checked(make_session(*args, **kwargs), "scoring")

RECENT = (datetime.now(timezone.utc) - timedelta(days=5)).isoformat()
OCCURRED = (datetime.now(timezone.utc) - timedelta(days=20)).isoformat()
KINDS = {
    "B": dict(severity="general", category="food_safety", listing=None),
    "C": dict(severity="serious", category="food_safety", listing=None),
    "D": dict(severity="serious", category="food_safety",
              listing={"list": "serious_violation", "listed_at": RECENT}),
}


@pytest.fixture
def scoring(container_factory, config):
    container = container_factory(ScoringService, config)
    container.start()
    return container


@pytest.fixture
def population(scoring, db):
    """Fuzhou enterprises in every class, plus entities the plan must leave out: individual
    businesses in Fuzhou and enterprises in Taiyuan. Facts are stored as the event handlers
    store them; the daily rescore scores them."""
    rng = random.Random(3)
    store = db("scoring")
    docs, classes = [], {}

    def entity(region, cls, kind="1"):
        code = make_uscc(region, rng, kind=kind)
        doc = facts.new_entity(code, name=f"entity {code[-6:]}")
        if cls != "A":
            record = ViolationSchema().load(violation(uscc=code, decided_at=RECENT,
                                                      occurred_at=OCCURRED, **KINDS[cls]))
            facts.apply_violation(doc, f"X/{code}", 1, "active", record)
        docs.append(doc)
        classes[code] = cls

    for cls, count in (("A", 40), ("B", 10), ("C", 6), ("D", 3)):
        for i in range(count):
            entity(rng.choice(["350102", "350103", "350104"]), cls)
    for _ in range(5):
        entity("350102", "D", kind="2")  # individual businesses
        entity("140105", "D")  # another province
    store.records.insert_many(docs)
    Rescorer(store, MODEL, publish=lambda event: None).run(today())
    return classes


def plan_request(**overrides):
    body = {"region": "350100", "industry": "enterprise",
            "period": {"start": (today() - timedelta(days=1)).isoformat(),
                       "end": (today() + timedelta(days=30)).isoformat()},
            "seed": 20261201,
            "roster": [{"id": f"insp-{i}", "name": f"执法人员{i}"} for i in range(5)]}
    body.update(overrides)
    return body


def test_a_plan_samples_each_class_at_its_ratio_and_assigns_two_unconflicted_inspectors(
        population, make_session):
    regulator = make_session("regulator", "fzamr")
    d_firms = sorted(code for code, cls in population.items() if cls == "D" and code[1] == "1"
                     and code[2:4] == "35")
    roster = [{"id": "insp-0", "conflicts": d_firms}, {"id": "insp-1", "conflicts": d_firms[:1]},
              {"id": "insp-2"}, {"id": "insp-3"}]
    response = regulator.post("/v1/inspection-plans", json=plan_request(roster=roster))
    assert response.status_code == 201, response.text
    plan = response.json()
    assert {cls: (c["population"], c["sample"]) for cls, c in plan["classes"].items()} == {
        "A": (40, 2), "B": (10, 2), "C": (6, 4), "D": (3, 3)}
    assert len(plan["targets"]) == 11
    for target in plan["targets"]:
        assert target["uscc"][2:4] == "35" and target["uscc"][:2] == "91"
        assert population[target["uscc"]] == target["risk_class"]
        assert len(set(target["inspectors"])) == 2
        conflicted = {i["id"] for i in roster if target["uscc"] in i.get("conflicts", [])}
        assert not conflicted & set(target["inspectors"])
    assert {t["uscc"] for t in plan["targets"] if t["risk_class"] == "D"} == set(d_firms)

    same = regulator.post("/v1/inspection-plans", json=plan_request(roster=roster))
    assert same.status_code == 200 and same.json() == plan  # the seed reproduces the plan
    assert regulator.get(f"/v1/inspection-plans/{plan['plan_id']}").json() == plan
    other = regulator.post("/v1/inspection-plans", json=plan_request(roster=roster, seed=7))
    assert other.status_code == 201 and other.json()["plan_id"] != plan["plan_id"]
    assert [t["uscc"] for t in other.json()["targets"]] != [t["uscc"] for t in plan["targets"]]


def test_ratios_can_be_set_per_class(population, make_session):
    plan = make_session("regulator", "fzamr").post("/v1/inspection-plans", json=plan_request(
        ratios={"A": 0.5, "B": 0, "C": 1})).json()
    assert [plan["classes"][c]["sample"] for c in "ABCD"] == [20, 0, 6, 3]


def test_bad_plan_requests_are_400_naming_the_problem(population, make_session):
    regulator = make_session("regulator", "fzamr")

    def fields(response):
        assert response.status_code == 400, response.text
        return {e["field"] for e in response.json()["errors"]}

    assert fields(regulator.post("/v1/inspection-plans",
                                 json=plan_request(ratios={"A": 1.2}))) == {"ratios.A"}
    assert fields(regulator.post("/v1/inspection-plans", json=plan_request(roster=[]))) == {"roster"}
    unknown = regulator.post("/v1/inspection-plans", json=plan_request(region="359999"))
    assert fields(unknown) == {"region"} and "unknown region '359999'" in unknown.text
    assert fields(regulator.post("/v1/inspection-plans",
                                 json=plan_request(industry="mining"))) == {"industry"}
    assert "seed" in fields(regulator.post("/v1/inspection-plans",
                                           json={**plan_request(), "seed": None}))
    assert regulator.post("/v1/inspection-plans", data="nope").status_code == 400
    gatekeeper = make_session("gatekeeper", "bank")
    assert gatekeeper.post("/v1/inspection-plans", json=plan_request()).status_code == 403


def test_a_target_no_two_inspectors_may_take_is_named(population, make_session):
    d_firm = sorted(code for code, cls in population.items()
                    if cls == "D" and code[:2] == "91" and code[2:4] == "35")[0]
    roster = [{"id": "insp-0", "conflicts": [d_firm]}, {"id": "insp-1", "conflicts": [d_firm]},
              {"id": "insp-2"}]
    response = make_session("regulator", "fzamr").post("/v1/inspection-plans",
                                                      json=plan_request(roster=roster))
    assert response.status_code == 422
    (error,) = response.json()["errors"]
    assert error["field"] == "roster" and d_firm in error["problem"]
    assert d_firm in response.json()["error"]


def test_results_are_recorded_per_target_and_published_without_class_or_inspectors(
        population, make_session):
    regulator = make_session("regulator", "fzamr")
    plan = regulator.post("/v1/inspection-plans", json=plan_request()).json()
    pid = plan["plan_id"]
    now = datetime.now(timezone.utc)
    first = plan["targets"][0]["uscc"]

    def result(code, **overrides):
        body = {"uscc": code, "outcome": "no_problem_found", "finding": "账证相符，未发现问题",
                "inspected_at": now.isoformat()}
        body.update(overrides)
        return regulator.post(f"/v1/inspection-plans/{pid}/results", json=body)

    assert result(first).status_code == 201
    assert result(first).json()["status"] == "duplicate"
    corrected = result(first, outcome="problems_corrected", finding="标签不规范，已责令整改")
    assert corrected.status_code == 200 and corrected.json()["status"] == "corrected"
    outsider = make_uscc("350102")
    bad = result(outsider)
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "uscc"
    late = result(plan["targets"][1]["uscc"], inspected_at=(now - timedelta(days=40)).isoformat())
    assert late.status_code == 400 and late.json()["errors"][0]["field"] == "inspected_at"
    wrong = result(plan["targets"][1]["uscc"], outcome="fined")
    assert wrong.status_code == 400 and wrong.json()["errors"][0]["field"] == "outcome"

    early = regulator.post(f"/v1/inspection-plans/{pid}/publication")
    assert early.status_code == 409 and "have no result yet" in early.text
    gatekeeper = make_session("gatekeeper", "bank")
    assert gatekeeper.get(f"/v1/inspection-results/{pid}").status_code == 404

    for target in plan["targets"][1:]:
        assert result(target["uscc"]).status_code == 201
    published = regulator.post(f"/v1/inspection-plans/{pid}/publication")
    assert published.status_code == 201, published.text
    assert regulator.post(f"/v1/inspection-plans/{pid}/publication").status_code == 200

    public = gatekeeper.get(f"/v1/inspection-results/{pid}")
    assert public.status_code == 200
    body = public.json()
    assert len(body["results"]) == len(plan["targets"])
    assert {r["uscc"]: r["outcome"] for r in body["results"]}[first] == "problems_corrected"
    assert "class" not in public.text.lower() and "insp-" not in public.text
    for role in ("platform", "agency"):
        assert make_session(role, "x").get(f"/v1/inspection-results/{pid}").status_code == 200
    assert gatekeeper.get(f"/v1/inspection-plans/{pid}").status_code == 403
    assert result(first, finding="changed after publication").status_code == 409
    assert regulator.get(f"/v1/inspection-plans/{pid}").json()["status"] == "published"
