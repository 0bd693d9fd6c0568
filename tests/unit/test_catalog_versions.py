"""Catalog versions in force over time (rules/versions.py, catalog/versions.json
``measures_versions``) and ``as_of`` gate-keeping answers under the version then in force."""
import copy
import json
from datetime import datetime, timedelta, timezone

import pytest

from rules import loader
from rules.measures import Catalog
from rules.versions import History, InvalidHistory
from services.restrictions import gate

MANIFEST = json.loads((loader.CATALOG_DIR / loader.MANIFEST).read_text(encoding="utf-8"))
HISTORY = loader.load().history
CODE = "91350100M000100Y43"
UTC = timezone.utc
NEW = datetime(2026, 12, 2, tzinfo=timezone(timedelta(hours=8)))  # format 2 effective_from
PERSONS = datetime(2026, 12, 2, 8, tzinfo=timezone(timedelta(hours=8)))  # 2026-12-02.2 (issue 21)


def test_every_version_served_is_kept_with_its_file_approval_and_effective_date():
    ids = [v.version for v in HISTORY.versions]
    assert ids == ["2026-11-01.1", "2026-12-01.1", "2026-12-02.1", Catalog.load().version]
    assert HISTORY.current.file == "catalog/measures.json"
    for version in HISTORY.versions[:-1]:
        assert version.file.startswith("catalog/history/")
    for version in HISTORY.versions:  # 法制审核 pending, explicitly
        assert version.approved_by is None and version.approved_at is None and version.pending
    assert HISTORY.current.effective_from == Catalog.load().effective_from == PERSONS


@pytest.mark.parametrize("instant,version", [
    (datetime(2026, 11, 1, tzinfo=UTC), "2026-11-01.1"),
    (datetime(2026, 12, 1, 15, 59, 59, tzinfo=UTC), "2026-12-01.1"),  # 23:59:59 in China
    (datetime(2026, 12, 1, 16, 0, tzinfo=UTC), "2026-12-02.1"),       # 00:00 on 2 Dec in China
    (datetime(2026, 12, 1, 23, 59, 59, tzinfo=UTC), "2026-12-02.1"),  # 07:59:59 in China
    (datetime(2026, 12, 3, tzinfo=UTC), "2026-12-02.2"),
    (datetime(2026, 12, 1, 20, 0), "2026-12-02.1"),                    # naive: UTC
])
def test_the_version_in_force_at_an_instant(instant, version):
    assert HISTORY.in_force_at(instant).version == version


def restriction(rid, version, starts="2026-06-01", lifted=None, effect="prohibit"):
    at = lambda s: datetime.fromisoformat(s).replace(tzinfo=UTC) if s else None  # noqa: E731
    return {"_id": rid, "uscc": CODE, "sector": "procurement", "measure_id": rid,
            "action": "a", "legal_basis": "b", "department": "d", "memorandum": "m", "rule": "T",
            "effect": effect, "subject": "entity", "bases": [],
            "source": {"agency_code": "SAMR", "document_number": "1"},
            "starts_at": at(starts), "ends_at": at("2029-06-01"), "lifted_at": at(lifted),
            "catalog_version": version}


