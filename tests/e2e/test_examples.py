"""The client examples run against the local system."""
import subprocess
import sys

import pytest
import requests


pytestmark = pytest.mark.e2e


def test_agency_example_publishes_a_record_that_is_recorded(system):
    from shared.agency_client import _pika_uri
    result = subprocess.run([sys.executable, "examples/agency_publish.py",
                             _pika_uri(system.amqp_uri)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    document = result.stdout.split("document=")[1].strip()
    found = system.wait_for(lambda: requests.get(system.url(
        "violations", f"/v1/violations/SAMR-110000/{document}")).ok,
        message="the example's record to be stored")
    assert found
