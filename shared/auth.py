"""Credentials, roles and per-credential rate limits.

A credential is an API key ``lc_<key_id>.<secret>`` sent as ``Authorization: Bearer <key>`` on
HTTP and as the ``authorization`` header of an AMQP intake message. Keys live in the
``<DB_PREFIX>_auth`` database (collection ``keys``), shared by every service: the key id in
clear, the secret only as HMAC-SHA256 under a server secret (``settings.server_secret`` in the
same database, generated once). Keys are 192 random bits, so a slow hash adds nothing against
guessing, while PBKDF2 (120,000 rounds, ~40 ms) on every wrong secret for a known key id ran
before any rate limit and blocked the whole eventlet process. Keys created with PBKDF2 still
verify, and are rehashed to HMAC at their first successful verification. The secret is shown
once, when the key is created (``lianchen keys create``).

Roles:

- ``agency``: records violations, only within its own jurisdiction (subject = agency code);
- ``gatekeeper``: queries restriction status; its answers are audited under its name;
- ``platform``: receives notices and posts feedback for its own merchants (subject = platform id);
- ``regulator``: risk classes, inspection plans, repair and objection decisions;
- ``registrar``: registration and licence offices: whether a person may take a position
  (``POST /v1/persons:status``) and the person-measure feed; its answers are audited;
- ``administrator``: catalog, keys, dead letters; admitted everywhere.

A verified key is cached in the process for ``AUTH_CACHE_SECONDS`` (default 60): revocation
takes effect within that time (a retried or replayed message's signed admission is checked
against the store every time). Rate limits are a
token bucket per key and per process (``rate`` requests per second, burst ``2 * rate``), so with
N instances a client may reach N times its rate at most.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from nameko.extensions import DependencyProvider

from pymongo.errors import DuplicateKeyError

from shared.mongo import connect, database_name

ROLES = ("agency", "gatekeeper", "platform", "regulator", "registrar", "administrator")
ADMIN = "administrator"
PRINCIPAL_KEY = "principal"
# A retried or dead-lettered intake message carries who was admitted, signed, never the key.
PRINCIPAL_HEADER = "x-lianchen-principal"
SIGNATURE_HEADER = "x-lianchen-principal-signature"
PBKDF2_ITERATIONS = 120_000  # keys created before HMAC hashing; rehashed when next verified
HMAC_SCHEME = "hmac-sha256"
DEFAULT_RATE = 200.0


class AuthError(Exception):
    """A request without a valid credential (401) or with the wrong role (403)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class RateLimited(Exception):
    def __init__(self, retry_after: float):
        super().__init__(f"rate limit exceeded; retry after {retry_after:.2f}s")
        self.retry_after = retry_after


@dataclass(frozen=True)
class Principal:
    key_id: str
    role: str
    subject: str
    rate: float = DEFAULT_RATE

    def encode(self) -> str:
        """The form carried in nameko context data (and so in every downstream event)."""
        return f"{self.role}:{self.subject}:{self.key_id}"

    @classmethod
    def decode(cls, value: str | None) -> "Principal | None":
        if not value:
            return None
        role, subject, key_id = (value.split(":", 2) + ["", ""])[:3]
        return cls(key_id=key_id, role=role, subject=subject)

    def admits(self, roles) -> bool:
        return self.role == ADMIN or self.role in roles


SYSTEM = Principal(key_id="-", role=ADMIN, subject="system")


def hash_secret(secret: str, salt: bytes, iterations: int = PBKDF2_ITERATIONS) -> str:
    return hashlib.pbkdf2_hmac("sha256", secret.encode(), salt, iterations).hex()


def split_key(token: str) -> tuple[str, str]:
    if not token.startswith("lc_") or "." not in token:
        raise AuthError(401, "malformed credential: expected 'lc_<key id>.<secret>'")
    key_id, secret = token[3:].split(".", 1)
    if not key_id or not secret or len(token) > 200:
        raise AuthError(401, "malformed credential: expected 'lc_<key id>.<secret>'")
    return key_id, secret


