"""Start the six services as real processes on a fresh vhost and database prefix.

Used by the end-to-end tests and the benchmarks: nothing is mocked, every message crosses the
real broker and every document the real store.
"""
from __future__ import annotations

import ctypes
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from urllib.parse import urlsplit, urlunsplit
from pathlib import Path

import pymongo
import requests

from shared import broker_admin, bususers
from shared.auth import KeyStore

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ("registry", "violations", "scoring", "restrictions", "notifications", "repair")
KEY_HOLDERS = ("registry", "violations", "restrictions")  # the services that turn documents into person ids
AMQP_BASE = os.environ.get("AMQP_URI", "amqp://guest:guest@127.0.0.1:5672/")
MONGO_URI = os.environ.get("MONGO_URI", "mongodb://127.0.0.1:27017/")


def _die_with_parent() -> None:
    """Children are SIGKILLed when the test or benchmark process dies, however it dies.
    (SIGTERM was not enough: nameko's graceful stop waits for its consumers, and when the run
    was killed its vhost was often deleted too; such processes lived on for hours.)"""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class System:
    def __init__(self, instances: int = 1, log_dir: Path | None = None, extra_env=None,
                 services: tuple[str, ...] = SERVICES, least_privilege: bool = True):
        """``least_privilege``: every service connects as its own broker user
        (``shared.bususers``, namespace = the vhost), agencies through ``agency_uri``; off,
        every party is the base URI's user (guest), as in the in-process integration tests."""
        self.services = services
        self.tag = f"e2e{uuid.uuid4().hex[:8]}"
        self.vhost = self.tag
        self.amqp_uri = urlunsplit(urlsplit(AMQP_BASE)._replace(path=f"/{self.vhost}"))
        self.db_prefix = self.tag
        self.instances = instances
        self.log_dir = log_dir or ROOT / "var" / "log" / "e2e"
        # A real identity key (not the development one) for the two services that hold it;
        # the others run without it (and without the development flag)
        self.identity_key = secrets.token_hex(32)
        self.extra_env = extra_env or {}
        self.ports: dict[str, list[int]] = {}
        self.processes: list[subprocess.Popen] = []
        self._keys: dict[tuple, str] = {}
        self.by_name: dict[tuple[str, int], subprocess.Popen] = {}
        self.least_privilege = least_privilege
        self.broker_users: dict[str, str] = {}  # user -> password

    def user_uri(self, user: str) -> str:
        """This vhost's AMQP URI as ``user`` (one of ``broker_users``)."""
        return broker_admin.with_user(self.amqp_uri, user, self.broker_users[user])

    def service_uri(self, service: str) -> str:
        if not self.least_privilege:
            return self.amqp_uri
        return self.user_uri(bususers.service_user(self.vhost, service))

    def agency_uri(self, code: str) -> str:
        """An agency's broker user (created on first use): writes lianchen.intake only."""
        if not self.least_privilege:
            return self.amqp_uri
        user = bususers.agency_user(self.vhost, code)
        if user not in self.broker_users:
            self.broker_users.update(broker_admin.create_users(
                self.vhost, self.vhost, agencies=[code], only_extra=True))
        return self.user_uri(user)

    def platform_uri(self, platform_id: str) -> str:
        """An AMQP notice subscriber's broker user: reads notices.<id> only."""
        if not self.least_privilege:
            return self.amqp_uri
        user = bususers.platform_user(self.vhost, platform_id)
        if user not in self.broker_users:
            self.broker_users.update(broker_admin.create_users(
                self.vhost, self.vhost, platforms=[platform_id], only_extra=True))
        return self.user_uri(user)

    def dispatcher(self, source: str):
        """nameko's standalone event dispatcher, publishing as ``source``'s broker user with
        ``user_id`` set (the consumers refuse ``<source>.events`` from anyone else)."""
        from nameko.standalone.events import event_dispatcher
        uri = self.service_uri(source)
        return event_dispatcher({"AMQP_URI": uri}, user_id=bususers.user_of(uri))

    @property
    def operator_uri(self) -> str:
        if not self.least_privilege:
            return self.amqp_uri
        return self.user_uri(bususers.operator_user(self.vhost))

    @property
    def monitor_mgmt_url(self) -> str:
        base = os.environ.get("RABBIT_MGMT_URL", "http://guest:guest@127.0.0.1:15672")
        if not self.least_privilege:
            return base
        user = bususers.monitor_user(self.vhost)
        return broker_admin.with_user(base, user, self.broker_users[user])

    def url(self, service: str, path: str = "", instance: int = 0) -> str:
        return f"http://127.0.0.1:{self.ports[service][instance]}{path}"

    def start(self, timeout: float = 60.0) -> "System":
        broker_admin.create_vhost(self.vhost)
        if self.least_privilege:
            self.broker_users = broker_admin.create_users(self.vhost, self.vhost)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for service in self.services:
            for i in range(self.instances):
                self.ports.setdefault(service, []).append(free_port())
                self._spawn(service, i)
        for service in self.services:
            for i in range(self.instances):
                self.wait_healthy(service, i, timeout)
        return self

    def _spawn(self, service: str, i: int) -> None:
        nameko = [sys.executable, "-m", "nameko", "run", "--config", "infra/nameko.yaml"]
        port = self.ports[service][i]
        env = {**{k: v for k, v in os.environ.items() if k != "LIANCHEN_DEV"}, "AMQP_URI": self.service_uri(service), "MONGO_URI": MONGO_URI,
               "DB_PREFIX": self.db_prefix, "WEB_SERVER_ADDRESS": f"127.0.0.1:{port}",
               "RETRY_BASE_DELAY_MS": "50", "PYTHONUNBUFFERED": "1",
               "RABBIT_MGMT_URL": self.monitor_mgmt_url, **self.extra_env}
        env.pop("LIANCHEN_PII_KEY", None)
        if service in KEY_HOLDERS:
            env["LIANCHEN_PII_KEY"] = self.extra_env.get("LIANCHEN_PII_KEY", self.identity_key)
        log = open(self.log_dir / f"{self.tag}-{service}-{i}.log", "ab")
        process = subprocess.Popen(
            nameko + [f"services.{service}.service"], cwd=ROOT, env=env,
            stdout=log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        self.processes.append(process)
        self.by_name[(service, i)] = process

    def wait_healthy(self, service: str, i: int = 0, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if requests.get(self.url(service, "/health", i), timeout=5).ok:
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{service} did not become healthy; see {self.log_dir}")
            time.sleep(0.2)

    def dead(self) -> list[str]:
        """Instances whose process has exited (not killed by this object)."""
        return [f"{service}-{i} (exit {process.returncode}; log {self.tag}-{service}-{i}.log)"
                for (service, i), process in self.by_name.items() if process.poll() is not None]

    def kill(self, service: str, i: int = 0) -> None:
        """SIGKILL one instance: no shutdown, no acks, whatever it held in memory is gone."""
        process = self.by_name[(service, i)]
        process.kill()
        process.wait(timeout=15)

    def restart(self, service: str, i: int = 0, timeout: float = 60.0) -> None:
        self._spawn(service, i)
        self.wait_healthy(service, i, timeout)

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        self.processes.clear()
        try:
            broker_admin.delete_vhost(self.vhost)
            if self.least_privilege:
                broker_admin.delete_users(self.vhost)
        except Exception:
            pass
        # Dropped by name: listing every database on FerretDB can wait behind another
        # client's long write.
        client = pymongo.MongoClient(MONGO_URI, serverSelectionTimeoutMS=5000)
        for service in (*self.services, "auth"):
            client.drop_database(f"{self.db_prefix}_{service}")
        client.close()

    def key(self, role: str = "administrator", subject: str = "ops",
            rate: float = 100_000) -> str:
        """A credential in this system's key store (one per role, subject and rate)."""
        cache_key = (role, subject, rate)
        if cache_key not in self._keys:
            self._keys[cache_key] = KeyStore(self.db("auth")).create(role, subject, rate=rate)
        return self._keys[cache_key]

    def session(self, role: str | None = "administrator", subject: str = "ops",
                rate: float = 100_000) -> requests.Session:
        """A ``requests`` session carrying a credential (``role=None``: none at all)."""
        session = requests.Session()
        if role is not None:
            session.headers["Authorization"] = f"Bearer {self.key(role, subject, rate)}"
        return session

    def db(self, service: str):
        client = pymongo.MongoClient(MONGO_URI, tz_aware=True, serverSelectionTimeoutMS=5000)
        return client[f"{self.db_prefix}_{service}"]

    def wait_for(self, predicate, timeout=30.0, interval=0.1, message="condition"):
        return wait_for(predicate, timeout, interval, message)


def wait_for(predicate, timeout=30.0, interval=0.1, message="condition"):
    """Poll ``predicate`` until it returns something truthy; fail with ``message``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")
