"""Reading what a message carries, defensively: every header and body is the sender's word.

A consumer parses nothing from a message without these: a counter header that is not a number,
a partition key that is a table, a body that is compressed, huge, nested 100,000 deep or not
JSON must end in the queue's dead-letter queue with the reason, never stop the service.
"""
from __future__ import annotations

import json
import re
import uuid

# Context data a consumer takes from a message's headers: nothing else (no credential, no
# routing header) is forwarded on the events its worker dispatches.
CORRELATION_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
FORWARDED_CONTEXT = ("correlation_id", "call_id_stack", "client_id")
ACCEPTED_CONTENT = ("application/json",)


def new_correlation_id() -> str:
    return uuid.uuid4().hex


def correlation_or_new(value) -> str:
    """``value`` if it is a well-formed correlation id (ASCII letters, digits, ``._:-``, at
    most 128), else a new one: it travels in AMQP and HTTP headers downstream, where a
    non-ASCII one cannot be encoded."""
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if isinstance(value, str) and CORRELATION_ID.fullmatch(value):
        return value
    return new_correlation_id()


def header_int(headers, name: str) -> int:
    """A counter header (``x-lianchen-attempts``, ``-outages``) as a non-negative int; any
    other value (a string, a table, a negative number) counts as 0: a header is the sender's
    word, never a reason to crash."""
    value = (headers or {}).get(name) if isinstance(headers, dict) else None
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if isinstance(value, str) and value.isdigit() and len(value) < 7:
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return min(max(value, 0), 1_000_000)
    return 0


def body_bytes(message) -> bytes:
    """The raw body as bytes: py-amqp hands over a ``str`` when the message's content
    encoding could decode it; encoding it back with that encoding gives the bytes sent."""
    body = getattr(message, "body", None) or b""
    if isinstance(body, bytes):
        return body
    try:
        return str(body).encode(getattr(message, "content_encoding", None) or "utf-8")
    except (LookupError, UnicodeError):
        return str(body).encode("utf-8", "surrogateescape")


def safe_headers(message) -> dict:
    headers = getattr(message, "headers", None)
    return dict(headers) if isinstance(headers, dict) else {}


def message_context(message, trusted: tuple = ()) -> dict:
    """The worker's context data from a message: only ``FORWARDED_CONTEXT`` (and ``trusted``
    keys), each checked for its type, from ``nameko.<key>`` or ``<key>`` headers. nameko takes
    *every* header into the context and forwards it on every event the worker dispatches:
    an intake message's ``authorization`` travelled on as ``nameko.authorization`` into every
    shard, retry and dead-letter queue downstream."""
    headers = safe_headers(message)
    context = {}
    for key in FORWARDED_CONTEXT + tuple(trusted):
        value = headers.get(f"nameko.{key}", headers.get(key))
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if key == "call_id_stack":
            if isinstance(value, list) and all(isinstance(v, str) and len(v) < 300
                                               for v in value):
                context[key] = value[-10:]
        elif key == "correlation_id":
            if value is not None:
                context[key] = correlation_or_new(value)
        elif isinstance(value, str) and 0 < len(value) <= 300:
            context[key] = value
    return context


def screen(message, limit: int) -> str | None:
    """Why a message must be refused before its body is decoded, or None. kombu would
    decompress (``compression`` header: a few KiB can inflate to gigabytes) and decode
    whatever content type it accepts before any handler sees the size."""
    body = body_bytes(message)
    if len(body) > limit:
        return f"PermanentError: message body of {len(body)} bytes, over {limit}"
    headers = safe_headers(message)
    if headers.get("compression") is not None:
        return "PermanentError: compressed bodies are not accepted ('compression' header)"
    content_type = message.content_type or "application/json"
    if content_type not in ACCEPTED_CONTENT:
        return f"PermanentError: content type {str(content_type)[:60]!r}: only application/json"
    encoding = (message.content_encoding or "utf-8").lower()
    if encoding not in ("utf-8", "utf8"):
        return f"PermanentError: content encoding {encoding[:40]!r}: only utf-8"
    return None


def decode_body(message):
    """The JSON body, or raise ``ValueError`` with the reason (never anything else)."""
    try:
        return json.loads(message.body)
    except RecursionError:
        raise ValueError("body nested too deeply") from None
    except (TypeError, ValueError) as exc:
        raise ValueError(f"body is not JSON: {str(exc)[:200]}") from None