class KeyStore:
    """Creates, verifies (with a cache) and revokes keys in ``<prefix>_auth.keys``."""

    def __init__(self, db, cache_seconds: float = 60.0):
        self.db = db
        self.keys = db["keys"]
        self._secret: bytes | None = None
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, Principal]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, config: dict, client=None) -> "KeyStore":
        client = client or connect(config.get("MONGO_URI"))
        return cls(client[database_name(config, "auth")],
                   float(config.get("AUTH_CACHE_SECONDS", 60)))

    def server_secret(self) -> bytes:
        """The secret every service hashes keys and signs admissions with, generated once into
        ``<prefix>_auth.settings`` (next to the keys: whoever can read it can already create
        keys). One source for every process, the CLI included."""
        if self._secret is None:
            settings = self.db["settings"]
            doc = settings.find_one({"_id": "server_secret"})
            if doc is None:
                try:
                    settings.insert_one({"_id": "server_secret",
                                         "secret": secrets.token_hex(32),
                                         "created_at": datetime.now(timezone.utc)})
                except DuplicateKeyError:  # another process was first: take its secret
                    pass
                doc = settings.find_one({"_id": "server_secret"})
            self._secret = bytes.fromhex(doc["secret"])
        return self._secret

    def _message_mac(self, principal: str, routing_key: str, body: bytes) -> str:
        material = b"\n".join((b"lianchen-message-v1", principal.encode(),
                                str(routing_key or "").encode(), hashlib.sha256(body).digest()))
        return hmac.new(self.server_secret(), material, hashlib.sha256).hexdigest()

    def sign_message(self, principal: Principal, routing_key: str, body: bytes) -> dict:
        """Headers a retried or dead-lettered copy of an admitted message carries instead
        of the credential: who was admitted, bound to this body and routing key."""
        value = principal.encode()
        return {PRINCIPAL_HEADER: value,
                SIGNATURE_HEADER: self._message_mac(value, routing_key, body)}

    def verify_signed(self, headers: dict, routing_key: str, body: bytes) -> Principal:
        """The principal a retried or replayed message was admitted as, if the signature
        holds and its key is still valid (a key revoked since: refused); else AuthError."""
        value, signature = headers.get(PRINCIPAL_HEADER), headers.get(SIGNATURE_HEADER)
        if not isinstance(value, str) or not isinstance(signature, str):
            raise AuthError(401, "missing credential: set the 'authorization' header")
        if not hmac.compare_digest(self._message_mac(value, routing_key, body), signature):
            raise AuthError(401, "the message's admission signature does not hold")
        claimed = Principal.decode(value)
        doc = self.keys.find_one({"_id": claimed.key_id})
        if (doc is None or doc.get("revoked_at") is not None or doc.get("role") != claimed.role
                or doc.get("subject") != claimed.subject):
            raise AuthError(401, "the message's credential is unknown or revoked")
        return Principal(key_id=claimed.key_id, role=claimed.role, subject=claimed.subject,
                         rate=float(doc.get("rate", DEFAULT_RATE)))

    def create(self, role: str, subject: str, rate: float = DEFAULT_RATE,
               note: str = "") -> str:
        if role not in ROLES:
            raise ValueError(f"role: must be one of {', '.join(ROLES)}, got {role!r}")
        if not subject or ":" in subject or len(subject) > 64:
            raise ValueError("subject: 1-64 characters, no ':'")
        if rate <= 0:
            raise ValueError("rate: must be positive")
        key_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(24)
        self.keys.insert_one({
            "_id": key_id, "role": role, "subject": subject, "rate": float(rate),
            "scheme": HMAC_SCHEME, "hash": self._key_hash(key_id, secret), "note": note[:200],
            "created_at": datetime.now(timezone.utc), "revoked_at": None,
        })
        return f"lc_{key_id}.{secret}"

    def _key_hash(self, key_id: str, secret: str) -> str:
        return hmac.new(self.server_secret(), f"lianchen-key-v1\n{key_id}\n{secret}".encode(),
                        hashlib.sha256).hexdigest()

    def _secret_matches(self, doc: dict, key_id: str, secret: str) -> bool:
        if doc.get("scheme") == HMAC_SCHEME:
            return hmac.compare_digest(self._key_hash(key_id, secret), str(doc.get("hash")))
        # created before HMAC hashing: PBKDF2 once more, then rehashed
        expected = hash_secret(secret, bytes.fromhex(doc["salt"]),
                               doc.get("iterations", PBKDF2_ITERATIONS))
        if not hmac.compare_digest(expected, doc["hash"]):
            return False
        self.keys.update_one({"_id": key_id, "hash": doc["hash"]}, {
            "$set": {"scheme": HMAC_SCHEME, "hash": self._key_hash(key_id, secret)},
            "$unset": {"salt": "", "iterations": ""}})
        return True

    def revoke(self, key_id: str) -> bool:
        result = self.keys.update_one({"_id": key_id}, {"$set": {
            "revoked_at": datetime.now(timezone.utc)}})
        self._cache = {k: v for k, v in self._cache.items() if v[1].key_id != key_id}
        return result.matched_count == 1

    def list(self) -> list[dict]:
        return [{k: v for k, v in doc.items() if k not in ("hash", "salt", "scheme")}
                for doc in self.keys.find({})]

    def verify(self, token: str) -> Principal:
        """The principal for ``token``, or ``AuthError(401)``."""
        digest = hashlib.sha256(token.encode()).hexdigest()  # cache key, never stored
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached and cached[0] > now:
            return cached[1]
        key_id, secret = split_key(token)
        doc = self.keys.find_one({"_id": key_id})
        if doc is None or doc.get("revoked_at") is not None:
            raise AuthError(401, "unknown or revoked credential")
        if not self._secret_matches(doc, key_id, secret):
            raise AuthError(401, "unknown or revoked credential")
        principal = Principal(key_id=key_id, role=doc["role"], subject=doc["subject"],
                              rate=float(doc.get("rate", DEFAULT_RATE)))
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (now + self.cache_seconds, principal)
        return principal


class RateLimiter:
    """Token bucket per key id: ``rate`` per second, burst of ``2 * rate``."""

    def __init__(self):
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, principal: Principal) -> None:
        now = time.monotonic()
        capacity = max(2 * principal.rate, 1.0)
        tokens, last = self._buckets.get(principal.key_id, (capacity, now))
        tokens = min(capacity, tokens + (now - last) * principal.rate)
        if tokens < 1.0:
            self._buckets[principal.key_id] = (tokens, now)
            raise RateLimited((1.0 - tokens) / principal.rate)
        self._buckets[principal.key_id] = (tokens - 1.0, now)


def bearer(header: str | None) -> str:
    if not header:
        raise AuthError(401, "missing credential: send 'Authorization: Bearer <key>'")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError(401, "malformed Authorization header: expected 'Bearer <key>'")
    return token.strip()


class Caller(DependencyProvider):
    """Injects the ``Principal`` of the request or message being handled.

    Work started by the system itself (timers, events without a principal) runs as ``SYSTEM``.
    """

    def get_dependency(self, worker_ctx):
        return Principal.decode(worker_ctx.context_data.get(PRINCIPAL_KEY)) or SYSTEM
