"""The legal test book (``book.json``, written by hand) against the catalog's decision.

Each case: facts in, the complete set of measures with effect, subject, sector and window out,
each citing the article. The book must hold a positive and a negative case for every measure
and every trigger of the catalog in force, so a measure or trigger added without a case fails
here. The property at the end: the credit risk class never changes what is decided.
"""
import json
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.violation import ViolationSchema
from rules.measures import Catalog
from rules.vocabulary import CATEGORIES, RISK_CLASSES, SEVERITIES
from tests.factories import violation

BOOK = json.loads((Path(__file__).parent / "book.json").read_text(encoding="utf-8"))
CASES = BOOK["cases"]
CATALOG = Catalog.load()


def record(facts: dict) -> dict:
    return ViolationSchema().load(violation(**facts))


def instant(value):
    return None if value is None else datetime.fromisoformat(value)


def decided(case):
    decision = CATALOG.decide(record(case["facts"]))
    return decision, {m["measure"].id: m for m in decision.measures}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["id"])
def test_case(case):
    assert case["cites"].strip(), "every case cites the article it relies on"
    decision, got = decided(case)
    assert sorted(got) == sorted(case["measures"]), case["id"]
    assert sorted(decision.rules) == sorted(case["rules"])
    assert decision.soft_tools == case.get("soft_tools", [])
    for mid, want in case["measures"].items():
        measure = got[mid]["measure"]
        assert (measure.effect, measure.subject, measure.sector) == (
            want["effect"], want["subject"], want["sector"]), mid
        assert got[mid]["starts_at"] == instant(want["starts_at"]), mid
        assert got[mid]["ends_at"] == instant(want["ends_at"]), mid
        # A person measure binds the persons of the record in its role (and, where the basis
        # requires it, with personal responsibility); the book names them.
        bound = sorted(p["name"] for p in got[mid]["persons"])
        assert bound == sorted(want.get("persons", [])), mid


def test_every_measure_has_a_positive_and_a_negative_case():
    positive = {mid for case in CASES for mid in case["measures"]}
    negative = {mid for case in CASES for mid in CATALOG.measures if mid not in case["measures"]}
    assert set(CATALOG.measures) - positive == set(), "measures without a positive case"
    assert set(CATALOG.measures) - negative == set(), "measures without a negative case"


def test_every_trigger_has_a_positive_and_a_negative_case():
    ids = {t.id for t in CATALOG.triggers} | {CATALOG.proportionality["rule"]}
    positive = {rule for case in CASES for rule in case["rules"]}
    negative = {rule for case in CASES for rule in ids if rule not in case["rules"]}
    assert ids - positive == set(), "triggers without a positive case"
    assert ids - negative == set(), "triggers without a negative case"


def test_every_person_measure_binds_someone_in_the_book():
    binding = {mid for case in CASES for mid, want in case["measures"].items()
               if want.get("persons")}
    persons = {mid for mid, m in CATALOG.measures.items() if m.binds_persons}
    assert persons - binding == set(), "person measures no case shows binding a person"


def test_the_book_is_not_the_catalog():
    # Hand-written: it names effects and windows itself, it does not copy measures.json.
    assert all("action" not in want for case in CASES for want in case["measures"].values())


PENALTY = st.one_of(
    st.builds(lambda a: {"type": "fine", "amount": f"{a}.00"}, st.integers(0, 5_000_000)),
    st.builds(lambda a: {"type": "confiscation", "amount": f"{a}.00"}, st.integers(0, 100_000)),
    st.sampled_from([{"type": "warning"}, {"type": "public_criticism"},
                     {"type": "licence_revocation"}, {"type": "licence_downgrade"},
                     {"type": "detention_referral"}]),
    st.builds(lambda m: {"type": "suspension", "months": m}, st.integers(1, 24)),
    st.builds(lambda m: {"type": "occupational_ban", "months": m}, st.integers(1, 120)),
)
LISTING = st.sampled_from([None,
                           {"list": "serious_violation", "listed_at": "2026-04-02T00:00:00+08:00"},
                           {"list": "abnormal_operations", "listed_at": "2026-04-02T00:00:00+08:00"}])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(category=st.sampled_from(CATEGORIES), severity=st.sampled_from(SEVERITIES),
       penalties=st.lists(PENALTY, min_size=1, max_size=4), listing=LISTING,
       first_offence=st.booleans(), corrected=st.booleans(),
       classes=st.lists(st.sampled_from((None,) + RISK_CLASSES), min_size=2, max_size=5))
def test_the_risk_class_never_changes_the_measures(category, severity, penalties, listing,
                                                   first_offence, corrected, classes):
    facts = record({"category": category, "severity": severity, "penalties": penalties,
                    "listing": listing, "first_offence": first_offence, "corrected": corrected})
    outcomes = set()
    for risk_class in classes:
        decision = CATALOG.decide(facts, risk_class)
        outcomes.add((tuple((m["measure"].id, m["starts_at"], m["ends_at"])
                            for m in decision.measures), tuple(decision.soft_tools),
                      tuple(decision.rules)))
    assert len(outcomes) == 1
