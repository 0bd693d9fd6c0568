from datetime import datetime, timezone

import pytest
from werkzeug.datastructures import MultiDict

from services.restrictions import gate

CODE = "91350100M000100Y43"


def doc(sector="credit", starts="2026-01-01", ends="2027-01-01", lifted=None, rid="r1"):
    at = lambda s: datetime.fromisoformat(s).replace(tzinfo=timezone.utc) if s else None  # noqa: E731
    return {"_id": rid, "uscc": CODE, "sector": sector, "measure_id": "CR-01", "action": "a",
            "legal_basis": "b", "department": "d", "memorandum": "m", "rule": "T",
            "source": {"agency_code": "SAMR", "document_number": "1"},
            "starts_at": at(starts), "ends_at": at(ends), "lifted_at": at(lifted)}


def test_bad_parameters_are_named():
    with pytest.raises(gate.BadQuery) as info:
        gate.parse_query(MultiDict({"sector": "fishing", "as_of": "tomorrow", "x": "1"}))
    fields = {e["field"] for e in info.value.errors}
    assert fields == {"sector", "as_of", "x"}


def test_invalid_code_is_a_bad_query():
    with pytest.raises(gate.BadQuery, match="check character"):
        gate.parse_code("91350100M000100Y44")


@pytest.mark.parametrize("as_of,may_pass", [
    ("2025-12-31T23:59:59+00:00", True),
    ("2026-01-01T00:00:00+00:00", False),
    ("2026-12-31T23:59:59+00:00", False),
    ("2027-01-01T00:00:00+00:00", True),
])
def test_as_of_before_inside_and_after(as_of, may_pass):
    _, when = gate.parse_query(MultiDict({"as_of": as_of}))
    body = gate.answer(CODE, [doc()], ["credit"], when, True)
    assert body["sectors"]["credit"]["may_pass"] is may_pass


def test_early_lift_ends_the_restriction():
    when = datetime(2026, 6, 1, tzinfo=timezone.utc)
    body = gate.answer(CODE, [doc(lifted="2026-05-01")], ["credit"], when, True)
    assert body["sectors"]["credit"]["may_pass"] is True
    assert body["record"] == "no_active_restriction"


def test_unknown_entity_differs_from_clean_record():
    when = datetime(2026, 6, 1, tzinfo=timezone.utc)
    assert gate.answer(CODE, [], ["credit"], when, False)["record"] == "entity_unknown"
    assert gate.answer(CODE, [], ["credit"], when, True)["record"] == "no_active_restriction"


def test_restricted_answer_lists_measure_with_source():
    when = datetime(2026, 6, 1, tzinfo=timezone.utc)
    body = gate.answer(CODE, [doc()], ["credit", "taxes"], when, True)
    assert body["may_pass"] is False and body["record"] == "restricted"
    measure = body["sectors"]["credit"]["measures"][0]
    assert measure["source"] == {"agency_code": "SAMR", "document_number": "1"}
    assert body["sectors"]["taxes"]["may_pass"] is True


@pytest.mark.parametrize("effect,may_pass", [
    ("prohibit", False), ("stricter_review", True), ("consideration", True),
    ("supervision", True), ("inform", True)])
def test_only_a_prohibition_bars(effect, may_pass):
    at = datetime(2026, 6, 1, tzinfo=timezone.utc)
    body = gate.answer(CODE, [{**doc(), "effect": effect, "subject": "entity", "bases": []}],
                       ["credit"], at, True)
    assert body["schema_version"] == 2
    assert body["may_pass"] is may_pass and body["sectors"]["credit"]["may_pass"] is may_pass
    (measure,) = body["sectors"]["credit"]["measures"]
    assert measure["effect"] == effect
    assert body["record"] == ("restricted" if not may_pass else "measures_without_prohibition")
    assert ("none prohibits" in body["sectors"]["credit"]["reason"]) is may_pass


def test_a_restriction_stored_before_format_2_is_told_as_a_prohibition():
    at = datetime(2026, 6, 1, tzinfo=timezone.utc)
    body = gate.answer(CODE, [doc()], ["credit"], at, True)
    (measure,) = body["sectors"]["credit"]["measures"]
    assert (measure["effect"], measure["subject"], measure["bases"]) == ("prohibit", "entity", [])
    assert body["may_pass"] is False
