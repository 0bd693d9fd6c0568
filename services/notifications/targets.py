"""Webhook targets: resolved and checked at registration and again at every delivery.

A subscriber names a URL; the notifications service then makes requests to it from inside the
deployment. Without a check, a URL could point at loopback, link-local (cloud metadata at
169.254.169.254), private or other non-public addresses, and the delivery errors would tell
which internal ports are open. So:

- the URL must be ``http``/``https`` with a host and no userinfo (``user:pass@``);
- the host is resolved (``getaddrinfo``, which also reads ``127.1``, ``2130706433``,
  ``0x7f.1`` and ``::ffff:127.0.0.1`` as loopback) and **every** address must be public
  (``ipaddress``' ``is_global``; IPv4-mapped IPv6 addresses are judged by their IPv4 address);
  ``localhost`` and ``*.localhost`` are refused by name;
- a delivery connects to the address it checked (``Target.address``), with the URL's host in
  the ``Host`` header and for TLS in SNI and certificate verification: a name that resolves to
  a public address when checked and to an internal one a moment later (DNS rebinding) cannot
  redirect the request.

``NOTIFY_ALLOW_TARGETS`` (config or environment: comma-separated networks, e.g.
``127.0.0.0/8,::1/128``) admits non-public addresses explicitly: for local development and
tests, whose receivers listen on loopback. Empty by default.
"""
from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit


class TargetRefused(ValueError):
    """The URL may not be a webhook target; the message says why (shown to the subscriber)."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # as in the URL (the Host header, SNI and the certificate's name)
    port: int
    path: str  # path and query
    address: str  # the checked IP address the request goes to


def allowed_networks(raw) -> tuple:
    """``NOTIFY_ALLOW_TARGETS`` parsed; a malformed entry is an error at start, not ignored."""
    if isinstance(raw, (list, tuple)):
        items = raw
    else:
        items = str(raw or "").split(",")
    return tuple(ipaddress.ip_network(item.strip(), strict=False)
                 for item in items if item and item.strip())


def _judged(address: str):
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def resolve(url: str, allow: tuple = (), getaddrinfo=socket.getaddrinfo) -> Target:
    """The target of ``url``, pinned to a checked address; ``TargetRefused`` otherwise."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise TargetRefused(f"not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise TargetRefused("must be an http or https URL")
    if "@" in parts.netloc or parts.username is not None or parts.password is not None:
        raise TargetRefused("must not carry a user name or password (userinfo)")
    host = parts.hostname
    if not host:
        raise TargetRefused("must name a host")
    port = port or (443 if parts.scheme == "https" else 80)
    name = host.rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        loopback = (ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1"))
        if not any(ip in net for ip in loopback for net in allow
                   if ip.version == net.version):
            raise TargetRefused("must not point at localhost")
    try:
        infos = getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError):
        raise TargetRefused(f"host {host!r} does not resolve") from None
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not addresses:
        raise TargetRefused(f"host {host!r} does not resolve")
    for address in addresses:
        ip = _judged(address)
        raw = ipaddress.ip_address(address.split("%", 1)[0])
        if any(candidate in net for candidate in (ip, raw) for net in allow
               if candidate.version == net.version):
            continue
        if not ip.is_global or ip.is_multicast:
            raise TargetRefused(
                "must resolve to public addresses only (not loopback, link-local, private or "
                "reserved)")
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return Target(parts.scheme, host, port, path, addresses[0])


def check(url: str, allow: tuple = ()) -> str | None:
    """Why ``url`` is refused as a webhook target, or None."""
    try:
        resolve(url, allow)
    except TargetRefused as exc:
        return str(exc)
    return None
