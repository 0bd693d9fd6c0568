"""All services as processes: an agency's serious listed decision makes the entity class D in
scoring; restrictions applies the same measures as in any class (the class sets inspection
frequency only); gate-keepers and the public never see the class, the regulator does."""
import pytest

from contracts.violation import ViolationSchema
from rules.measures import Catalog
from shared.agency_client import AgencyPublisher
from tests.factories import violation
from tests.integration.test_scoring_gate import leaks_class

pytestmark = pytest.mark.e2e


def test_the_class_reaches_the_regulator_and_nobody_else(system):
    body = violation(category="product_quality", severity="serious")  # serious violation list
    code = body["uscc"]
    vid = f"{body['agency_code']}/{body['document_number']}"
    with AgencyPublisher(system.agency_uri("FJAMR"), system.key("agency", "FJAMR")) as agency:
        agency.publish(body, correlation_id="e2e-class")

    regulator = system.session("regulator", "samr")
    score = system.wait_for(lambda: (lambda r: r if r.get("known") else None)(
        regulator.get(system.url("scoring", f"/v1/scores/{code}")).json()),
        message="the entity scored")
    assert score["risk_class"] == "D" and "serious violation list" in score["class_reason"]

    gatekeeper = system.session("gatekeeper", "licence-office")

    system.wait_for(lambda: (system.db("restrictions").entities.find_one({"_id": code}) or {})
                    .get("reconciled_class") == "D", message="restrictions reconciled class D")
    decided = {m["measure"].id for m in Catalog.load().decide(
        ViolationSchema().load(body), "A").entity_measures}  # the same facts in class A
    wanted = {f"{vid}#{mid}" for mid in decided}

    def same_as_class_a():
        answer = gatekeeper.get(system.url("restrictions", f"/v1/entities/{code}/status"))
        shown = {m["restriction_id"] for e in answer.json()["sectors"].values()
                 for m in e["measures"]}
        assert shown <= wanted, shown - wanted  # never a measure the facts do not give
        return answer if shown == wanted else None

    answer = system.wait_for(same_as_class_a, message="the measures of the facts, as in class A")
    batch = gatekeeper.post(system.url("restrictions", "/v1/status:batch"), json={"codes": [code]})
    public = gatekeeper.get(system.url("scoring", f"/v1/scores/{code}/public"))
    platform_view = system.session("platform", "mall").get(
        system.url("scoring", f"/v1/scores/{code}/public"))
    for response in (answer, batch, public, platform_view):
        assert response.status_code == 200, response.text
        assert leaks_class(response.text) == [], (response.url, leaks_class(response.text))
    assert public.json()["records"][0]["document_number"] == body["document_number"]
    assert gatekeeper.get(system.url("scoring", f"/v1/scores/{code}")).status_code == 403
