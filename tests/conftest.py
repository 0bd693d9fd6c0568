# nameko >= 2.14 no longer monkey-patches for pytest: do it before anything imports sockets.
import warnings

warnings.filterwarnings("ignore", message=".*[Ee]ventlet is deprecated.*")
import eventlet  # noqa: E402

eventlet.monkey_patch()  # noqa: E402

import os  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("LOG_LEVEL", "WARNING")
# The tests may run without an identity key (shared.identity): the development flag, which
# only the tests and `make run` set. The end-to-end system sets a random real key instead.
os.environ.setdefault("LIANCHEN_DEV", "1")
# The tests' webhook receivers listen on loopback, which is refused by default
# (services/notifications/targets.py): allow it explicitly, as `make run` does.
os.environ.setdefault("NOTIFY_ALLOW_TARGETS", "127.0.0.0/8,::1/128")
