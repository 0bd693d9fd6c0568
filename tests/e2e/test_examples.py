"""The client examples run against the local system."""
import os
import subprocess
import sys

import pytest


pytestmark = pytest.mark.e2e


def test_agency_example_publishes_a_record_that_is_recorded(system):
    from shared.agency_client import _pika_uri
    result = subprocess.run([sys.executable, "examples/agency_publish.py",
                             _pika_uri(system.amqp_uri)], capture_output=True, text=True,
                            env={**os.environ, "LIANCHEN_KEY": system.key("agency", "SAMR")},
                            timeout=60)
    assert result.returncode == 0, result.stderr
    document = result.stdout.split("document=")[1].strip()
    regulator = system.session("regulator", "samr")
    found = system.wait_for(lambda: regulator.get(system.url(
        "violations", f"/v1/violations/SAMR-110000/{document}")).ok,
        message="the example's record to be stored")
    assert found
