"""``/v1/about`` and ``lianchen_build_info``: the code and data versions answers come from."""
import json
from pathlib import Path

from shared.about import about, build_info_labels

CATALOG = Path(__file__).resolve().parents[2] / "catalog"


def test_about_names_every_catalog_file_in_force():
    document = about("restrictions")
    versions = json.loads((CATALOG / "versions.json").read_text(encoding="utf-8"))["files"]
    assert document["data"] == dict(sorted(versions.items()))
    assert document["catalog"] == versions["measures.json"]
    assert document["score_model"] == versions["score_model.json"]
    assert document["calendar"]["version"] == versions["calendar.json"]
    assert document["code"]["version"]


def test_a_year_made_provisional_is_reported(tmp_path):
    data = json.loads((CATALOG / "calendar.json").read_text(encoding="utf-8"))
    official = [y for y, spec in data["years"].items() if spec["status"] == "official"]
    before = about("scoring")["calendar"]
    assert int(official[-1]) in before["official_years"]
    assert int(official[-1]) not in before["provisional_years"]
    data["years"][official[-1]]["status"] = "provisional"
    flipped = tmp_path / "calendar.json"
    flipped.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    after = about("scoring", {"CALENDAR_PATH": str(flipped)})["calendar"]
    assert int(official[-1]) in after["provisional_years"]
    assert int(official[-1]) not in after["official_years"]
    labels = build_info_labels(about("scoring", {"CALENDAR_PATH": str(flipped)}))
    assert str(official[-1]) in labels["provisional_years"].split(",")
