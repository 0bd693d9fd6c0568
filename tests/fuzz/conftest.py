"""Fuzz tests reuse the integration fixtures (real broker and store) for endpoint fuzzing."""
import uuid
from urllib.parse import urlparse

import pytest
from hypothesis import HealthCheck, settings

from tests.integration.conftest import *  # noqa: F401,F403

# Deterministic in CI (the same cases every run: a failure is reproducible); the count is the
# issue's bar of 10,000 generated cases across contracts and endpoints.
settings.register_profile("lianchen", derandomize=True, deadline=None, database=None,
                          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                 HealthCheck.too_slow,
                                                 HealthCheck.data_too_large])
settings.load_profile("lianchen")


@pytest.fixture
def rabbit_config(request, rabbit_manager):
    """A fresh vhost per test, named from uuid4 (os.urandom). nameko's own fixture names its
    vhosts with ``random.choice`` in a background pipeline; hypothesis seeds ``random`` while
    it runs examples (derandomized here), so the pipeline handed out the same name twice and
    deleting one test's vhost deleted the next test's."""
    uri = urlparse(request.config.getoption("RABBIT_AMQP_URI"))
    username = uri.username
    vhost = f"nameko_test_fuzz_{uuid.uuid4().hex[:12]}"
    rabbit_manager.create_vhost(vhost)
    rabbit_manager.set_vhost_permissions(vhost, username, ".*", ".*", ".*")
    try:
        yield {"AMQP_URI": f"{uri.scheme}://{uri.netloc}/{vhost}", "username": username,
               "vhost": vhost}
    finally:
        try:
            rabbit_manager.delete_vhost(vhost)
        except Exception:  # noqa: BLE001 - already gone: nothing to clean
            pass
