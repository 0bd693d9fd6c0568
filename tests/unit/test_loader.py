"""One loader for every catalog file: each validated, at the version in force, or no start."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rules import loader
from rules.calendar import InvalidCalendar
from rules.jurisdiction import InvalidJurisdictions
from rules.measures import InvalidCatalog
from rules.repair import InvalidRepairRules

ROOT = Path(__file__).resolve().parents[2]
CATALOG = ROOT / "catalog"


def shipped(name: str) -> dict:
    return json.loads((CATALOG / name).read_text(encoding="utf-8"))


def write(tmp_path, name: str, data) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return str(path)


def refused(environ) -> loader.InvalidCatalogFiles:
    with pytest.raises(loader.InvalidCatalogFiles) as info:
        loader.load(environ)
    return info.value


def test_the_shipped_catalog_loads_at_the_versions_in_force():
    catalogs = loader.load({})
    in_force = shipped("versions.json")["files"]
    assert catalogs.versions == in_force
    assert set(in_force) == {p.name for p in CATALOG.glob("*.json")} - {"versions.json"}
    assert catalogs.measures.periods is catalogs.periods is catalogs.score_model.periods \
        is catalogs.repair.periods


def test_every_bad_file_is_named_with_each_of_its_problems(tmp_path):
    agencies = shipped("agencies.json")
    agencies["agencies"][0]["categories"].append("jaywalking")
    agencies["agencies"].append({"code": "bad-code", "name": "", "regions": ["35x"],
                                 "categories": ["food_safety"]})
    repair = shipped("repair.json")
    repair["repair"]["publicity"]["earliest_months"] = 0
    repair["heavier_penalty"]["penalty_types"].append("flogging")
    error = refused({"AGENCIES_PATH": write(tmp_path, "a.json", agencies),
                     "REPAIR_RULES_PATH": write(tmp_path, "r.json", repair)})
    kinds = {type(e) for e in error.exceptions}
    assert kinds == {InvalidJurisdictions, InvalidRepairRules}
    text = "\n".join(error.problems)
    assert "agencies.json: agency SAMR: unknown category 'jaywalking'" in text
    assert "agencies.json: agency bad-code: code must be upper-case" in text
    assert "agency bad-code: no name" in text and "region prefix '35x'" in text
    assert "repair.json: repair.publicity.earliest_months: must be a positive" in text
    assert "repair.json: heavier_penalty.penalty_types: unknown penalty type 'flogging'" in text


def test_a_file_not_at_the_version_in_force_is_refused(tmp_path):
    calendar = {**shipped("calendar.json"), "version": "2099-01-01.1"}
    error = refused({"CALENDAR_PATH": write(tmp_path, "c.json", calendar)})
    assert any("calendar.json: version '2099-01-01.1' is not the version in force" in p
               for p in error.problems)


def test_unreadable_files_are_refused_and_the_others_still_checked(tmp_path):
    broken = tmp_path / "m.json"
    broken.write_text("{not json", encoding="utf-8")
    calendar = shipped("calendar.json")
    calendar["years"]["2026"]["working_weekends"].append("2026-12-02")  # a Wednesday
    error = refused({"CATALOG_PATH": str(broken),
                     "CALENDAR_PATH": write(tmp_path, "c.json", calendar)})
    assert {type(e) for e in error.exceptions} == {InvalidCatalog, InvalidCalendar}
    assert any("cannot read JSON" in p for p in error.problems)
    assert any("2026-12-02 is a Wednesday" in p for p in error.problems)


def test_repair_may_not_wait_longer_than_the_listing_lasts(tmp_path):
    repair = shipped("repair.json")
    repair["repair"]["serious_list"]["earliest_months"] = 36
    error = refused({"REPAIR_RULES_PATH": write(tmp_path, "r.json", repair)})
    assert any("not within the serious violation listing of 36 months" in p
               for p in error.problems)


@pytest.mark.parametrize("service", ["violations", "repair"])
def test_a_service_refuses_to_start_naming_the_file_and_problem(tmp_path, service):
    agencies = shipped("agencies.json")
    agencies["agencies"][0]["regions"] = []
    run = subprocess.run([sys.executable, "-c", f"import services.{service}.service"], cwd=ROOT,
                         env={**os.environ, "AGENCIES_PATH": write(tmp_path, "a.json", agencies)},
                         capture_output=True, text=True, timeout=60)
    assert run.returncode != 0
    assert "InvalidCatalogFiles" in run.stderr and "InvalidJurisdictions" in run.stderr
    assert "agency SAMR: regions must be a non-empty list" in run.stderr


def test_the_cli_shows_the_versions_in_force_and_names_problems(tmp_path, capsys, monkeypatch):
    from shared.cli import main
    assert main(["validate-catalog"]) == 0
    out = capsys.readouterr().out
    assert "measures.json" in out and shipped("measures.json")["version"] in out
    periods = shipped("periods.json")
    periods["listings"]["serious_violation"]["months"] = 0
    monkeypatch.setenv("PERIODS_PATH", write(tmp_path, "p.json", periods))
    assert main(["validate-catalog"]) == 2
    err = capsys.readouterr().err
    assert "periods.json: listings.serious_violation.months: must be a positive" in err
    assert "Traceback" not in err


def test_a_measure_whose_quote_is_not_in_its_article_or_a_class_trigger_stops_every_service(
        tmp_path):
    measures = shipped("measures.json")
    measures["measures"][0]["bases"][0]["quote"] = "拒绝一切行政许可"  # not in Order 44 art. 15
    measures["memoranda"][0]["triggers"].append({
        "id": "T-RD-1", "description": "class D", "when": {"risk_classes": ["D"]},
        "measures": ["SL-PLAT"]})
    error = refused({"CATALOG_PATH": write(tmp_path, "m.json", measures)})
    assert {type(e) for e in error.exceptions} == {InvalidCatalog}
    text = "\n".join(error.problems)
    assert ("measures.json: measure SL-LIC basis 1: quote '拒绝一切行政许可'… is not found "
            "verbatim in samr-order-44-serious-violation-list.2021.md 第十五条") in text
    assert "measures.json: trigger T-RD-1: condition 'risk_classes' refused" in text


def test_a_trigger_on_the_deciding_agency_fires_for_that_agency_only():
    from rules.measures import Catalog
    from contracts.violation import ViolationSchema
    from tests.factories import violation
    data = shipped("measures.json")
    data["memoranda"][0]["triggers"][0]["when"] = {"deciding_agencies": ["SXAMR-140100"]}
    catalog = Catalog.from_data(data)
    fired = lambda agency: "T-SL-1" in catalog.decide(ViolationSchema().load(  # noqa: E731
        violation(agency_code=agency, listing=None))).rules
    assert fired("SXAMR-140100") and not fired("FJAMR-350100")
