"""The bulk import of 100,000 generated records completes with a correct summary.

Runs against the violations service as a process on the real store; takes several minutes on
FerretDB (about 200 records/s here, see docs/architecture.md on the local store's limits).
"""
import json
import random

import pytest

from shared.importer import run_import
from tests.factories import make_uscc
from tests.system import System

pytestmark = pytest.mark.e2e

N = 100_000


@pytest.fixture(scope="module")
def intake():
    running = System(services=("violations",)).start()
    yield running
    running.stop()


@pytest.mark.timeout(1800)
def test_100k_records_import_with_a_correct_summary(tmp_path, intake):
    rng = random.Random(7)
    path = tmp_path / "history.jsonl"
    bad = 0
    with path.open("w", encoding="utf-8") as out:
        for i in range(N):
            record = {
                "agency_code": "SAMR-110000", "document_number": f"HIST-{i:06d}",
                "uscc": make_uscc(rng.choice(["110000", "350100", "140100"]), rng),
                "entity_name": f"历史主体{i}", "category": rng.choice(
                    ["food_safety", "product_quality", "false_advertising", "price_fraud"]),
                "severity": rng.choice(["minor", "general", "serious"]),
                "penalties": [{"type": "fine", "amount": f"{rng.randint(1, 500) * 100}.00"}],
                "legal_basis": {"law": "Product Quality Law", "article": "49"},
                "occurred_at": "2024-05-01T10:00:00+08:00",
                "decided_at": "2024-06-01T10:00:00+08:00",
            }
            if i % 1000 == 999:
                record["penalties"][0]["amount"] = "-1"
                bad += 1
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            if i % 5000 == 0:  # a re-sent line: a duplicate
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
    summary = run_import(path, intake.url("violations"), batch_size=500, progress=False,
                         credential=intake.key("agency", "SAMR"))
    duplicates = len(range(0, N, 5000))
    assert summary.total == N + duplicates
    assert summary.rejected == bad
    assert summary.duplicates == duplicates
    assert summary.accepted == N - bad
    assert intake.db("violations").violations.count_documents({}) == N - bad
