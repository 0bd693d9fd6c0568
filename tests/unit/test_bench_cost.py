"""bench/b70_cost.py's workload and floor: the mix it claims, the measures the catalog gives each
kind (what its completeness check and its floor count on), and the floor's arithmetic."""
from __future__ import annotations

import sys
from collections import Counter

from contracts.violation import ViolationSchema
from tests.system import ROOT

sys.path.insert(0, str(ROOT / "bench"))
import b70_cost  # noqa: E402  (bench modules import each other by plain name)


def test_the_mix_is_exact_valid_seeded_and_one_entity_per_violation():
    people = b70_cost.population(200)
    assert Counter(kind for kind, _ in people) == {
        "serious_listed": 80, "especially_serious": 20, "licence_revocation": 20,
        "minor_corrected": 40, "general": 40}
    for _, body in people:
        ViolationSchema().load(body)  # every record is one the intake accepts
    assert len({body["uscc"] for _, body in people}) == 200
    assert [b["uscc"] for _, b in b70_cost.population(200)] == [b["uscc"] for _, b in people]


def test_each_kind_gets_the_measures_the_docs_say():
    by_kind = {kind: body for kind, body in b70_cost.population(100)}
    counts = {kind: (len(m := b70_cost.expected_measures(body, None)),
                     sum(s == "platforms" for s in m.values()))
              for kind, body in by_kind.items()}
    # Catalog format 2: the serious list gives Order 44 art. 15's eight measures (one informs
    # the platforms); a food licence revocation FL-ENT and GP-EXCL; a severity label nothing.
    assert counts == {"serious_listed": (8, 1), "especially_serious": (0, 0),
                      "licence_revocation": (2, 0), "minor_corrected": (0, 0),
                      "general": (0, 0)}
    # the risk class changes nothing (no trigger may name it)
    for kind, body in by_kind.items():
        assert b70_cost.expected_measures(body, "D") == b70_cost.expected_measures(body, None)


def test_the_floor_counts_one_write_per_document_and_serial_time():
    units = {"insert_per_s": 500.0, "publish_confirmed_per_s": 1000.0,
             "cpu_ms_per_store_op": 2.0, "commits_per_store_op": 1.0, "cpu_ms_per_publish": 1.0}
    outcomes = [{"restrictions": 13, "notices": 6}, {"restrictions": 0, "notices": 0}]
    got = b70_cost.floor(outcomes, units)
    assert got["writes"] == (21 + 2) / 2  # violation + score, restrictions, notices
    assert got["published"] == 1.5 and got["delivered"] == 2.5
    assert got["cpu_ms_total"] == 11.5 * 2.0 + 1.5 * 1.0
    assert abs(got["violations_per_s"] - 1 / (11.5 / 500 + 1.5 / 1000)) < 1e-9
