"""Inspection plans drawn without a store: sample sizes, conflicts, reproducibility."""
import random

import pytest
from marshmallow import ValidationError

from contracts.scoring import DEFAULT_RATIOS, PlanRequestSchema
from rules.inspections import (AssignmentImpossible, Scope, draw_plan, plan_id,
                                          population_digest, prefix_range, region_prefix,
                                          sample_size)
from tests.factories import make_uscc

RNG = random.Random(11)
POPULATION = ([(make_uscc("350102", RNG), "A") for _ in range(200)]
              + [(make_uscc("350103", RNG), "B") for _ in range(60)]
              + [(make_uscc("350104", RNG), "C") for _ in range(25)]
              + [(make_uscc("350105", RNG), "D") for _ in range(7)])
ROSTER = [{"id": f"insp-{i}", "conflicts": []} for i in range(6)]


def test_sample_sizes_follow_the_ratios_rounded_half_up():
    plan = draw_plan(POPULATION, DEFAULT_RATIOS, ROSTER, seed=42)
    assert plan["classes"] == {
        "A": {"population": 200, "ratio": 0.05, "sample": 10},
        "B": {"population": 60, "ratio": 0.2, "sample": 12},
        "C": {"population": 25, "ratio": 0.6, "sample": 15},
        "D": {"population": 7, "ratio": 1.0, "sample": 7}}
    by_class = {}
    for target in plan["targets"]:
        by_class.setdefault(target["risk_class"], []).append(target["uscc"])
    assert {cls: len(codes) for cls, codes in by_class.items()} == {"A": 10, "B": 12, "C": 15, "D": 7}
    assert sorted(by_class["D"]) == sorted(code for code, cls in POPULATION if cls == "D")
    population = dict(POPULATION)
    assert all(population[t["uscc"]] == t["risk_class"] for t in plan["targets"])
    assert sample_size(0.05, 10) == 1 and sample_size(0.05, 9) == 0 and sample_size(0.2, 0) == 0


def test_custom_ratios_and_zero():
    plan = draw_plan(POPULATION, {"A": 0.0, "B": 0.5, "C": 1.0, "D": 1.0}, ROSTER, seed=1)
    assert [plan["classes"][c]["sample"] for c in "ABCD"] == [0, 30, 25, 7]


def test_two_distinct_inspectors_per_target_and_never_a_conflicted_one():
    targets = [code for code, _ in POPULATION]
    rng = random.Random(4)
    roster = [{"id": f"insp-{i}", "conflicts": []} for i in range(6)]
    for code in targets:  # every firm conflicts with up to 4 of the 6 inspectors
        for inspector in rng.sample(roster, rng.randint(0, 4)):
            inspector["conflicts"].append(code)
    plan = draw_plan(POPULATION, {"A": 0.3, "B": 0.5, "C": 1.0, "D": 1.0}, roster, seed=5)
    conflicts = {i["id"]: set(i["conflicts"]) for i in roster}
    for target in plan["targets"]:
        assert len(set(target["inspectors"])) == 2
        assert all(target["uscc"] not in conflicts[i] for i in target["inspectors"])


def test_work_is_spread_over_the_roster():
    plan = draw_plan(POPULATION, DEFAULT_RATIOS, ROSTER, seed=3)
    load = {}
    for target in plan["targets"]:
        for inspector in target["inspectors"]:
            load[inspector] = load.get(inspector, 0) + 1
    assert max(load.values()) - min(load.values()) <= 1  # 44 targets x 2 over 6 inspectors


def test_the_seed_reproduces_the_plan_and_another_seed_draws_another():
    shuffled = POPULATION[:]
    random.Random(99).shuffle(shuffled)  # the order the store returns them in does not matter
    first = draw_plan(POPULATION, DEFAULT_RATIOS, ROSTER, seed=2026)
    again = draw_plan(shuffled, DEFAULT_RATIOS, list(reversed(ROSTER)), seed=2026)
    assert first == again
    other = draw_plan(POPULATION, DEFAULT_RATIOS, ROSTER, seed=2027)
    assert [t["uscc"] for t in other["targets"]] != [t["uscc"] for t in first["targets"]]


def test_an_impossible_assignment_names_the_target():
    d_firm = next(code for code, cls in POPULATION if cls == "D")
    roster = [{"id": "a", "conflicts": [d_firm]}, {"id": "b", "conflicts": [d_firm]},
              {"id": "c", "conflicts": []}]
    with pytest.raises(AssignmentImpossible) as info:
        draw_plan(POPULATION, DEFAULT_RATIOS, roster, seed=1)
    assert info.value.target == d_firm and info.value.eligible == ["c"]
    assert d_firm in str(info.value) and "2 are needed" in str(info.value)


def test_plan_id_is_deterministic_and_depends_on_request_and_population():
    request = {"region": "350100", "seed": 1}
    digest = population_digest(POPULATION)
    assert plan_id(request, digest) == plan_id(dict(request), population_digest(POPULATION[::-1]))
    assert plan_id(request, digest) != plan_id({**request, "seed": 2}, digest)
    assert plan_id(request, digest) != plan_id(request, population_digest(POPULATION[1:]))


def test_regions_cover_their_codes():
    assert region_prefix("350000") == "35" and region_prefix("350100") == "3501"
    assert region_prefix("350102") == "350102"
    low, high = prefix_range("35")
    assert low <= "350102" < high and not low <= "360100" < high
    assert prefix_range("3509") == ("3509", "3510")


def test_scope_knows_regions_and_industries():
    scope = Scope.load()
    assert scope.problems("350100", "enterprise") == []
    problems = scope.problems("999999", "mining")
    assert [p["field"] for p in problems] == ["region", "industry"]
    assert "unknown region '999999'" in problems[0]["problem"]
    assert scope.matches_industry("enterprise", "enterprise")
    assert not scope.matches_industry("enterprise", "individual business")
    assert scope.matches_industry("all", None)


def request(**overrides):
    body = {"region": "350100", "industry": "enterprise",
            "period": {"start": "2026-12-01", "end": "2026-12-31"}, "seed": 7,
            "roster": [{"id": "i1"}, {"id": "i2", "conflicts": [make_uscc()]}]}
    body.update(overrides)
    return body


def errors(body):
    with pytest.raises(ValidationError) as info:
        PlanRequestSchema().load(body)
    return info.value.messages


def test_plan_request_validation_names_the_problem():
    assert PlanRequestSchema().load(request())["ratios"] == {}
    assert "ratios" in errors(request(ratios={"A": 1.5}))
    assert errors(request(ratios={"B": -0.1}))["ratios"]["B"] == ["must be between 0 and 1"]
    assert "must not be empty" in errors(request(roster=[]))["roster"][0]
    assert "at least two" in errors(request(roster=[{"id": "i1"}]))["roster"][0]
    assert "unique" in errors(request(roster=[{"id": "i1"}, {"id": "i1"}]))["roster"][0]
    assert "end" in errors(request(period={"start": "2026-12-31", "end": "2026-12-01"}))["period"]
    assert "seed" in errors(request(seed="abc"))
    assert "region" in errors(request(region="35"))
    assert "conflicts" in str(errors(request(roster=[{"id": "i1", "conflicts": ["nope"]}, {"id": "i2"}])))
