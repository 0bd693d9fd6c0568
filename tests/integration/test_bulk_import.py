"""Bulk import through the violations service: summary, rejected file, resume."""
import csv
import json

import pytest

from services.violations.service import ViolationsService
from shared.importer import CSV_COLUMNS, run_import
from tests.factories import violation

pytestmark = pytest.mark.integration


@pytest.fixture
def base_url(container_factory, config, keys, monkeypatch):
    monkeypatch.setenv("LIANCHEN_KEY", keys("agency", "FJAMR"))
    container_factory(ViolationsService, config).start()
    return f"http://127.0.0.1:{config['WEB_SERVER_ADDRESS'].split(':')[1]}"


def write_jsonl(path, n, bad_every=10):
    lines, expected_bad = [], 0
    for i in range(n):
        body = violation(document_number=f"IMP-{i}")
        if i % bad_every == 3:
            body["penalties"] = [{"type": "fine", "amount": "-1"}]
            expected_bad += 1
        lines.append(json.dumps(body, ensure_ascii=False))
    lines.append("{not json")
    lines.append(lines[0])  # a duplicate of the first record
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return expected_bad + 1


def test_import_summarises_and_writes_rejections(tmp_path, base_url, db):
    path = tmp_path / "history.jsonl"
    bad = write_jsonl(path, 250)
    summary = run_import(path, base_url, batch_size=50, progress=False)
    assert summary.total == 252
    assert summary.accepted == 250 - (bad - 1)
    assert summary.duplicates == 1 and summary.rejected == bad
    assert db("violations").violations.count_documents({}) == summary.accepted
    rejected = [json.loads(line) for line in open(summary.rejected_file, encoding="utf-8")]
    assert len(rejected) == bad
    assert any(r["errors"][0]["field"] == "penalties.0.amount" for r in rejected)
    assert any(r["errors"][0]["problem"] == "not valid JSON" for r in rejected)


def test_an_interrupted_import_resumes_with_a_correct_summary(tmp_path, base_url, db):
    path = tmp_path / "history.jsonl"
    bad = write_jsonl(path, 300)
    first = run_import(path, base_url, batch_size=50, progress=False, stop_after_batches=2)
    assert first.offset == 100
    summary = run_import(path, base_url, batch_size=50, progress=False)
    assert summary.resumed_from == 100
    assert summary.accepted + summary.duplicates + summary.rejected == 302
    assert summary.accepted == 300 - (bad - 1)
    assert db("violations").violations.count_documents({}) == summary.accepted
    assert not (tmp_path / "history.jsonl.import-state.json").exists()


def test_csv_rows_take_the_same_path(tmp_path, base_url, db):
    path = tmp_path / "history.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for i in range(20):
            v = violation(document_number=f"CSV-{i}")
            writer.writerow({**{k: v.get(k) for k in CSV_COLUMNS if k in v},
                             "penalties": "fine:5000;confiscation:100",
                             "law": v["legal_basis"]["law"], "article": "124",
                             "first_offence": "false", "corrected": "false",
                             "listing": "serious_violation", "listed_at": "2026-04-02T00:00:00+08:00"})
    summary = run_import(path, base_url, batch_size=8, progress=False)
    assert summary.accepted == 20 and summary.rejected == 0
    stored = db("violations").violations.find_one({"_id": "FJAMR-350100/CSV-0"})
    assert [p["type"] for p in stored["record"]["penalties"]] == ["fine", "confiscation"]


def test_import_and_http_store_the_same_record_identically(tmp_path, base_url, db, keys):
    import requests
    body = violation()
    assert requests.post(f"{base_url}/v1/violations", json=body,
                         headers={"Authorization": f"Bearer {keys('agency', 'FJAMR')}"}
                         ).status_code == 201
    via_http = db("violations").violations.find_one({})
    db("violations").violations.delete_many({})
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps(body, ensure_ascii=False) + "\n", encoding="utf-8")
    assert run_import(path, base_url, progress=False).accepted == 1
    via_import = db("violations").violations.find_one({})
    assert via_import["record"] == via_http["record"]
    assert via_import["fingerprint"] == via_http["fingerprint"]


