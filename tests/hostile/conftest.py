"""The hostile-bus suite reuses the integration fixtures (real broker, real store) and the
fuzz suite's deterministic hypothesis profile and per-test vhosts."""
from tests.fuzz.conftest import *  # noqa: F401,F403
