"""Holes a code review found (issue 26), each closed with a test that failed before the fix."""
import pytest

from services.registry.service import RegistryService
from services.restrictions.service import RestrictionsService
from services.violations.service import ViolationsService
from tests.factories import make_uscc, violation

pytestmark = pytest.mark.integration


def test_a_platform_cannot_set_another_platforms_membership(container_factory, config,
                                                             make_session):
    container_factory(RegistryService, config).start()
    code = make_uscc("350100")
    regulator = make_session("regulator", "samr")
    assert regulator.put(f"/v1/registry/entities/{code}", json={"name": "福州示例"}).status_code \
        in (200, 201)
    rival = make_session("platform", "rival")
    stolen = rival.post(f"/v1/registry/entities/{code}/memberships",
                        json={"platform_id": "tmall", "shop_id": "s-1"})
    assert stolen.status_code == 403, stolen.text  # was 200: rival got tmall's notices
    assert stolen.json()["errors"][0]["field"] == "platform_id"
    assert make_session("platform", "tmall").post(
        f"/v1/registry/entities/{code}/memberships",
        json={"platform_id": "tmall", "shop_id": "s-1"}).status_code == 200
    own = rival.post(f"/v1/registry/entities/{code}/memberships",
                     json={"platform_id": "rival", "shop_id": "r-9"})
    assert own.status_code == 200
    assert own.json()["memberships"] == [{"platform_id": "rival", "shop_id": "r-9"}]
    both = regulator.post(f"/v1/registry/entities/{code}/memberships",
                          json={"platform_id": "jd", "shop_id": "j-1"})
    assert {m["platform_id"] for m in both.json()["memberships"]} == {"jd", "rival", "tmall"}


@pytest.mark.parametrize("limit", ["0", "-5", "1001", "ten", "1.5"])
def test_a_limit_outside_1_to_1000_on_the_changes_feed_is_400_naming_it(
        container_factory, config, make_session, limit):
    container_factory(RestrictionsService, config).start()
    response = make_session("gatekeeper", "bank").get(f"/v1/changes?limit={limit}")
    assert response.status_code == 400, response.text  # limit=0 was the whole feed
    assert [e["field"] for e in response.json()["errors"]] == ["limit"]


def test_the_changes_feed_takes_limits_in_range(container_factory, config, make_session):
    container_factory(RestrictionsService, config).start()
    session = make_session("gatekeeper", "bank")
    for limit in ("1", "1000"):
        assert session.get(f"/v1/changes?limit={limit}").status_code == 200
    bad = session.get("/v1/changes?since=nonsense&limit=0").json()["errors"]
    assert {e["field"] for e in bad} == {"since", "limit"}


def test_a_record_id_too_long_for_its_events_is_refused_at_intake(container_factory, config,
                                                                  make_session, db):
    container_factory(ViolationsService, config).start()
    body = violation(document_number="闽市监罚〔2026〕" + "9" * 49 + "号")  # 12 + 1 + 60 chars
    response = make_session("agency", "FJAMR").post("/v1/violations", json=body)
    assert response.status_code == 400, response.text  # was 201, then every consumer refused
    [error] = response.json()["errors"]
    assert error["field"] == "document_number" and "at most 64" in error["problem"]
    assert db("violations").violations.count_documents({}) == 0
