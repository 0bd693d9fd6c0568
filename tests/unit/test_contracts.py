"""The published contracts agree with the code, and the checked-in copies are current.

These tests are what fails when a handler is added, removed or re-roled without its entry in
``contracts/http.py`` (the failure prints the line to add), when an event type has no place in
the AsyncAPI document, or when docs/api was not regenerated (``lianchen contracts``).
"""
import json

import pytest
from openapi_spec_validator import validate as validate_openapi

from contracts import asyncapi, events, http, openapi
from shared import auth, contracts
from shared.entrypoints import PUBLIC
from shared.entrypoints import http as http_entrypoint


@pytest.fixture(scope="module")
def classes():
    return contracts.service_classes()


def test_every_http_handler_is_declared_with_its_roles_and_nothing_else_is(classes):
    problems = contracts.route_problems(classes)
    assert not problems, "code and contracts/http.py disagree:\n" + "\n".join(problems)


def test_the_check_sees_an_undeclared_handler_a_changed_role_and_a_missing_one():
    class ScoringService:  # stands for services/scoring/service.py after careless edits
        name = "scoring"

        @http_entrypoint("GET", "/v1/scores/<string:code>", roles=("regulator", "gatekeeper"))
        def get_score(self, request, code):
            pass

        @http_entrypoint("GET", "/v1/scores", roles=("regulator",))
        def list_scores(self, request):
            pass

    problems = "\n".join(contracts.route_problems({"scoring": ScoringService}))
    assert "GET /v1/scores (list_scores) is not declared" in problems
    assert 'endpoint("scoring", "GET", "/v1/scores", handler="list_scores", ' \
           "roles=('regulator',)" in problems  # the line to paste
    assert "roles in code ('regulator', 'gatekeeper'), in contracts.http ('regulator',)" \
        in problems
    assert "scoring: GET /health is declared in contracts.http but no handler serves it" \
        in problems
    assert "contracts.http.SERVICES names 'registry', which has no service class" in problems


def test_every_service_serves_health_contracts_and_metrics_without_a_credential(classes):
    for name, cls in classes.items():
        routes = {(r.method, r.rule): r.roles for r in contracts.http_routes(cls)}
        for rule in ("/health", "/openapi.json", "/asyncapi.json", "/metrics"):
            assert routes.get(("GET", rule), "missing") is PUBLIC, f"{name} GET {rule}"


def test_declared_roles_are_known_and_protected_endpoints_document_auth_errors():
    for endpoint in http.all_endpoints():
        if endpoint.roles is PUBLIC:
            continue
        # roles=() admits administrators only (they pass everywhere): declared, not open
        assert isinstance(endpoint.roles, tuple), endpoint.key
        assert set(endpoint.roles) <= set(auth.ROLES), endpoint.key
        assert {401, 403, 429} <= set(endpoint.answers), endpoint.key


def test_openapi_documents_are_valid_openapi_3():
    validate_openapi(openapi.build())
    for service in http.SERVICES:
        document = openapi.build(service)
        validate_openapi(document)
        paths = {(method.upper(), path) for path, item in document["paths"].items()
                 for method in item if method != "servers"}
        assert paths == {(e.method, e.path) for e in http.for_service(service)}


def test_openapi_publishes_roles_security_and_the_schemas_the_code_uses():
    document = openapi.build()
    status = document["paths"]["/v1/entities/{code}/status"]["get"]
    assert status["x-roles"] == ["gatekeeper", "regulator"]
    assert status["security"] == [{"bearerAuth": []}]
    assert status["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/StatusAnswer"}
    assert document["paths"]["/health"]["get"]["security"] == []
    dead = document["paths"]["/v1/dead-notices"]["get"]  # roles=(): administrators only
    assert dead["x-roles"] == ["administrator"] and dead["security"] == [{"bearerAuth": []}]
    assert "administrators only" in dead["description"]
    assert [s["description"] for s in document["paths"]["/v1/changes"]["servers"]] == [
        "restrictions"]
    violation = document["components"]["schemas"]["Violation"]
    assert violation["additionalProperties"] is False
    assert set(violation["required"]) >= {"agency_code", "document_number", "uscc", "penalties"}
    assert violation["properties"]["uscc"]["pattern"] == openapi.USCC_PATTERN
    operation_ids = [op["operationId"] for item in document["paths"].values()
                     for method, op in item.items() if method != "servers"]
    assert len(operation_ids) == len(set(operation_ids))


def test_checked_in_documents_equal_freshly_generated_ones():
    assert contracts.stale() == [], "docs/api is stale: run `lianchen contracts`"


