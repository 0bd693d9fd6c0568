"""Webhook signatures: HMAC-SHA256 over ``f"{timestamp}.{body}"`` with the subscriber's secret.

Header ``X-Lianchen-Signature: t=<unix seconds>,v1=<hex digest>``. The timestamp is signed
with the body, so a captured request cannot be replayed later than the receiver's replay
window (``REPLAY_WINDOW_SECONDS``) and the body cannot be changed without the secret.
Receivers may copy ``verify`` (standard library only); docs/notifications.md has it too.
"""
from __future__ import annotations

import hashlib
import hmac
import time

from contracts.notifications import REPLAY_WINDOW_SECONDS


class InvalidSignature(Exception):
    pass


def sign(secret: str, body: bytes, timestamp: int) -> str:
    digest = hmac.new(secret.encode("utf-8"), str(timestamp).encode("ascii") + b"." + body,
                      hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def signature_header(secret: str, body: bytes, now: float | None = None) -> str:
    return sign(secret, body, int(now if now is not None else time.time()))


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
