"""Who may do what on the broker: one user per party, least privilege, validated producers.

Every party connects as its own RabbitMQ user, named ``<namespace>.<party>`` (the namespace is
``lianchen`` locally and in compose; the tests use their vhost's name, so that parallel runs on
one broker never share a user):

==========================  =========================================================
``<ns>.<service>``          each of the six services: configure, write and read its own
                            exchanges (``<service>.events``, ``<service>.shards``), shard,
                            retry and dead-letter queues; read on the event exchanges it
                            binds (``CONSUMES``); write ``amq.default`` (retries) and
                            ``lianchen.dlx`` (dead letters)
``<ns>.agency.<code>``      an agency: write ``lianchen.intake`` only, read its reply
                            queue ``replies.<code>``; its API keys must be its own agency's
``<ns>.platform.<id>``      an AMQP notice subscriber: read ``notices.<id>[.<x>]`` only
``<ns>.operator``           the operator's CLI: read dead-letter queues, write the shard
                            exchanges and ``amq.default`` (replay), nothing to configure
``<ns>.monitor``            management tag ``monitoring``, no AMQP permission at all: the
                            services' shard rebalancing and health read the management API
                            with it
==========================  =========================================================

``guest`` remains only as the loopback development default (every party one user: nothing to
tell apart, so the producer check below is off).

Validated producers: every publisher sets the AMQP ``user_id`` property to the user it connects
as (``publish_user``); RabbitMQ refuses a ``user_id`` that is not the connection's own user, so
the property cannot be forged (no user here has the ``impersonator`` tag). A consumer accepts an
event of ``<source>.events`` only when its ``user_id`` is ``<ns>.<source>``
(``producer_refusal``). A copy that the consumer itself re-publishes (a retry, a dead letter)
cannot keep the producer's ``user_id``: it carries ``x-lianchen-producer`` (the user that was
validated) and ``x-lianchen-producer-seal``, an HMAC under a key derived from the consumer's
own broker password (``seal``) over the producer, the source, the event type and the body. A
copy is accepted when it comes from the consumer's own user (a retry) or the operator's (a
replay) *and* its seal verifies: a message that was refused (no producer validated) is
dead-lettered without a seal and stays refused after a replay. A service can forge seals only
for its own queues, and changing its password invalidates the seals of what waits in them.
"""
from __future__ import annotations

import hashlib
import hmac
import re
from urllib.parse import unquote, urlsplit

SERVICES = ("registry", "violations", "scoring", "restrictions", "notifications", "repair")
DEFAULT_NAMESPACE = "lianchen"
PRODUCER_HEADER = "x-lianchen-producer"
SEAL_HEADER = "x-lianchen-producer-seal"
SEAL_HEADERS = (PRODUCER_HEADER, SEAL_HEADER)
DEV_USER = "guest"

# The event exchanges each service binds (its @event_handler and @broadcast_handler sources);
# tests/unit/test_bususers.py checks this table against the service classes.
CONSUMES = {
    "registry": ("restrictions", "violations"),
    "violations": (),
    "scoring": ("registry", "repair", "violations"),
    "restrictions": ("registry", "repair", "restrictions", "scoring", "violations"),
    "notifications": ("notifications", "registry", "restrictions"),
    "repair": ("violations",),
}
# What a service reaches besides its own names (nameko RPC, intake, subscribers' queues).
EXTRA = {
    "registry": {"configure": [r"nameko-rpc", r"rpc-registry"],
                 "write": [r"nameko-rpc", r"rpc-registry"],  # (queue.bind: write on the queue)
                 "read": [r"nameko-rpc", r"rpc-registry"]},
    "violations": {"configure": [r"lianchen\.intake"], "write": [], "read": [r"lianchen\.intake"]},
    "notifications": {"configure": [r"nameko-rpc", r"rpc\.reply-notifications-.+",
                                    r"notices\..+"],
                      "write": [r"nameko-rpc", r"rpc\.reply-notifications-.+", r"notices\..+"],
                      "read": [r"nameko-rpc", r"rpc\.reply-notifications-.+"]},
}
NOTHING = "^$"


def _any(patterns) -> str:
    return "^(" + "|".join(patterns) + ")$" if patterns else NOTHING


def own_names(service: str) -> list[str]:
    """Regexes of the exchanges and queues that are ``service``'s own."""
    s = re.escape(service)
    return [rf"{s}\..+", rf"retry\.{s}\..+", rf"dlq\.{s}\..+",
            rf"(retry\.|dlq\.)?evt-[A-Za-z0-9_]+-[A-Za-z0-9_]+--{s}\..+"]


