"""All services as processes: an agency's serious listed decision makes the entity class D in
scoring; restrictions applies the class-D measure; gate-keepers and the public never see the
class, the regulator does."""
import pytest

from shared.agency_client import AgencyPublisher
from tests.factories import violation
from tests.integration.test_scoring_gate import leaks_class

pytestmark = pytest.mark.e2e


def test_the_class_reaches_the_regulator_and_nobody_else(system):
    body = violation(category="product_quality", severity="serious")  # serious violation list
    code = body["uscc"]
    vid = f"{body['agency_code']}/{body['document_number']}"
    with AgencyPublisher(system.amqp_uri, system.key("agency", "FJAMR")) as agency:
        agency.publish(body, correlation_id="e2e-class")

    regulator = system.session("regulator", "samr")
    score = system.wait_for(lambda: (lambda r: r if r.get("known") else None)(
        regulator.get(system.url("scoring", f"/v1/scores/{code}")).json()),
        message="the entity scored")
    assert score["risk_class"] == "D" and "serious violation list" in score["class_reason"]

    gatekeeper = system.session("gatekeeper", "licence-office")

    def class_d_measure_applied():
        answer = gatekeeper.get(system.url("restrictions", f"/v1/entities/{code}/status"))
        measures = answer.json()["sectors"]["platforms"]["measures"]
        return answer if any(m["restriction_id"] == f"{vid}#PL-02" for m in measures) else None

    answer = system.wait_for(class_d_measure_applied, message="the class-D measure PL-02")
    batch = gatekeeper.post(system.url("restrictions", "/v1/status:batch"), json={"codes": [code]})
    public = gatekeeper.get(system.url("scoring", f"/v1/scores/{code}/public"))
    platform_view = system.session("platform", "mall").get(
        system.url("scoring", f"/v1/scores/{code}/public"))
    for response in (answer, batch, public, platform_view):
        assert response.status_code == 200, response.text
        assert leaks_class(response.text) == [], (response.url, leaks_class(response.text))
    assert public.json()["records"][0]["document_number"] == body["document_number"]
    assert gatekeeper.get(system.url("scoring", f"/v1/scores/{code}")).status_code == 403
