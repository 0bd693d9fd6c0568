"""The client examples run against the local system."""
import os
import subprocess
import sys

import pytest
from services.restrictions.audit import find_answer


pytestmark = pytest.mark.e2e


def test_agency_example_publishes_a_record_that_is_recorded(system):
    from shared.agency_client import _pika_uri
    result = subprocess.run([sys.executable, "examples/agency_publish.py",
                             _pika_uri(system.agency_uri("SAMR"))], capture_output=True, text=True,
                            env={**os.environ, "LIANCHEN_KEY": system.key("agency", "SAMR")},
                            timeout=60)
    assert result.returncode == 0, result.stderr
    document = result.stdout.split("document=")[1].strip()
    regulator = system.session("regulator", "samr")
    found = system.wait_for(lambda: regulator.get(system.url(
        "violations", f"/v1/violations/SAMR-110000/{document}")).ok,
        message="the example's record to be stored")
    assert found


def test_gatekeeper_example_checks_a_status_and_proves_what_it_was_told(system):
    from shared.agency_client import AgencyPublisher
    from tests.factories import violation
    body = violation()
    gatekeeper = system.session("gatekeeper", "example-bank")
    with AgencyPublisher(system.agency_uri("FJAMR"), system.key("agency", "FJAMR")) as agency:
        agency.publish(body)
    system.wait_for(lambda: gatekeeper.get(system.url(
        "restrictions", f"/v1/entities/{body['uscc']}/status")).json()["record"] == "restricted",
        message="the entity to be restricted")

    result = subprocess.run(
        [sys.executable, "examples/gatekeeper_check.py", body["uscc"],
         system.url("restrictions")], capture_output=True, text=True, timeout=60,
        env={**os.environ, "LIANCHEN_KEY": system.key("gatekeeper", "example-bank")})
    assert result.returncode == 0, result.stderr
    assert "PROHIBITED" in result.stdout and "decision: refuse" in result.stdout
    assert "[consideration]" in result.stdout  # Order 44 art. 15(一), told as what it is
    answer_id = result.stdout.split("answer_id=")[1].split()[0]
    assert f"verified: answer {answer_id}" in result.stdout
    recorded = find_answer(system.db("restrictions").audit, answer_id)
    assert recorded["asked_by"] == "gatekeeper:example-bank"
    assert recorded["answer"]["uscc"] == body["uscc"] and recorded["answer"]["may_pass"] is False

    # another gate-keeper cannot use this bank's answer id
    other = system.session("gatekeeper", "other-bank")
    assert other.get(system.url("restrictions", f"/v1/answers/{answer_id}")).status_code == 404


def test_the_make_run_demo_shows_prohibitions_only_where_the_law_gives_them(system):
    """shared/demo.py (what `make run` ends with) against the running system: a food licence
    revoked and the serious list prohibit market access, procurement and honours, and the rest
    is told as considerations, stricter review, supervision and information."""
    env = {**os.environ, "AMQP_URI": system.amqp_uri, "DB_PREFIX": system.db_prefix,
           "AGENCY_AMQP_URI": system.agency_uri("SXAMR"),
           **{f"{s.upper()}_URL": system.url(s) for s in
              ("registry", "violations", "scoring", "restrictions", "notifications", "repair")}}
    result = subprocess.run([sys.executable, "-m", "shared.demo"], capture_output=True,
                            text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "prohibited in 3 of 8 sectors (market_access, procurement, honours)" in out
    assert "FL-ENT [prohibit]" in out and "GP-EXCL [prohibit]" in out
    assert "SL-LIC [consideration]" in out and "SL-NCP [stricter_review]" in out
    assert "第一百三十五条: 「被吊销许可证的食品生产经营者" in out
    assert "SL-PLAT [inform]" in out  # the platform's notice
    # issue 21: the registrar's check of the decision's persons, and the registry's flag
    assert "may not be legal_representative: SL-LR" in out
    assert "may not be food_management: FL-RM" in out
    assert "recorded and FLAGGED: SL-LR" in out