def service_permissions(service: str) -> dict:
    if service not in SERVICES:
        raise ValueError(f"unknown service {service!r}; known: {', '.join(SERVICES)}")
    own = own_names(service)
    extra = EXTRA.get(service, {})
    sources = [rf"{re.escape(source)}\.events" for source in CONSUMES[service]]
    return {"configure": _any(own + extra.get("configure", [])),
            "write": _any(own + [r"amq\.default", r"lianchen\.dlx"] + extra.get("write", [])),
            "read": _any(own + [r"lianchen\.dlx"] + sources + extra.get("read", []))}


def agency_permissions(code: str) -> dict:
    return {"configure": NOTHING, "write": r"^lianchen\.intake$",
            "read": rf"^replies\.{re.escape(code)}$"}


def platform_permissions(platform_id: str) -> dict:
    return {"configure": NOTHING, "write": NOTHING,
            "read": rf"^notices\.{re.escape(platform_id)}(\..+)?$"}


def operator_permissions() -> dict:
    return {"configure": NOTHING, "write": r"^(amq\.default|[a-z]+\.shards)$",
            "read": r"^dlq\..+$"}


MONITOR_PERMISSIONS = {"configure": NOTHING, "write": NOTHING, "read": NOTHING}

# -- names ----------------------------------------------------------------------------------
NAME_PART = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _part(value: str, what: str) -> str:
    if not NAME_PART.fullmatch(value or ""):
        raise ValueError(f"{what} {value!r}: letters, digits, '_' and '-' only, 1-64")
    return value


def service_user(namespace: str, service: str) -> str:
    return f"{namespace}.{service}"


def agency_user(namespace: str, code: str) -> str:
    return f"{namespace}.agency.{_part(code, 'agency code')}"


def platform_user(namespace: str, platform_id: str) -> str:
    return f"{namespace}.platform.{_part(platform_id, 'platform id')}"


def operator_user(namespace: str) -> str:
    return f"{namespace}.operator"


def monitor_user(namespace: str) -> str:
    return f"{namespace}.monitor"


def user_of(amqp_uri: str) -> str:
    """The user an AMQP URI connects as (the first node's, for ``a;b;c``)."""
    parts = urlsplit((amqp_uri or "").split(";")[0].strip())
    return unquote(parts.username or DEV_USER)


def password_of(amqp_uri: str) -> str:
    parts = urlsplit((amqp_uri or "").split(";")[0].strip())
    return unquote(parts.password or DEV_USER)


def namespace_of(user: str, service: str) -> str | None:
    """``lianchen`` for ``lianchen.scoring`` as scoring; None for a user that is not a service
    user of this scheme (``guest``: the development default, one user for every party)."""
    suffix = f".{service}"
    if user.endswith(suffix) and len(user) > len(suffix):
        return user[: -len(suffix)]
    return None


# -- validated producers ---------------------------------------------------------------------
def seal_key(amqp_uri: str) -> bytes:
    """The consumer's own sealing key: derived from its broker password (which only it, and
    whoever generated it, knows)."""
    return hmac.new(password_of(amqp_uri).encode("utf-8"),
                    b"lianchen producer seal v1|" + user_of(amqp_uri).encode("utf-8"),
                    hashlib.sha256).digest()


def seal(key: bytes, producer: str, source: str, event_type: str, body: bytes) -> str:
    text = "|".join((producer, source, event_type, hashlib.sha256(body).hexdigest()))
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()


def _text(value) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return value if isinstance(value, str) and len(value) <= 300 else None


class ProducerCheck:
    """The consumer's side of validated producers, for one service."""

    def __init__(self, amqp_uri: str, service: str):
        self.service = service
        self.user = user_of(amqp_uri)
        self.namespace = namespace_of(self.user, service)
        self.key = seal_key(amqp_uri)

    @property
    def enforced(self) -> bool:
        return self.namespace is not None

    def expected(self, source: str) -> str:
        return service_user(self.namespace, source) if self.enforced else self.user

    def refusal(self, user_id, headers: dict, source: str, event_type: str,
                body: bytes) -> str | None:
        """Why an event said to be of ``source`` must be refused, or None."""
        if not self.enforced:
            return None
        expected = self.expected(source)
        user_id = _text(user_id)
        if user_id == expected:
            return None
        relayers = (self.user, operator_user(self.namespace))
        if user_id in relayers:
            producer, mark = _text(headers.get(PRODUCER_HEADER)), _text(headers.get(SEAL_HEADER))
            if producer == expected and mark and hmac.compare_digest(
                    mark, seal(self.key, producer, source, event_type, body)):
                return None
            return (f"ForgedProducer: a copy of a {source} event re-published by {user_id!r} "
                    f"without a valid seal of its producer {expected!r}")
        return (f"ForgedProducer: a {source} event published by "
                f"{user_id or 'a user without user_id'!r}; only {expected!r} publishes them")

    def seal_headers(self, source: str, event_type: str, body: bytes) -> dict:
        producer = self.expected(source)
        return {PRODUCER_HEADER: producer,
                SEAL_HEADER: seal(self.key, producer, source, event_type, body)}
