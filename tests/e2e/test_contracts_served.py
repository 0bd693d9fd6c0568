"""The running system serves its contracts, and what it answers conforms to them.

Every answer below is checked against the schema ``contracts/http.py`` declares for its
endpoint and status, with unknown fields refused: a field added to an answer without its
schema, or a status nobody declared, fails here.
"""
import json
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import pytest
import requests
from openapi_spec_validator import validate as validate_openapi

from contracts import asyncapi, http, openapi
from contracts.common import CHINA_TZ
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
        "legal_representative": {"name": "张三", "id_number": "350102199001011238"}}))
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


def ago(days: float) -> str:
    return (datetime.now(CHINA_TZ) - timedelta(days=days)).isoformat(timespec="seconds")


def test_answers_of_notifications_and_repair_conform_to_their_contracts(system):
    """Notices, feedback, closure, dead letters; repair applications, decisions, objections,
    eligibility, the public record and the calendar: every answer, refusals included."""
    admin = system.session()
    agency = system.session("agency", "FJAMR")
    regulator = system.session("regulator", "samr")
    shop = system.session("platform", "contract-shop")
    other = system.session("platform", "contract-other")
    gatekeeper = system.session("gatekeeper", "contract-bank")

    def url(service, path):
        return system.url(service, path)

    # A serious decision 400 days old with a serious-violation listing (SL-PLAT informs the
    # platforms; repairable now), and an older listing of the same entity whose 3 years are
    # over (its SL-PLAT imposed and lifted by expiry).
    body = violation(occurred_at=ago(420), decided_at=ago(400),
                     penalties=[{"type": "fine", "amount": "200000.00"}],
                     legal_representative={"name": "陈大文", "id_number": "11010119900307803X"},
                     listing={"list": "serious_violation", "listed_at": ago(400)})
    code = body["uscc"]
    old = violation(uscc=code, occurred_at=ago(1300), decided_at=ago(1250),
                    penalties=[{"type": "fine", "amount": "100000.00"}],
                    listing={"list": "serious_violation", "listed_at": ago(1250)})
    vid = f"{body['agency_code']}/{body['document_number']}"
    assert regulator.put(url("registry", f"/v1/registry/entities/{code}"),
                         json={"name": body["entity_name"]}).status_code in (200, 201)
    for platform, session in (("contract-shop", shop), ("contract-other", other)):
        assert session.post(url("registry", f"/v1/registry/entities/{code}/memberships"),
                            json={"platform_id": platform, "shop_id": f"s-{platform}"}).ok

    # -- subscriptions --------------------------------------------------------------------
    subscriptions = url("notifications", "/v1/subscriptions")
    created = conforms("notifications", shop.post(subscriptions, json={
        "kind": "platform", "platform_id": "contract-shop"}))  # pull
    assert created["delivery"] == "pull" and created["has_webhook_secret"] is False
    replaced = shop.post(subscriptions, json={"kind": "platform", "platform_id": "contract-shop",
                                              "sectors": ["platforms"]})
    assert replaced.status_code == 200
    assert conforms("notifications", replaced)["sectors"] == ["platforms"]
    # The other platform's receiver refuses every notice (404): they are dead-lettered.
    conforms("notifications", other.post(subscriptions, json={
        "kind": "platform", "platform_id": "contract-other",
        "webhook_url": url("registry", "/no-such-hook"),
        "webhook_secret": "contract-other-secret-0123"}))
    conforms("notifications", shop.post(subscriptions, json={
        "kind": "platform", "platform_id": "contract-other"}))  # 403: not its own
    conforms("notifications", shop.post(subscriptions, json={"kind": "platform"}))  # 400
    dept = conforms("notifications", regulator.post(subscriptions, json={
        "subscriber_id": "contract-dept", "kind": "department", "department": "财政厅",
        "sectors": ["procurement"]}))
    assert dept["platform_id"] is None
    listed = conforms("notifications", shop.get(subscriptions))
    assert [s["subscriber_id"] for s in listed["subscriptions"]] == ["contract-shop"]
    conforms("notifications", regulator.get(subscriptions))
    conforms("notifications", shop.get(f"{subscriptions}/contract-shop"))
    conforms("notifications", shop.get(f"{subscriptions}/contract-other"))  # 403
    conforms("notifications", shop.get(f"{subscriptions}/nobody"))  # 404
    assert conforms("notifications", regulator.delete(f"{subscriptions}/contract-dept"))[
        "deleted"] is True
    conforms("notifications", regulator.delete(f"{subscriptions}/contract-dept"))  # 404

    # -- notices, feedback, closure ---------------------------------------------------------
    for record in (body, old):
        assert conforms("violations", agency.post(url("violations", "/v1/violations"),
                                                  json=record))["status"] == "recorded"
    notices_url = url("notifications", "/v1/notices")

    def current(n):
        return n["restriction"]["restriction_id"].startswith(f"{vid}#")

    def shop_notices():
        response = shop.get(notices_url, params={"subscriber": "contract-shop"})
        kinds = {(n["kind"], n["measure"]["id"], current(n))
                 for n in response.json().get("notices", [])}
        return response if {("imposed", "SL-PLAT", True), ("lifted", "SL-PLAT", False)} <= kinds \
            else None

    notices = conforms("notifications", system.wait_for(shop_notices, timeout=60,
                                                        message="the shop's notices"))["notices"]
    assert {n["status"] for n in notices} == {"available"}
    (pl01,) = [n for n in notices if n["kind"] == "imposed" and current(n)]
    (lift,) = [n for n in notices if n["kind"] == "lifted"]
    conforms("notifications", shop.get(notices_url, params={"kind": "lifted", "limit": 5}))
    conforms("notifications", shop.get(notices_url, params={"kind": "moved"}))  # 400
    conforms("notifications", shop.get(notices_url, params={"subscriber": "nobody"}))  # 404
    conforms("notifications", regulator.get(notices_url, params={"uscc": code}))
    notice_url = f"{notices_url}/{pl01['notice_id']}"
    conforms("notifications", shop.get(notice_url))
    conforms("notifications", other.get(notice_url))  # 403: another platform's notice
    conforms("notifications", shop.get(f"{notices_url}/ntc_none"))  # 404

    feedback_url = f"{notice_url}/feedback"
    acknowledged = {"status": "acknowledged", "note": "handling it"}
    assert conforms("notifications", shop.post(feedback_url, json=acknowledged))[
        "feedback_id"] == f"{pl01['notice_id']}:acknowledged"
    assert conforms("notifications", shop.post(feedback_url, json=acknowledged))[
        "duplicate"] is True
    conforms("notifications", shop.post(feedback_url, json={**acknowledged, "note": "other"}))
    applied = conforms("notifications", shop.post(feedback_url, json={
        "status": "applied", "actions": ["cleared", "shop_closed"],
        "applied_at": ago(0.01), "reference": "OPS-1"}))  # 201, and 互认 for contract-other
    assert applied["actions"] == ["cleared", "shop_closed"]
    conforms("notifications", shop.post(feedback_url, json={"status": "applied"}))  # 400
    conforms("notifications", shop.post(f"{notices_url}/{lift['notice_id']}/feedback", json={
        "status": "applied", "actions": ["cleared"], "applied_at": ago(0.01)}))  # 400
    conforms("notifications", other.post(feedback_url, json=acknowledged))  # 403
    conforms("notifications", shop.post(f"{notices_url}/ntc_none/feedback",
                                        json=acknowledged))  # 404
    seen = conforms("notifications", shop.get(notice_url))
    assert [f["status"] for f in seen["feedback"]] == ["acknowledged", "applied"]

    closure_url = url("notifications", "/v1/closure")
    row = conforms("notifications", shop.get(closure_url))["subscribers"]
    assert [(r["subscriber_id"], r["applied"]) for r in row] == [("contract-shop", 1)]
    conforms("notifications", regulator.get(closure_url, params={
        "subscriber": "contract-shop", "as_of": "2099-01-01T00:00:00+08:00"}))
    conforms("notifications", shop.get(closure_url, params={"as_of": "yesterday"}))  # 400
    conforms("notifications", shop.get(closure_url, params={"subscriber": "contract-other"}))

    # -- dead letters (administrators) -----------------------------------------------------
    dead_url = url("notifications", "/v1/dead-notices")

    def dead(times=1):
        """Both SL-PLAT imposed, the old one lifted (held behind its imposition), and the 互认
        notice of the shop's clearance: all four dead-lettered ``times`` times."""
        response = admin.get(dead_url, params={"subscriber": "contract-other"})
        letters = response.json().get("dead_notices", [])
        kinds = sorted(d["kind"] for d in letters if d["times"] >= times)
        return response if kinds == ["imposed", "imposed", "lifted",
                                     "mutual_recognition"] else None

    letters = conforms("notifications", system.wait_for(
        dead, timeout=60, message="contract-other's notices dead-lettered"))["dead_notices"]
    assert all("404" in d["reason"] for d in letters if d["kind"] == "imposed")
    assert all("imposition" in d["reason"] for d in letters if d["kind"] == "lifted")
    conforms("notifications", admin.get(dead_url, params={"limit": 0}))  # 400
    conforms("notifications", shop.get(dead_url))  # 403: administrators only
    redeliver_url = url("notifications", "/v1/dead-notices:redeliver")
    again = conforms("notifications", admin.post(redeliver_url,
                                                 json={"subscriber_id": "contract-other"}))
    assert again["redelivered"] == 4 and {r["result"] for r in again["results"]} == {
        "redelivering"}
    letters = conforms("notifications", system.wait_for(
        lambda: dead(times=2), timeout=60, message="dead-lettered again"))["dead_notices"]
    assert {d["redelivered_by"] for d in letters} == {"administrator:ops"}
    assert conforms("notifications", admin.post(redeliver_url, json={
        "notice_ids": ["ntc_none"]}))["results"] == [
        {"notice_id": "ntc_none", "result": "not dead-lettered"}]
    conforms("notifications", admin.post(redeliver_url, json={"all": True,
                                                              "subscriber_id": "x"}))  # 400

    # -- repair: eligibility, applications, decisions -------------------------------------
    record = {"agency_code": body["agency_code"], "document_number": body["document_number"],
              "uscc": code}
    eligibility_url = url("repair", "/v1/repair/eligibility")

    def known():
        response = regulator.get(eligibility_url, params=record)
        return response if response.status_code == 200 else None

    eligible = conforms("repair", system.wait_for(known, timeout=60,
                                                  message="the record at the repair service"))
    assert eligible["eligible"] is True and eligible["scope"] == "serious_list"
    conforms("repair", regulator.get(eligibility_url, params={**record, "uscc": make_uscc()}))
    conforms("repair", regulator.get(eligibility_url, params={"uscc": code}))  # 400
    conforms("repair", regulator.get(eligibility_url, params={
        **record, "document_number": "none"}))  # 404

    public_url = url("repair", f"/v1/public/entities/{code}")

    def public_listing():
        response = gatekeeper.get(public_url)
        return response if response.json().get("listings") else None

    public = conforms("repair", system.wait_for(public_listing, message="the public record"))
    assert public["penalties"][0]["legal_representative"]["name"] == "陈**"
    conforms("repair", gatekeeper.get(public_url, params={"as_of": "2030-01-01T00:00:00+08:00"}))
    conforms("repair", gatekeeper.get(public_url, params={"as_of": "soon"}))  # 400
    conforms("repair", gatekeeper.get(public_url, params={"view": "full"}))  # 400
    conforms("repair", gatekeeper.get(url("repair", "/v1/public/entities/not-a-code")))  # 400

    applications = url("repair", "/v1/repair/applications")
    application = {**record, "applicant": {"name": body["entity_name"], "capacity": "entity"},
                   "penalty_performed": True, "harm_removed": True, "evidence": ["receipt"],
                   "commitment_letter": {"signed_by": "陈大文", "signed_at": ago(1)[:10]}}
    refused = conforms("repair", regulator.post(applications, json={
        **application, "commitment_letter": None}))
    assert [b["rule"] for b in refused["blocking"]] == ["no_commitment_letter"]  # 422
    conforms("repair", agency.post(applications, json=application))  # 403: recording agency
    conforms("repair", gatekeeper.post(applications, json=application))  # 403: role
    conforms("repair", regulator.post(applications, json={**application, "harm": True}))  # 400
    filed = conforms("repair", regulator.post(applications, json=application))
    assert filed["status"] == "pending" and filed["decision"] is None
    assert conforms("repair", regulator.post(applications, json=application))[
        "application_id"] == filed["application_id"]  # 409: pending
    application_url = f"{applications}/{filed['application_id']}"
    conforms("repair", regulator.get(application_url))
    conforms("repair", regulator.get(application_url, params={"as_of": "2099-01-01"}))
    conforms("repair", shop.get(application_url))  # 404: not visible to this platform
    conforms("repair", regulator.get(applications, params={"status": "pending", "uscc": code,
                                                           "overdue": "false"}))
    conforms("repair", agency.get(applications))
    conforms("repair", regulator.get(applications, params={"status": "lost"}))  # 400
    decide_url = f"{application_url}/decision"
    conforms("repair", other.post(decide_url, json={"decision": "approved",
                                                    "reason": "ok"}))  # 403: role
    conforms("repair", system.session("agency", "XMAMR").post(decide_url, json={
        "decision": "approved", "reason": "not mine"}))  # 403: not the recording agency
    conforms("repair", agency.post(decide_url, json={"decision": "maybe", "reason": "?"}))
    decided = conforms("repair", agency.post(decide_url, json={
        "decision": "approved", "reason": "fine paid; recall completed"}))
    assert decided["status"] == "approved" and decided["decision"]["decided_by"] == \
        "agency:FJAMR"
    assert conforms("repair", agency.post(decide_url, json={
        "decision": "rejected", "reason": "changed my mind"}))["application_status"] == \
        "approved"  # 409
    conforms("repair", agency.post(f"{applications}/RA-none/decision", json={
        "decision": "approved", "reason": "none"}))  # 404

    # -- repair: objections ---------------------------------------------------------------
    objections = url("repair", "/v1/objections")
    objection = {**record, "applicant": {"name": body["entity_name"], "capacity": "agent"},
                 "grounds": "the sampling report was for another batch"}
    opened = conforms("repair", shop.post(objections, json=objection))
    assert opened["status"] == "open" and opened["filed_by"] == "platform:contract-shop"
    assert conforms("repair", regulator.post(objections, json=objection))[
        "objection_id"] == opened["objection_id"]  # 409: open
    conforms("repair", regulator.post(objections, json={**objection, "grounds": "no"}))  # 400
    objection_url = f"{objections}/{opened['objection_id']}"
    conforms("repair", shop.get(objection_url))
    conforms("repair", other.get(objection_url))  # 404: not what it filed
    conforms("repair", regulator.get(objections, params={
        "overdue": "true", "as_of": "2099-01-01T00:00:00+08:00"}))
    conforms("repair", regulator.get(objections, params={"page": "2"}))  # 400
    decision_url = f"{objection_url}/decision"
    conforms("repair", agency.post(decision_url, json={
        "outcome": "corrected", "reason": "amended"}))  # 409: amend through intake first
    upheld = conforms("repair", agency.post(decision_url, json={
        "outcome": "upheld", "reason": "report matches the batch"}))
    assert upheld["outcome"] == "upheld" and upheld["decided_by"] == "agency:FJAMR"
    assert conforms("repair", regulator.post(decision_url, json={
        "outcome": "revoked", "reason": "again"}))["outcome"] == "upheld"  # 409
    conforms("repair", regulator.get(url("repair", "/v1/objections/OB-none")))  # 404

    # -- the working-day calendar -----------------------------------------------------------
    deadline_url = url("repair", "/v1/calendar/deadline")
    due = conforms("repair", gatekeeper.get(deadline_url, params={"from": "2026-09-30",
                                                                 "working_days": 5}))
    assert due["from"] == "2026-09-30" and due["working_days"] == 5
    conforms("repair", gatekeeper.get(deadline_url, params={"from": "30/09/2026"}))  # 400
