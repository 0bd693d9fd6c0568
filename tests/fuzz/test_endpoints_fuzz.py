"""Every intake and gate-keeping endpoint, driven over real HTTP with generated bad input:
never a 500, and every refusal is JSON that says why (and names the field when it is one)."""
import json
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.restrictions.service import RestrictionsService
from services.violations.service import ViolationsService
from tests.fuzz.strategies import BODIES, JSON, KEYS, SCALARS

pytestmark = [pytest.mark.fuzz, pytest.mark.integration, pytest.mark.timeout(1200)]
TEXT = st.one_of(st.text(max_size=40), st.sampled_from(["", "..", "%2e%2e", "$gt", "a.b",
                                                        "91350100M000100Y44", "x" * 500]))


def check(response):
    assert response.status_code < 500, (response.status_code, response.text[:300])
    body = response.json()  # always JSON, even for refusals
    if response.status_code >= 400:
        assert body.get("error") or body.get("errors"), body
        for error in body.get("errors", []):
            assert error["field"] and error["problem"], error


@pytest.fixture
def violations_http(container_factory, config, make_session):
    container_factory(ViolationsService, config).start()
    return make_session("agency", "FJAMR", rate=1e9)


@pytest.fixture
def restrictions_http(container_factory, config, make_session):
    container_factory(RestrictionsService, config).start()
    return make_session("gatekeeper", "fuzz-bank", rate=1e9)


@settings(max_examples=2500)
@given(body=BODIES)
def test_post_violation(violations_http, body):
    check(violations_http.post("/v1/violations", json=body))


@settings(max_examples=300)
@given(raw=st.binary(max_size=200))
def test_post_violation_raw_bytes(violations_http, raw):
    check(violations_http.post("/v1/violations", data=raw,
                               headers={"Content-Type": "application/json"}))


@settings(max_examples=600)
@given(records=st.one_of(JSON, st.lists(BODIES, max_size=5)), ids=st.one_of(st.none(), JSON))
def test_post_batch(violations_http, records, ids):
    body = {"records": records} if ids is None else {"records": records, "message_ids": ids}
    check(violations_http.post("/v1/violations:batch", json=body))


@settings(max_examples=800)
@given(agency=TEXT, document=TEXT, body=st.one_of(JSON, st.fixed_dictionaries(
    {"violation": BODIES, "reason": SCALARS})))
def test_put_amendment(violations_http, agency, document, body):
    check(violations_http.put(f"/v1/violations/{quote(agency, safe='')}/"
                              f"{quote(document, safe='')}", json=body))


@settings(max_examples=600)
@given(agency=TEXT, document=TEXT, body=JSON)
def test_post_revocation(violations_http, agency, document, body):
    check(violations_http.post(f"/v1/violations/{quote(agency, safe='')}/"
                               f"{quote(document, safe='')}/revocation", json=body))


@settings(max_examples=400)
@given(params=st.dictionaries(KEYS, TEXT, max_size=3))
def test_list_violations_and_rejections(violations_http, params):
    check(violations_http.get("/v1/violations", params=params))
    check(violations_http.get("/v1/rejections", params=params))


@settings(max_examples=2500)
@given(code=TEXT, sector=st.one_of(st.none(), TEXT, st.sampled_from(["credit", "taxes"])),
       as_of=st.one_of(st.none(), TEXT, st.sampled_from(["2026-01-01", "2026-02-30T00:00:00",
                                                         "1900-01-01T00:00:00Z"])))
def test_get_status(restrictions_http, code, sector, as_of):
    params = {k: v for k, v in (("sector", sector), ("as_of", as_of)) if v is not None}
    check(restrictions_http.get(f"/v1/entities/{quote(code, safe='')}/status", params=params))


@settings(max_examples=1200)
@given(body=st.one_of(JSON, st.fixed_dictionaries({"codes": st.one_of(
    JSON, st.lists(TEXT, max_size=20))}, optional={"as_of": JSON, "sector": JSON})))
def test_post_status_batch(restrictions_http, body):
    check(restrictions_http.post("/v1/status:batch", json=body))


@settings(max_examples=500)
@given(params=st.dictionaries(st.sampled_from(["since", "limit", "cursor", "$gt"]), TEXT,
                              max_size=3))
def test_get_changes(restrictions_http, params):
    check(restrictions_http.get("/v1/changes", params=params))


def test_an_oversized_body_is_413_not_read(violations_http):
    response = violations_http.post("/v1/violations", data=b"[" + b"1," * 1_100_000 + b"1]",
                                    headers={"Content-Type": "application/json"}, timeout=60)
    assert response.status_code == 413
    assert "bytes" in response.json()["error"]


def test_a_non_json_body_names_the_problem(violations_http):
    response = violations_http.post("/v1/violations", data="{not json")
    assert response.status_code == 400 and "JSON" in response.json()["error"]
    assert json.loads(response.text)