def test_every_event_type_has_a_message_and_a_channel_on_its_producers_exchange():
    document = asyncapi.build()
    for event_type in events.PAYLOADS:
        producer = asyncapi.PRODUCERS[event_type]
        message = document["components"]["messages"][event_type]
        assert message["payload"]["properties"]["type"] == {"type": "string",
                                                            "enum": [event_type]}
        channel = document["channels"][f"{producer}.events/{event_type}"]
        assert channel["bindings"]["amqp"]["exchange"]["name"] == f"{producer}.events"
        assert channel["subscribe"]["message"] == {"$ref": f"#/components/messages/{event_type}"}


def test_the_intake_exchange_and_dead_letters_are_in_asyncapi():
    document = asyncapi.build()
    for routing_key in ("violation.record", "violation.amend", "violation.revoke"):
        channel = document["channels"][f"lianchen.intake/{routing_key}"]
        assert channel["bindings"]["amqp"]["exchange"]["name"] == "lianchen.intake"
        assert "publish" in channel
    record = document["components"]["messages"]["ViolationRecord"]
    assert record["headers"]["required"] == ["authorization"]
    assert record["payload"] == {"$ref": "#/components/schemas/Violation"}
    assert "lianchen.dlx/{queue}" in document["channels"]


def test_every_reference_in_asyncapi_resolves():
    document = asyncapi.build()

    def refs(node):
        if isinstance(node, dict):
            if "$ref" in node:
                yield node["$ref"]
            for value in node.values():
                yield from refs(value)
        elif isinstance(node, list):
            for value in node:
                yield from refs(value)

    found = list(refs(document))
    assert found
    for ref in found:
        target = document
        for part in ref.removeprefix("#/").split("/"):
            target = target[part]
        assert isinstance(target, dict), ref


def test_events_made_and_handled_in_the_code_agree_with_asyncapi(classes):
    problems = contracts.event_problems(classes)
    assert not problems, "\n".join(problems)


def test_an_event_type_without_a_producer_is_refused(monkeypatch):
    monkeypatch.setitem(events.PAYLOADS, "SomethingHappened", events.CreditChangedSchema)
    assert asyncapi.unknown_producers() == ["SomethingHappened"]
    with pytest.raises(ValueError, match="SomethingHappened"):
        asyncapi.build()


def test_response_check_refuses_undeclared_fields_and_statuses():
    score = {"uscc": "91350100M000100Y43", "score": 100.0, "risk_class": "A",
             "explanation": [], "model_version": "m1", "record": "none"}
    path = "/v1/scores/91350100M000100Y43"
    assert http.response_errors("scoring", "GET", path, 200, score) is None
    assert "secret" in http.response_errors("scoring", "GET", path, 200, {**score, "secret": 1})
    assert "_status" in http.response_errors("scoring", "GET", path, 418, score)
    from shared.entrypoints import problem_body
    assert http.response_errors("scoring", "GET", path, 401, problem_body(401, "no")) is None
    assert "type" in http.response_errors("scoring", "GET", path, 401, {"error": "no"})
    with pytest.raises(LookupError):
        http.find("scoring", "DELETE", path)


def test_served_documents_are_the_generated_ones():
    assert json.loads(openapi.served("restrictions")) == json.loads(
        json.dumps(openapi.build("restrictions")))
    assert json.loads(asyncapi.served()) == json.loads(json.dumps(asyncapi.build()))


def test_refusals_are_rfc9457_problems():
    from shared.entrypoints import problem
    response = problem(400, "invalid request", [{"field": "uscc", "problem": "must be 18"}])
    assert response.mimetype == "application/problem+json"
    body = json.loads(response.get_data())
    assert body == {"type": "about:blank", "title": "Bad Request", "status": 400,
                    "detail": "invalid request", "error": "invalid request",
                    "errors": [{"field": "uscc", "problem": "must be 18"}]}
    document = openapi.build("scoring")
    answer = document["paths"]["/v1/scores/{code}"]["get"]["responses"]["401"]["content"]
    assert list(answer) == ["application/problem+json"]


def test_a_deprecated_endpoint_is_marked_and_says_so_in_its_headers():
    from datetime import date
    declared = http.Endpoint("scoring", "GET", "/v1/old", "old", ("regulator",), "old",
                             deprecated=date(2026, 12, 1), sunset=date(2027, 6, 1))
    assert declared.deprecation_headers() == {
        "Deprecation": "@1796083200", "Sunset": "Tue, 01 Jun 2027 00:00:00 GMT",
        "Link": '</docs/CHANGELOG.md>; rel="deprecation"'}
    assert openapi._operation(declared)["deprecated"] is True
    current = http.find("scoring", "GET", "/v1/scores/91350100M000100Y43")
    assert current.deprecation_headers() == {} and "deprecated" not in openapi._operation(current)
    with pytest.raises(ValueError, match="sunset needs a deprecation"):
        http.endpoint("scoring", "GET", "/v1/older", handler="older", roles=("regulator",),
                      summary="older", sunset=date(2027, 6, 1))
