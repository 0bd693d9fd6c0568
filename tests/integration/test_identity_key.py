"""The services holding the identity key refuse to start without it outside development."""
import os
import subprocess
import sys

import pytest

from tests.system import ROOT, free_port

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("service", ["violations", "registry", "restrictions"])
@pytest.mark.parametrize("key, said", [(None, "LIANCHEN_PII_KEY is not set"),
                                       ("00" * 16, "at least 32 random bytes")])
def test_a_key_holder_does_not_start_without_a_proper_key(service, key, said, rabbit_config,
                                                          db_prefix):
    env = {k: v for k, v in os.environ.items() if k not in ("LIANCHEN_DEV", "LIANCHEN_PII_KEY")}
    env.update(AMQP_URI=rabbit_config["AMQP_URI"], DB_PREFIX=db_prefix,
               WEB_SERVER_ADDRESS=f"127.0.0.1:{free_port()}")
    if key:
        env["LIANCHEN_PII_KEY"] = key
    done = subprocess.run([sys.executable, "-m", "nameko", "run", "--config",
                           "infra/nameko.yaml", f"services.{service}.service"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert said in done.stdout + done.stderr
