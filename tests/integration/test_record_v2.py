"""Record v2 and jurisdiction by place against the real broker and store (issue 18 item 4).

A Shanxi agency records, over AMQP, a violation committed in Taiyuan by a merchant registered
in Zhejiang: accepted (行政处罚法 第二十二条), restricted at the gate, in the national change feed
and in both regions' feeds (SAMR Order 45 art. 10: the registration place gets it). A Fujian
violation by a Fujian entity is still refused to Shanxi, naming place_code.
"""
import pytest
import requests
from nameko.events import event_handler
from nameko.testing.services import entrypoint_waiter

from contracts.events import read_event
from services.restrictions.service import RestrictionsService
from services.violations.service import ViolationsService
from shared.agency_client import AgencyPublisher
from tests.factories import make_uscc, violation
from tests.integration.conftest import wait_for
from tests.system import free_port

pytestmark = pytest.mark.integration

NUMBER = "11010119900307803X"
AMENDED = []


class AmendmentListener:
    name = "amendment_listener"

    @event_handler("violations", "ViolationAmended")
    def amended(self, body):
        AMENDED.append(body)


@pytest.fixture
def system(container_factory, config):
    """Violations on its own port; restrictions (the gate) on the test's web port."""
    port = free_port()
    violations = container_factory(ViolationsService, {
        **config, "WEB_SERVER_ADDRESS": f"127.0.0.1:{port}"})
    restrictions = container_factory(RestrictionsService, config)
    violations.start()
    restrictions.start()
    return violations, f"http://127.0.0.1:{port}"


def shanxi_case(**overrides):
    return violation(**{
        "agency_code": "SXAMR-140100", "document_number": f"晋市监罚〔2026〕{free_port()}号",
        "uscc": make_uscc("330100"), "entity_name": "杭州示例电子商务有限公司",
        "place_code": "140105", "region_code": "140100",
        "penalties": [{"type": "fine", "amount": "300000.00"}],
        "persons": [{"role": "legal_representative", "name": "张三", "id_number": NUMBER,
                     "personal_responsibility": True}], **overrides})


def get(base, path, key, **params):
    response = requests.get(f"{base}{path}", params=params,
                            headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_shanxi_agency_records_a_shanxi_violation_by_a_zhejiang_merchant(
        system, config, keys, web_session, db):
    violations, base = system
    body = shanxi_case()
    with AgencyPublisher(config["AMQP_URI"], keys("agency", "SXAMR")) as agency, \
            entrypoint_waiter(violations, "on_intake", timeout=20) as result:
        agency.publish(body)
    outcome = result.get()
    assert outcome["status"] == "recorded", outcome
    vid = outcome["violation_id"]

    # restricted at the gate (Order 44 art. 15 measures of the serious list)
    def restricted():
        answer = web_session.get(f"/v1/entities/{body['uscc']}/status").json()
        return answer if answer.get("record") == "restricted" else None
    answer = wait_for(restricted, timeout=30, message="the gate restricts the merchant")
    assert answer["may_pass"] is False and answer["uscc"] == body["uscc"]
    # and in the national change feed
    changes = web_session.get("/v1/changes", params={"limit": 1000}).json()["changes"]
    assert {c["uscc"] for c in changes} == {body["uscc"]}

    # the registration place's feed (Zhejiang, at province, city and county level is 330100's)
    regulator = keys("regulator", "zj")
    for region in ("330000", "330100", "140000", "140100", "140105"):
        feed = get(base, f"/v1/regions/{region}/violations", regulator)
        assert [v["violation_id"] for v in feed["violations"]] == [vid], region
    assert get(base, "/v1/regions/350000/violations", regulator)["violations"] == []
    purpose = "协助公示跨省推送的行政处罚信息"
    seen = get(base, "/v1/regions/330000/violations", regulator,
               purpose=purpose)["violations"][0]
    assert seen["record"]["place_code"] == "140105"
    assert seen["regions"] == ["140000", "140100", "140105", "330000", "330100"]
    person = seen["record"]["persons"][0]
    assert person["id_masked"] == "1****************X" and person["personal_responsibility"]
    assert NUMBER not in str(list(db("violations").violations.find({})))
    # a region reader reading a record that names a person is a lookup of that person
    assert db("violations").person_access.count_documents(
        {"person_id": person["person_id"], "purpose": purpose}) == 1

    assert db("violations").outbox.count_documents({}) == 0  # the event was published


def test_shanxi_may_not_record_a_fujian_violation_by_a_fujian_entity(system, keys, db):
    _, base = system
    body = shanxi_case(uscc=make_uscc("350100"), place_code="350102", persons=[])
    response = requests.post(f"{base}/v1/violations", json=body, timeout=10,
                             headers={"Authorization": f"Bearer {keys('agency', 'SXAMR')}"})
    assert response.status_code == 400, response.text
    problems = {e["field"]: e["problem"] for e in response.json()["errors"]}
    assert set(problems) == {"place_code"}
    assert "350102 is outside SXAMR" in problems["place_code"]
    assert db("violations").violations.count_documents({}) == 0


def test_a_bad_region_feed_query_names_each_field(system, keys):
    _, base = system
    response = requests.get(f"{base}/v1/regions/33/violations", timeout=10,
                            params={"since": "nonsense", "limit": 0},
                            headers={"Authorization": f"Bearer {keys('regulator', 'r')}"})
    assert response.status_code == 400
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"region", "limit"}  # since is judged once the rest is valid
    response = requests.get(f"{base}/v1/regions/330000/violations", timeout=10,
                            params={"since": "nonsense"},
                            headers={"Authorization": f"Bearer {keys('regulator', 'r')}"})
    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == ["since"]


def test_published_at_is_reported_later_by_an_amendment(container_factory, system, config,
                                                        keys):
    """Once, it is the normal amendment (version 2, ViolationAmended); again, a duplicate."""
    AMENDED.clear()
    container_factory(AmendmentListener, config).start()
    violations, base = system
    key = keys("agency", "SXAMR")
    body = shanxi_case()
    created = requests.post(f"{base}/v1/violations", json=body, timeout=10,
                            headers={"Authorization": f"Bearer {key}"}).json()
    assert created["status"] == "recorded"
    # the agency resends the record as read back (persons in their protected form)
    agency, document = created["violation_id"].split("/", 1)
    stored = get(base, f"/v1/violations/{agency}/{document}", key)["record"]
    with AgencyPublisher(config["AMQP_URI"], key) as publisher:
        for expected in ("amended", "duplicate"):
            with entrypoint_waiter(violations, "on_intake", timeout=20) as result:
                publisher.report_publication(stored, "2026-04-15T09:00:00+08:00")
            assert result.get()["status"] == expected
    doc = get(base, f"/v1/violations/{agency}/{document}", key)
    assert doc["version"] == 2 and doc["record"]["published_at"].startswith("2026-04-15T09:00")
    assert "published on 2026-04-15" in doc["versions"][1]["reason"]
    wait_for(lambda: AMENDED, timeout=15, message="ViolationAmended")
    envelope, payload = read_event(AMENDED[0])
    assert envelope["schema_version"] == 2 and payload["version"] == 2
    assert payload["registration_region"] == "330100"
    assert payload["record"]["published_at"].isoformat().startswith("2026-04-15T09:00")
    assert len(AMENDED) == 1
