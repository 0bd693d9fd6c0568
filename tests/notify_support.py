"""Support for notification tests and the benchmark: a real local webhook receiver, and a
``System`` that cleans up without listing databases.

The receiver verifies every signature (``services.notifications.signing.verify``), records
each request (raw body, headers, outcome), counts duplicates by notice id, and can misbehave
on purpose per path: answer a status, close the connection without answering, answer slowly,
or hang until released. It runs in a thread (a green one under eventlet in tests).
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from contracts.notifications import KIND_HEADER, NOTICE_ID_HEADER, SIGNATURE_HEADER
from services.notifications.signing import InvalidSignature, verify
from tests.system import MONGO_URI, System, free_port


@dataclass
class Request:
    path: str
    notice_id: str | None
    kind: str | None
    body: bytes
    headers: dict
    verified: bool
    error: str | None
    answer: object
    at: float = field(default_factory=time.monotonic)

    def json(self) -> dict:
        return json.loads(self.body)


class Receiver:
    """``behave[path]`` is ``"ok"`` (default), an HTTP status, ``"close"``, ``("slow", s)``,
    ``"hang"`` (until ``release()``), ``"endless"`` (200 with a 1 GiB body of which it sends
    256 KiB, then stalls) or a function ``(request) -> one of those``."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.secrets: dict[str, str] = {}
        self.behave: dict[str, object] = {}
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        self.released = threading.Event()
        self.server = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> "Receiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body are separate writes

            def log_message(self, *args):
                pass

            def do_POST(self):
                receiver._handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.released.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def release(self) -> None:
        self.released.set()

    # -- what arrived ------------------------------------------------------------------------
    def accepted(self, path: str) -> list[Request]:
        """Verified requests answered 2xx, in arrival order (duplicates included)."""
        with self.lock:
            return [r for r in self.requests if r.path == path and r.verified and r.answer == 200]

    def unique(self, path: str) -> dict[str, Request]:
        """The first accepted request of every notice id: what a receiver applies."""
        seen: dict[str, Request] = {}
        for r in self.accepted(path):
            seen.setdefault(r.notice_id, r)
        return seen

    def duplicates(self, path: str) -> int:
        return len(self.accepted(path)) - len(self.unique(path))

    def all(self, path: str) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if r.path == path]

    # -- the handler -------------------------------------------------------------------------
    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length)
        path = handler.path
        secret = self.secrets.get(path)
        verified, error = False, None
        try:
            if secret is None:
                raise InvalidSignature(f"no secret configured for {path}")
            verify(secret, body, handler.headers.get(SIGNATURE_HEADER))
            verified = True
        except InvalidSignature as exc:
            error = str(exc)
        request = Request(path, handler.headers.get(NOTICE_ID_HEADER),
                          handler.headers.get(KIND_HEADER), body, dict(handler.headers),
                          verified, error, None)
        behaviour = self.behave.get(path, "ok")
        if callable(behaviour):
            behaviour = behaviour(request)
        if not verified:
            behaviour = 401
        if behaviour == "close":
            request.answer = "closed"
            self._record(request)
            handler.close_connection = True
            handler.connection.close()
            return
        if behaviour == "hang":
            self.released.wait(60)
            behaviour = "ok"
        if behaviour == "endless":
            request.answer = 200
            self._record(request)
            try:
                handler.send_response(200)
                handler.send_header("Content-Length", str(1 << 30))
                handler.end_headers()
                for _ in range(4):
                    handler.wfile.write(b"x" * 65536)
                handler.wfile.flush()
                self.released.wait(5)
            except OSError:
                pass
            handler.close_connection = True
            return
        if isinstance(behaviour, tuple) and behaviour[0] == "slow":
            time.sleep(behaviour[1])
            behaviour = "ok"
        status = 200 if behaviour == "ok" else int(behaviour)
        request.answer = status
        self._record(request)
        payload = json.dumps({"ok": status == 200, "error": error}).encode()
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)
        except OSError:
            pass  # the sender gave up waiting (timeout): it will retry

    def _record(self, request: Request) -> None:
        with self.lock:
            self.requests.append(request)


class NotifySystem(System):
    """``System`` whose ``stop`` drops its databases by name. FerretDB 1.24's listDatabases
    (which ``System.stop`` uses) has been seen here to stall for good while every single
    database kept answering; by name, clean-up never depends on it."""

    def stop(self) -> None:
        import pymongo
        from shared import broker_admin
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except Exception:
                process.kill()
        self.processes.clear()
        try:
            broker_admin.delete_vhost(self.vhost)
        except Exception:
            pass
        client = pymongo.MongoClient(MONGO_URI, serverSelectionTimeoutMS=5000)
        for service in (*self.services, "auth"):
            client.drop_database(f"{self.db_prefix}_{service}")
        client.close()