def test_an_as_of_before_a_new_version_is_answered_under_the_old_one():
    # The migration to format 2 lifted a format-1 prohibition at 2026-12-02T01:00Z and imposed
    # a format-2 consideration for the same record, starting at the decision (June).
    old = restriction("PR-01", "2026-12-01.1", lifted="2026-12-02T01:00:00")
    new = restriction("SL-PROC", "2026-12-02.1", effect="consideration")
    docs = [old, new]
    before = datetime(2026, 12, 1, 15, 59, tzinfo=UTC)  # 23:59 on 1 December in China
    body = gate.answer(CODE, docs, ["procurement"], before, True, history=HISTORY)
    assert [m["measure_id"] for m in body["sectors"]["procurement"]["measures"]] == ["PR-01"]
    assert body["may_pass"] is False
    assert gate.in_force(HISTORY, before)["version"] == "2026-12-01.1"
    after = datetime(2026, 12, 2, 2, 0, tzinfo=UTC)
    body = gate.answer(CODE, docs, ["procurement"], after, True, history=HISTORY)
    assert [m["measure_id"] for m in body["sectors"]["procurement"]["measures"]] == ["SL-PROC"]
    assert body["may_pass"] is True
    assert gate.in_force(HISTORY, after)["version"] == "2026-12-02.2"  # 10:00 in China
    # Before 2026-12-01.1 itself took effect neither was in force; the record has no decision
    # under 2026-11-01.1, so both stand as decided, each naming its version.
    earlier = datetime(2026, 11, 30, tzinfo=UTC)
    assert len(gate.answer(CODE, docs, ["procurement"], earlier, True,
                           history=HISTORY)["sectors"]["procurement"]["measures"]) == 2
    assert gate.in_force(HISTORY, earlier)["version"] == "2026-11-01.1"
    # Without the history (or for documents that name no version): the stored windows alone.
    assert len(gate.answer(CODE, docs, ["procurement"], before, True)["sectors"]
               ["procurement"]["measures"]) == 2
    # A record decided only under the later version (recorded after it took effect): shown,
    # each measure naming the version it was decided under.
    late = {**new, "_id": "SL-PROC-2", "source": {"agency_code": "SAMR", "document_number": "2"}}
    shown = gate.answer(CODE, [old, late], ["procurement"], before, True, history=HISTORY)
    assert sorted((m["measure_id"], m["catalog_version"]) for m in
                  shown["sectors"]["procurement"]["measures"]) == [
        ("PR-01", "2026-12-01.1"), ("SL-PROC", "2026-12-02.1")]
    unnamed = {**new, "catalog_version": None}
    assert gate.answer(CODE, [unnamed], ["procurement"], before, True,
                       history=HISTORY)["sectors"]["procurement"]["measures"]


def test_in_force_names_the_approval_and_the_effective_date():
    named = gate.in_force(HISTORY, datetime(2026, 12, 5, tzinfo=UTC))
    assert named == {"version": "2026-12-02.2", "effective_from": PERSONS, "approved_by": None,
                     "approved_at": None, "reference": None,
                     "approval_pending": HISTORY.current.pending}


def broken(change):
    data = copy.deepcopy(MANIFEST)
    change(data["measures_versions"])
    with pytest.raises(InvalidHistory) as info:
        History.from_manifest(data)
    return info.value.problems


@pytest.mark.parametrize("change,problem", [
    (lambda v: v[2].pop("pending"), "the 法制审核 is pending: say so explicitly"),
    (lambda v: v[2].pop("approved_by"), "approved_by: missing"),
    (lambda v: v[2].pop("effective_from"), "effective_from: missing"),
    (lambda v: v[2].update(approved_by="法制处 王某"), "approved_by and approved_at go together"),
    (lambda v: v[1].update(effective_from=None), "only the first version may be null"),
    (lambda v: v[2].update(effective_from="2026-11-15T00:00:00+08:00"), "must take effect after"),
    (lambda v: v[2].update(effective_from="2026-12-02T00:00:00"), "with an offset"),
    (lambda v: v[1].update(file="catalog/measures.json"), "holds version '2026-12-02.2'"),
    (lambda v: v[1].update(version="2026-11-01.1"), "listed twice"),
    (lambda v: v[0].update(by="me"), "unknown key 'by'"),
])
def test_a_broken_history_is_refused_with_the_problem_named(change, problem):
    problems = broken(change)
    assert any(problem in p for p in problems), problems


def test_the_current_entry_must_agree_with_measures_json():
    catalog = Catalog.load()
    assert HISTORY.check(catalog.version, catalog.legal_review, catalog.effective_from) == []
    assert "not measures.json's" in HISTORY.check(
        catalog.version, catalog.legal_review, NEW + timedelta(days=1))[0]
    review = {**catalog.legal_review, "reviewed_by": "法制处", "reviewed_at": "2026-12-01T10:00:00+08:00"}
    assert "legal_review" in HISTORY.check(catalog.version, review, catalog.effective_from)[0]
    assert "the last entry is" in HISTORY.check("2027-01-01.1", review, NEW)[0]
