"""Gate-keeping answers name no trigger or memorandum that fires on the risk class."""
from datetime import datetime, timezone

from services.restrictions import gate
from rules.measures import Catalog


def test_the_class_based_rules_of_the_catalog_are_withheld_from_answers():
    rules = gate.class_based_rules(Catalog.load())
    assert rules == frozenset({"T-RD-1"})
    doc = {"_id": "X/1#PL-02", "uscc": "x", "sector": "platforms", "measure_id": "PL-02",
           "action": "Restrict onboarding", "legal_basis": "E-Commerce Law art. 29",
           "department": "Online platforms", "memorandum": "MOU-RISK-D-2023", "rule": "T-RD-1",
           "source": {"agency_code": "FJAMR", "document_number": "1"},
           "starts_at": datetime(2026, 1, 1, tzinfo=timezone.utc), "ends_at": None, "lifted_at": None}
    at = datetime(2026, 2, 1, tzinfo=timezone.utc)
    (measure,) = gate.answer("x", [doc], ["platforms"], at, True, withheld=rules)["sectors"]["platforms"]["measures"]
    assert (measure["memorandum"], measure["rule"]) == (None, None)
    assert measure["legal_basis"] == "E-Commerce Law art. 29"
    other = {**doc, "memorandum": "MOU-SERIOUS-2018", "rule": "T-SV-1"}
    (shown,) = gate.answer("x", [other], ["platforms"], at, True, withheld=rules)["sectors"]["platforms"]["measures"]
    assert (shown["memorandum"], shown["rule"]) == ("MOU-SERIOUS-2018", "T-SV-1")
