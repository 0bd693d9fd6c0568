"""The running system serves its contracts, and what it answers conforms to them.

Every answer below is checked against the schema ``contracts/http.py`` declares for its
endpoint and status, with unknown fields refused: a field added to an answer without its
schema, or a status nobody declared, fails here.
"""
import json
from urllib.parse import urlsplit

import pytest
import requests
from openapi_spec_validator import validate as validate_openapi

from contracts import asyncapi, http, openapi
from tests.factories import make_uscc, violation

pytestmark = pytest.mark.e2e


def conforms(service: str, response: requests.Response) -> dict:
    method, path = response.request.method, urlsplit(response.request.url).path
    body = response.json()
    problems = http.response_errors(service, method, path, response.status_code, body)
    assert problems is None, (f"{service}: {method} {path} answered {response.status_code} "
                              f"outside its contract: {problems}\n{response.text[:800]}")
    return body


def test_every_service_serves_its_contracts_without_a_credential(system):
    expected_asyncapi = json.loads(json.dumps(asyncapi.build()))
    for service in system.services:
        served = requests.get(system.url(service, "/openapi.json"), timeout=10)
        assert served.status_code == 200
        assert served.headers["Content-Type"].startswith("application/json")
        document = served.json()
        assert document == json.loads(json.dumps(openapi.build(service)))
        validate_openapi(document)
        assert {e.path for e in http.for_service(service)} == set(document["paths"])
        assert requests.get(system.url(service, "/asyncapi.json"),
                            timeout=10).json() == expected_asyncapi
        conforms(service, requests.get(system.url(service, "/health"), timeout=10))


def test_answers_of_the_main_endpoints_conform_to_their_contracts(system):
    agency = system.session("agency", "FJAMR")
    regulator = system.session("regulator", "samr")
    platform = system.session("platform", "contract-mall")
    gatekeeper = system.session("gatekeeper", "contract-bank")
    body = violation()
    code = body["uscc"]

    # registry
    conforms("registry", regulator.put(system.url("registry", f"/v1/registry/entities/{code}"), json={
        "name": body["entity_name"], "industry": "food",
        "legal_representative": {"name": "张三", "id_number": "350102199001011234"}}))
    conforms("registry", platform.post(system.url(
        "registry", f"/v1/registry/entities/{code}/memberships"),
        json={"platform_id": "contract-mall", "shop_id": "s-1"}))
    conforms("registry", regulator.post(system.url(
        "registry", f"/v1/registry/entities/{make_uscc()}/memberships"),
        json={"platform_id": "contract-mall", "shop_id": "s-1"}))  # 404: unknown entity
    conforms("notifications", platform.post(system.url("notifications", "/v1/subscriptions"), json={
        "subscriber_id": "contract-mall", "kind": "platform", "platform_id": "contract-mall"}))

    # violations: recorded, duplicate, rejected, conflict, batch, amendment, revocation
    outcome = conforms("violations", agency.post(system.url("violations", "/v1/violations"),
                                                  json=body))
    assert outcome["status"] == "recorded"
    assert conforms("violations", agency.post(system.url("violations", "/v1/violations"),
                                              json=body))["status"] == "duplicate"
    rejected = conforms("violations", agency.post(system.url("violations", "/v1/violations"),
                                                  json={**body, "severity": "dreadful"}))
    assert rejected["status"] == "rejected"
    assert conforms("violations", agency.post(system.url("violations", "/v1/violations"), json={
        **body, "entity_name": "另一个名字"}))["status"] == "conflict"
    other = violation(severity="general", listing=None)
    batch = conforms("violations", agency.post(system.url("violations", "/v1/violations:batch"),
                                               json={"records": [other, {"bad": 1}]}))
    assert [r["status"] for r in batch["results"]] == ["recorded", "rejected"]
    key = f"{other['agency_code']}/{other['document_number']}"
    conforms("violations", agency.put(system.url("violations", f"/v1/violations/{key}"), json={
        "violation": {**other, "severity": "serious"}, "reason": "severity corrected"}))
    conforms("violations", agency.post(system.url("violations", f"/v1/violations/{key}/revocation"),
                                       json={"reason": "decision annulled"}))
    conforms("violations", agency.post(system.url(
        "violations", "/v1/violations/FJAMR-350100/none/revocation"), json={"reason": "no such"}))
    document = conforms("violations", regulator.get(system.url("violations", f"/v1/violations/{key}")))
    assert [v["version"] for v in document["versions"]] == [1, 2, 3]
    conforms("violations", regulator.get(system.url("violations", "/v1/violations/X/none")))
    conforms("violations", regulator.get(system.url("violations", "/v1/violations"),
                                         params={"uscc": code}))
    conforms("violations", regulator.get(system.url(
        "violations", f"/v1/rejections/{rejected['rejection_id']}")))
    conforms("violations", regulator.get(system.url("violations", "/v1/rejections")))

    # restrictions: wait for the measures, then every gate-keeping answer
    def restricted():
        response = gatekeeper.get(system.url("restrictions", f"/v1/entities/{code}/status"))
        return response if response.json().get("record") == "restricted" else None

    status = conforms("restrictions", system.wait_for(restricted, message="restrictions"))
    conforms("restrictions", gatekeeper.get(system.url(
        "restrictions", f"/v1/entities/{code}/status"), params={"sector": "credit",
                                                                  "as_of": "2026-05-01T00:00:00+08:00"}))
    conforms("restrictions", gatekeeper.get(system.url(
        "restrictions", f"/v1/entities/{code}/status"), params={"sector": "space"}))  # 400
    conforms("restrictions", gatekeeper.post(system.url("restrictions", "/v1/status:batch"),
                                             json={"codes": [code, make_uscc()]}))
    conforms("restrictions", gatekeeper.get(system.url("restrictions", "/v1/changes"),
                                            params={"limit": 5}))
    conforms("restrictions", gatekeeper.get(system.url(
        "restrictions", f"/v1/answers/{status['answer_id']}")))
    conforms("restrictions", gatekeeper.get(system.url("restrictions", "/v1/answers/nope")))
    conforms("restrictions", gatekeeper.get(system.url("restrictions", "/v1/ping")))

    # scoring, registry view, notices
    def scored():
        response = regulator.get(system.url("scoring", f"/v1/scores/{code}"))
        return response if response.json().get("risk_class") == "D" else None

    conforms("scoring", system.wait_for(scored, message="the score"))
    conforms("scoring", regulator.get(system.url("scoring", f"/v1/scores/{make_uscc()}")))
    for view in ("public", "full"):
        conforms("registry", regulator.get(system.url("registry", f"/v1/registry/entities/{code}"),
                                           params={"view": view}))

    def notices():
        response = platform.get(system.url("notifications", "/v1/notices"),
                                params={"subscriber": "contract-mall"})
        return response if response.json().get("notices") else None

    conforms("notifications", system.wait_for(notices, message="a notice"))

    # refusals: no credential, wrong role
    conforms("scoring", requests.get(system.url("scoring", f"/v1/scores/{code}"), timeout=10))
    conforms("scoring", gatekeeper.get(system.url("scoring", f"/v1/scores/{code}")))
