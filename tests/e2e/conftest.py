import pytest

from tests.system import System


@pytest.fixture(scope="session")
def system():
    """All five services as processes on a fresh vhost and database prefix."""
    running = System().start()
    yield running
    running.stop()
