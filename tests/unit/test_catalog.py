import copy
import json
from datetime import datetime, timedelta, timezone

import pytest

from contracts.events import SECTORS
from contracts.violation import ViolationSchema
from rules.measures import DEFAULT_PATH, Catalog, InvalidCatalog
from rules.periods import add_months, is_active
from tests.factories import violation

DATA = json.loads(DEFAULT_PATH.read_text(encoding="utf-8"))


def load(**overrides):
    return ViolationSchema().load(violation(**overrides))


def test_default_catalog_is_valid_and_covers_every_sector():
    catalog = Catalog.load()
    assert {m.sector for m in catalog.measures.values()} == set(SECTORS)


def test_listed_serious_violation_restricts_every_sector_with_legal_basis():
    decision = Catalog.load().decide(load())
    sectors = {m["measure"].sector for m in decision.measures}
    assert sectors == set(SECTORS)
    assert all(m["measure"].legal_basis for m in decision.measures)
    assert "T-SV-1" in decision.rules


def test_minor_first_offence_gets_soft_tools_only():
    decision = Catalog.load().decide(load(severity="minor", first_offence=True, listing=None,
                                          penalties=[{"type": "warning"}]))
    assert decision.measures == []
    assert decision.soft_tools == ["reminder", "administrative_guidance", "interview"]
    assert "soft tools only" in decision.reason


def test_minor_but_repeated_and_uncorrected_is_not_softened():
    decision = Catalog.load().decide(load(severity="minor", first_offence=False, corrected=False,
                                          listing=None))
    assert decision.soft_tools == []


def test_same_facts_same_outcome():
    record = load()
    a, b = Catalog.load().decide(record), Catalog.load().decide(record)
    assert [m["measure"].id for m in a.measures] == [m["measure"].id for m in b.measures]
    assert a.rules == b.rules


def test_risk_class_triggers_only_for_that_class():
    record = load(listing=None, category="product_quality")
    catalog = Catalog.load()
    assert "T-RD-1" not in catalog.decide(record, "B").rules
    assert "T-RD-1" in catalog.decide(record, "D").rules


def test_windows_follow_the_rule():
    catalog = Catalog.load()
    record = load()
    fixed = catalog.window(catalog.measures["PB-01"], record)
    assert fixed == (record["decided_at"], add_months(record["decided_at"], 36))
    listed = catalog.window(catalog.measures["PL-01"], record)
    assert listed[0] == record["listing"]["listed_at"]
    assert listed[1] == add_months(record["listing"]["listed_at"], 36)
    assert catalog.window(catalog.measures["PL-03"], record)[1] is None


def test_add_months_clamps_the_day():
    assert add_months(datetime(2026, 1, 31), 1) == datetime(2026, 2, 28)


def test_active_window_boundaries():
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    end = datetime(2027, 1, 1, tzinfo=timezone.utc)
    tick = timedelta(microseconds=1)
    assert not is_active(start, end, None, start - tick)
    assert is_active(start, end, None, start)
    assert is_active(start, end, None, end - tick)
    assert not is_active(start, end, None, end)
    assert is_active(start, None, None, end + timedelta(days=9999))
    assert not is_active(start, end, start + tick, start + tick)


@pytest.mark.parametrize("mutate,problem", [
    (lambda d: d["measures"][0].update(sector="space"), "unknown sector 'space'"),
    (lambda d: d["measures"][0].update(legal_basis=""), "no legal basis"),
    (lambda d: d["memoranda"][0]["triggers"][0]["measures"].append("XX-99"), "unknown measure 'XX-99'"),
    (lambda d: d["memoranda"][0]["triggers"][0].update(when={"categories": ["jaywalking"]}), "can never match"),
    (lambda d: d["memoranda"][0]["triggers"][0].update(when={}), "no conditions"),
    (lambda d: d["memoranda"][0]["triggers"][0].update(when={"colour": ["red"]}), "unknown condition"),
    (lambda d: d["measures"][0].update(duration={"kind": "fixed_months", "months": 0}), "positive whole"),
    (lambda d: d["measures"].append(dict(d["measures"][0])), "duplicate id"),
])
def test_invalid_catalog_is_refused_with_the_problem_named(mutate, problem):
    data = copy.deepcopy(DATA)
    mutate(data)
    with pytest.raises(InvalidCatalog) as info:
        Catalog.from_data(data)
    assert any(problem in p for p in info.value.problems), info.value.problems
