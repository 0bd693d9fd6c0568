from datetime import datetime, timezone

from services.restrictions.projection import StatusProjection

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def doc(lifted=None, expiry=False, rid="v#M"):
    return {"_id": rid, "uscc": "U", "sector": "credit", "measure_id": "M", "action": "a",
            "legal_basis": "b", "department": "d", "memorandum": "m", "rule": "T",
            "source": {"agency_code": "A", "document_number": "1", "category": "x"},
            "starts_at": T0, "ends_at": None, "lifted_at": lifted, "expiry_announced": expiry}


def test_a_lift_is_never_undone_by_a_late_imposition():
    projection = StatusProjection()
    projection.apply(doc(lifted=T0))
    projection.apply(doc())  # the imposed event arrives late (broadcast, sync overlap)
    [view] = projection.docs_for("U")
    assert view["lifted_at"] == T0


def test_applying_twice_changes_nothing_and_restricted_entities_are_known():
    projection = StatusProjection()
    projection.apply(doc())
    projection.apply(doc())
    assert projection.size() == 1 and projection.is_known("U")
    assert not projection.is_known("V")


def test_views_keep_only_what_the_answer_needs():
    projection = StatusProjection()
    projection.apply({**doc(), "restriction_id": "v#M", "_id": None, "entity_name": "secret",
                      "starts_at": "2026-01-01T00:00:00+00:00"})
    [view] = projection.docs_for("U")
    assert "entity_name" not in view and view["_id"] == "v#M"
    assert view["starts_at"] == T0