def test_the_rejected_records_file_never_holds_an_identity_number(tmp_path, base_url, db):
    """A refused record with a legal representative's document: the rejected-records file and
    the rejections store keep the mask, the accepted one the person id; never the number."""
    passport, resident = "X1234567", "11010119900307803X"
    bad = violation(document_number="IMP-PII-1", penalties=[{"type": "fine", "amount": "-1"}],
                    legal_representative={"name": "陈大文", "document_type": "passport",
                                          "issuing_country": "USA", "id_number": passport})
    good = violation(document_number="IMP-PII-2",
                     legal_representative={"name": "陈大文", "id_number": resident})
    path = tmp_path / "people.jsonl"
    path.write_text(json.dumps(bad, ensure_ascii=False) + "\n"
                    + json.dumps(good, ensure_ascii=False) + "\n"
                    + '{"not json", "id": "' + resident + '"\n', encoding="utf-8")
    summary = run_import(path, base_url, batch_size=50, progress=False)
    assert summary.accepted == 1 and summary.rejected == 2
    text = open(summary.rejected_file, encoding="utf-8").read()
    assert passport not in text and resident not in text
    assert "X******7" in text and "1****************X" in text
    rejection = db("violations").rejections.find_one({"document_number": "IMP-PII-1"})
    assert passport not in str(rejection) and "X******7" in rejection["raw"]
    stored = db("violations").violations.find_one({"_id": good["agency_code"] + "/IMP-PII-2"})
    rep = stored["record"]["legal_representative"]
    assert rep["person_id"].startswith("p1_") and resident not in str(stored)
    # the number's two legacy hashes, keyed, link records from before issue 19 to the person
    links = list(db("violations").person_links.find({"person_id": rep["person_id"]}))
    assert len(links) == 2 and all(link["_id"].startswith("l1_") for link in links)


def test_csv_carries_record_v2_fields_and_persons(tmp_path, base_url, db):
    """place_code, procedure, published_at, penalty none and persons from CSV cells; a bad
    person is refused naming its field, and no identity number reaches any file or store."""
    first, second = "11010119900307803X", "350102199005053216"
    path = tmp_path / "v2.csv"
    base = violation(document_number="CSV-V2-1")
    rows = [
        {"document_number": "CSV-V2-1", "penalties": "fine:5000", "place_code": "350102",
         "procedure": "summary", "published_at": "2026-04-10T09:00:00+08:00",
         "persons": f"legal_representative:张三:{first};responsible_staff:李四:{second}:::yes"},
        {"document_number": "CSV-V2-2", "penalties": "none", "listing": "",
         "persons": json.dumps([{"role": "director", "name": "王五", "id_number": first}])},
        {"document_number": "CSV-V2-3", "penalties": "fine:5000",
         "persons": f"director:赵六:{second[:17]}0"},  # wrong check character
    ]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({**{k: base.get(k) for k in CSV_COLUMNS if k in base},
                             "law": base["legal_basis"]["law"], "article": "124",
                             "listing": "serious_violation",
                             "listed_at": "2026-04-02T00:00:00+08:00", **row})
    summary = run_import(path, base_url, batch_size=10, progress=False)
    assert summary.accepted == 2 and summary.rejected == 1, summary
    one = db("violations").violations.find_one({"_id": "FJAMR-350100/CSV-V2-1"})["record"]
    assert (one["place_code"], one["procedure"]) == ("350102", "summary")
    assert one["published_at"].startswith("2026-04-10T09:00:00")
    assert [(p["role"], p["personal_responsibility"]) for p in one["persons"]] == [
        ("legal_representative", False), ("responsible_staff", True)]
    two = db("violations").violations.find_one({"_id": "FJAMR-350100/CSV-V2-2"})["record"]
    assert two["penalties"] == [{"type": "none"}] and two["procedure"] == "ordinary"
    assert two["persons"][0]["person_id"] == one["persons"][0]["person_id"]
    assert two["place_code"] == base["uscc"][2:8]
    refused = [json.loads(line) for line in open(summary.rejected_file, encoding="utf-8")]
    assert refused[0]["errors"][0]["field"] == "persons.0.id_number"
    everything = (open(summary.rejected_file, encoding="utf-8").read()
                  + str(list(db("violations").violations.find({})))
                  + str(list(db("violations").rejections.find({}))))
    assert first not in everything and second not in everything and second[:17] not in everything
