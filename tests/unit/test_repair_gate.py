"""Gate-keeping answers flag measures whose record is under an open objection."""
from datetime import datetime, timezone

from services.restrictions import gate
from services.restrictions.projection import StatusProjection

AS_OF = datetime(2026, 11, 28, tzinfo=timezone.utc)


def doc(rid, sector, agency="FJAMR-350100", document="D1"):
    return {"_id": rid, "uscc": "X", "sector": sector, "measure_id": rid, "action": "a",
            "legal_basis": "b", "department": "d", "memorandum": "m", "rule": "r",
            "source": {"agency_code": agency, "document_number": document},
            "starts_at": datetime(2026, 1, 1, tzinfo=timezone.utc), "ends_at": None,
            "lifted_at": None, "expiry_announced": False}


def test_only_the_measures_of_the_record_under_review_are_flagged():
    projection = StatusProjection()
    projection.review("FJAMR-350100/D1", "OB-1", decided=False)
    docs = [doc("A", "credit"), doc("B", "taxes", document="D2")]
    answer = gate.answer("X", docs, ["credit", "taxes"], AS_OF, True, projection.under_review)
    assert answer["records_under_review"] == ["FJAMR-350100/D1"]
    assert answer["sectors"]["credit"]["measures"][0]["under_review"] is True
    assert answer["sectors"]["taxes"]["measures"][0]["under_review"] is False
    assert answer["may_pass"] is False  # a record under review still applies


def test_a_decided_objection_never_reopens_and_another_one_keeps_the_flag():
    projection = StatusProjection()
    projection.review("V", "OB-1", decided=False)
    projection.review("V", "OB-2", decided=False)
    projection.review("V", "OB-1", decided=True)
    assert projection.under_review("V")
    projection.review("V", "OB-2", decided=True)
    projection.review("V", "OB-2", decided=False)  # late redelivery of the opening
    assert not projection.under_review("V")
    projection.review("W", "OB-3", decided=True)   # decided heard before opened
    projection.review("W", "OB-3", decided=False)
    assert not projection.under_review("W")


def test_without_a_review_source_nothing_is_flagged():
    answer = gate.answer("X", [doc("A", "credit")], ["credit"], AS_OF, True)
    assert answer["records_under_review"] == []
    assert answer["sectors"]["credit"]["measures"][0]["under_review"] is False
