"""The risk class is not public, and since catalog format 2 it triggers nothing: the loader
refuses a trigger on it, so no gate-keeping answer can name one. The withholding in
``gate.answer`` stays as a second line (a rule id passed as withheld is never told)."""
import copy
import json
from datetime import datetime, timezone

import pytest

from rules.measures import DEFAULT_PATH, Catalog, InvalidCatalog
from services.restrictions import gate


def test_the_shipped_catalog_has_no_class_based_rule():
    assert gate.class_based_rules(Catalog.load()) == frozenset()


def test_a_catalog_with_a_class_trigger_is_refused():
    data = json.loads(DEFAULT_PATH.read_text(encoding="utf-8"))
    data = copy.deepcopy(data)
    data["memoranda"][0]["triggers"].append({"id": "T-RD-1", "description": "class D",
                                             "when": {"risk_classes": ["D"]},
                                             "measures": ["SL-PLAT"]})
    with pytest.raises(InvalidCatalog) as info:
        Catalog.from_data(data)
    assert any("T-RD-1" in p and "risk class" in p for p in info.value.problems)


def test_withheld_rules_are_not_named_in_answers():
    doc = {"_id": "X/1#SL-PLAT", "uscc": "x", "sector": "platforms", "measure_id": "SL-PLAT",
           "action": "Told", "effect": "inform", "subject": "entity", "bases": [],
           "legal_basis": "Order 44 art. 14",
           "department": "Online platforms", "memorandum": "M-HIDDEN", "rule": "T-HIDDEN",
           "source": {"agency_code": "FJAMR", "document_number": "1"},
           "starts_at": datetime(2026, 1, 1, tzinfo=timezone.utc), "ends_at": None, "lifted_at": None}
    at = datetime(2026, 2, 1, tzinfo=timezone.utc)
    withheld = frozenset({"T-HIDDEN"})
    (measure,) = gate.answer("x", [doc], ["platforms"], at, True, withheld=withheld)["sectors"]["platforms"]["measures"]
    assert (measure["memorandum"], measure["rule"]) == (None, None)
    other = {**doc, "memorandum": "SAMR-ORDER-44", "rule": "T-SL-1"}
    (shown,) = gate.answer("x", [other], ["platforms"], at, True, withheld=withheld)["sectors"]["platforms"]["measures"]
    assert (shown["memorandum"], shown["rule"]) == ("SAMR-ORDER-44", "T-SL-1")
