"""Webhook signatures, two ways, with the same secret(s) of the subscriber.

**Standard Webhooks** (https://www.standardwebhooks.com, verifiable with its maintained
libraries in every language): ``webhook-id`` (the notice id, the same on every retry),
``webhook-timestamp`` (Unix seconds) and ``webhook-signature: v1,<base64 HMAC-SHA256 over
"<id>.<timestamp>.<body>">``, one ``v1,`` entry per active secret separated by spaces. The key
is the secret's bytes: for a server-generated ``whsec_<base64>`` secret the decoded bytes (as
the libraries read it); for a secret a subscriber chose before, its UTF-8 bytes (give the
library ``base64(secret)``, see docs/notifications.md).

**``X-Lianchen-Signature: t=<unix seconds>,v1=<hex digest>``** (the form before, kept):
HMAC-SHA256 over ``f"{timestamp}.{body}"`` with the secret as UTF-8, one ``v1=`` per active
secret. The timestamp is signed with the body, so a captured request cannot be replayed later
than the receiver's replay window (``REPLAY_WINDOW_SECONDS``) and the body cannot be changed
without the secret. Receivers may copy ``verify`` (standard library only).

During a rotation both the new and the previous secret sign, until the previous one expires.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets as random_secrets
import time

from contracts.notifications import REPLAY_WINDOW_SECONDS


class InvalidSignature(Exception):
    pass


def sign(secret: str, body: bytes, timestamp: int) -> str:
    digest = hmac.new(secret.encode("utf-8"), str(timestamp).encode("ascii") + b"." + body,
                      hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def signature_header(secret: str | list[str], body: bytes, now: float | None = None) -> str:
    """``t=<seconds>,v1=<hex>[,v1=<hex>...]``: one ``v1`` per secret (rotation)."""
    timestamp = int(now if now is not None else time.time())
    keys = [secret] if isinstance(secret, str) else list(secret)
    return f"t={timestamp}," + ",".join(sign(s, body, timestamp).split(",", 1)[1] for s in keys)


STANDARD_PREFIX = "whsec_"
GENERATED_BYTES = 32  # 256 bits


def generate_secret() -> str:
    """A new server-generated secret: ``whsec_`` and 32 random bytes in base64."""
    return STANDARD_PREFIX + base64.b64encode(random_secrets.token_bytes(GENERATED_BYTES)).decode()


def standard_key(secret: str) -> bytes:
    """The HMAC key of ``secret`` for Standard Webhooks: a ``whsec_`` secret's decoded bytes,
    any other secret's UTF-8 bytes."""
    if secret.startswith(STANDARD_PREFIX):
        return base64.b64decode(secret[len(STANDARD_PREFIX):] + "==")
    return secret.encode("utf-8")


def standard_signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(standard_key(secret), f"{msg_id}.{timestamp}.".encode() + body,
                      hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def standard_headers(secrets: list[str], msg_id: str, body: bytes,
                     now: float | None = None) -> dict[str, str]:
    """``webhook-id``, ``webhook-timestamp`` and ``webhook-signature`` (one entry a secret)."""
    timestamp = int(now if now is not None else time.time())
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": " ".join(standard_signature(s, msg_id, timestamp, body)
                                          for s in secrets)}


def verify(secret: str, body: bytes, header: str | None, now: float | None = None,
           window: int = REPLAY_WINDOW_SECONDS) -> int:
    """The signed timestamp when ``header`` is a valid signature of ``body``; raises
    ``InvalidSignature`` saying why otherwise."""
    if not header:
        raise InvalidSignature("missing signature header")
    timestamp, candidates = None, []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1" and value:
            candidates.append(value)
    if timestamp is None or not candidates:
        raise InvalidSignature("malformed signature header: expected t=<seconds>,v1=<hex>")
    now = time.time() if now is None else now
    if abs(now - timestamp) > window:
        raise InvalidSignature(f"timestamp outside the {window} s replay window")
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    if not any(hmac.compare_digest(expected, candidate) for candidate in candidates):
        raise InvalidSignature("signature does not match the body")
    return timestamp
