"""A private broker and store for one benchmark: its own RabbitMQ node, PostgreSQL cluster and
FerretDB on ports of their own, state in a temporary directory, started and stopped with the
same scripts as ``make infra`` (``infra/local/*.sh``, told the ports and the state directory
through their environment).

Why: the counters a cost benchmark reads (``pg_stat_database``, the broker's publish and
delivery totals, the processes' CPU) are global to a server. On the developer's own servers
other tests run at the same time and their work would be counted as ours.

    with PrivateInfra() as infra:      # sets AMQP_URI, MONGO_URI, RABBIT_MGMT_URL here
        ...                            # import tests.system only after this point
        infra.store_counters(), infra.broker_counters(), infra.roots()
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import requests

ROOT = Path(__file__).resolve().parent.parent
LOCAL = ROOT / "infra" / "local"
# Counters of the store's own database under FerretDB (one PostgreSQL transaction per store
# operation on FerretDB 1.x; rows as PostgreSQL counts them).
PG_COLUMNS = ("xact_commit", "xact_rollback", "tup_inserted", "tup_updated", "tup_deleted",
              "tup_fetched", "tup_returned")


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def pick_ports(count: int, low: int = 21000, high: int = 44000) -> list[int]:
    """``count`` free ports whose +20000 is free too (RabbitMQ's distribution port)."""
    ports: list[int] = []
    port = low + os.getpid() % 1000 * 20
    while len(ports) < count:
        port += 1
        if port > high:
            raise RuntimeError("no free ports for the private infrastructure")
        if _port_free(port) and _port_free(port + 20000):
            ports.append(port)
    return ports


class PrivateInfra:
    def __init__(self, label: str = "bench"):
        self.amqp_port, self.mgmt_port, self.mongo_port, self.pg_port = pick_ports(4)
        # Under /var/tmp, readable by others: as root, PostgreSQL runs as the postgres user and
        # must reach its data directory below this one.
        self.var = Path(tempfile.mkdtemp(prefix=f"lianchen-{label}-", dir="/var/tmp"))
        self.var.chmod(0o755)
        self.nodename = f"{label}-{os.getpid()}@localhost"
        self.amqp_uri = f"amqp://guest:guest@127.0.0.1:{self.amqp_port}/"
        self.mongo_uri = f"mongodb://127.0.0.1:{self.mongo_port}/"
        self.mgmt_url = f"http://guest:guest@127.0.0.1:{self.mgmt_port}"
        self.started = False

    # -- lifecycle -----------------------------------------------------------------------------
    def _env(self) -> dict:
        env = {k: v for k, v in os.environ.items()
               if k not in ("AMQP_URI", "MONGO_URI", "RABBIT_MGMT_URL")}  # set: "start nothing"
        env.update({"LIANCHEN_VAR": str(self.var), "RABBITMQ_NODENAME": self.nodename,
                    "RABBITMQ_NODE_PORT": str(self.amqp_port),
                    "RABBITMQ_MANAGEMENT_PORT": str(self.mgmt_port),
                    "FERRETDB_PORT": str(self.mongo_port), "PG_PORT": str(self.pg_port),
                    "FERRETDB_BACKEND": "postgresql"})
        return env

    def _script(self, name: str, command: str) -> None:
        subprocess.run(["bash", str(LOCAL / name), command], env=self._env(), check=True,
                       stdout=subprocess.DEVNULL if command == "stop" else None)

    def start(self) -> "PrivateInfra":
        print(f"[infra] private RabbitMQ :{self.amqp_port} (management :{self.mgmt_port}), "
              f"FerretDB :{self.mongo_port} on PostgreSQL :{self.pg_port}, state {self.var}",
              flush=True)
        self.started = True
        self._script("rabbitmq.sh", "start")
        self._script("ferretdb.sh", "start")
        os.environ.update({"AMQP_URI": self.amqp_uri, "MONGO_URI": self.mongo_uri,
                           "RABBIT_MGMT_URL": self.mgmt_url})
        return self

    def stop(self) -> None:
        if not self.started:
            return
        for name in ("ferretdb.sh", "rabbitmq.sh"):  # ferretdb.sh stops its PostgreSQL too
            try:
                self._script(name, "stop")
            except subprocess.CalledProcessError as exc:
                print(f"[infra] {name} stop failed ({exc}); state left in {self.var}")
                return
        shutil.rmtree(self.var, ignore_errors=True)

    def __enter__(self) -> "PrivateInfra":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- what to count -------------------------------------------------------------------------
    def roots(self) -> dict[str, int]:
        """The pid at the root of each infrastructure part's process tree."""
        pg_dir = Path((self.var / "run" / "postgres.dir").read_text().strip())
        return {"broker (RabbitMQ)": _pid(self.var / "rabbitmq" / "rabbit.pid"),
                "store (FerretDB)": _pid(self.var / "run" / "ferretdb.pid"),
                "store (PostgreSQL under FerretDB)": _pid(pg_dir / "data" / "postmaster.pid")}

    def store_counters(self) -> dict[str, int]:
        """``pg_stat_database`` of FerretDB's database, after asking for a fresh snapshot."""
        pg_bin = sorted(Path("/usr/lib/postgresql").glob("*/bin/psql"))[-1]
        query = ("SELECT " + ", ".join(PG_COLUMNS) +
                 " FROM pg_stat_database WHERE datname = 'ferretdb'")
        out = subprocess.run([str(pg_bin), "-h", "127.0.0.1", "-p", str(self.pg_port), "-U",
                              "postgres", "-d", "postgres", "-tA", "-F", " ", "-c",
                              "SELECT pg_stat_clear_snapshot()", "-c", query],
                             capture_output=True, text=True, check=True).stdout.split()
        return dict(zip(PG_COLUMNS, map(int, out[-len(PG_COLUMNS):])))

    def broker_counters(self, vhost: str | None = None) -> dict[str, int]:
        """Messages published into the broker and delivered (or got) by consumers, in all
        (``vhost=None``) or in one vhost. The management API refreshes them every 5 s."""
        path = f"vhosts/{quote(vhost, safe='')}" if vhost else "overview"
        stats = requests.get(f"http://127.0.0.1:{self.mgmt_port}/api/{path}",
                             auth=("guest", "guest"), timeout=30).json().get("message_stats", {})
        return {"published": stats.get("publish", 0), "delivered": stats.get("deliver_get", 0),
                "redelivered": stats.get("redeliver", 0)}

    def deliveries_by_queue(self, vhost: str) -> dict[str, int]:
        """Messages delivered (or got) from each queue of ``vhost`` so far."""
        rows = requests.get(f"http://127.0.0.1:{self.mgmt_port}/api/queues/{quote(vhost, safe='')}",
                            params={"columns": "name,message_stats.deliver_get"},
                            auth=("guest", "guest"), timeout=30).json()
        return {row["name"]: (row.get("message_stats") or {}).get("deliver_get", 0)
                for row in rows}

    def queued(self, vhost: str) -> int:
        """Messages ready or unacknowledged in every queue of ``vhost``."""
        rows = requests.get(f"http://127.0.0.1:{self.mgmt_port}/api/queues/{quote(vhost, safe='')}",
                            params={"columns": "name,messages"}, auth=("guest", "guest"),
                            timeout=30).json()
        return sum(row.get("messages") or 0 for row in rows)


def _pid(path: Path) -> int:
    return int(path.read_text().split()[0])


def settle(seconds: float = 6.0) -> None:
    """Wait out the management API's statistics interval (5 s) before reading its totals."""
    time.sleep(seconds)
