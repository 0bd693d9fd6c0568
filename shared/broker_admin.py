"""Broker topology through the RabbitMQ management API.

    python -m shared.broker_admin apply [--vhost /] [--wait-nodes N]
                                   apply infra/rabbitmq/definitions.json (after N nodes run)
    python -m shared.broker_admin create-vhost NAME      (tests: a fresh vhost per test)
    python -m shared.broker_admin delete-vhost NAME
    python -m shared.broker_admin users [--vhost /] [--namespace lianchen] [--secrets DIR]
                                   [--agency CODE ...] [--platform ID ...]
                                   least-privilege users (shared.bususers), generated passwords
                                   kept in DIR/<user> (mode 600; reused when present)
    python -m shared.broker_admin uri USER [--secrets DIR] [--base AMQP_URI] [--management]
                                   USER's AMQP (or management) URL, password from DIR
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import time
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import requests

from shared import bususers

ROOT = Path(__file__).resolve().parent.parent
DEFINITIONS = ROOT / "infra" / "rabbitmq" / "definitions.json"


def management_url() -> tuple[str, tuple[str, str]]:
    raw = os.environ.get("RABBIT_MGMT_URL", "http://guest:guest@127.0.0.1:15672")
    parts = urlsplit(raw)
    auth = (parts.username or "guest", parts.password or "guest")
    base = f"{parts.scheme}://{parts.hostname}:{parts.port or 15672}{parts.path.rstrip('/')}"
    return base, auth


def _call(method: str, path: str, body=None) -> requests.Response:
    base, auth = management_url()
    response = requests.request(method, f"{base}/api/{path}", auth=auth, json=body, timeout=30)
    if response.status_code >= 400 and not (method == "DELETE" and response.status_code == 404):
        raise RuntimeError(f"RabbitMQ management {method} /api/{path} answered "
                           f"{response.status_code}: {response.text[:300]}")
    return response


def definitions_for(vhost: str) -> dict:
    data = json.loads(DEFINITIONS.read_text(encoding="utf-8"))
    for section in ("exchanges", "queues", "bindings", "policies"):
        for item in data.get(section, []):
            item["vhost"] = vhost
    return {key: data[key] for key in ("exchanges", "queues", "bindings", "policies")}


def apply(vhost: str = "/") -> None:
    _call("POST", f"definitions/{quote(vhost, safe='')}", definitions_for(vhost))


def wait_for_nodes(count: int, timeout: float = 300.0) -> None:
    """Wait until ``count`` cluster nodes run (a quorum queue declared earlier would get fewer
    members than the cluster has)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            running = [n for n in _call("GET", "nodes").json() if n.get("running")]
            if len(running) >= count:
                return
            state = f"{len(running)} of {count} nodes running"
        except (RuntimeError, requests.RequestException) as exc:
            state = str(exc)
        if time.monotonic() > deadline:
            raise RuntimeError(f"waited {timeout:.0f}s for {count} RabbitMQ nodes: {state}")
        time.sleep(2)


def create_vhost(vhost: str, user: str = "guest") -> None:
    _call("PUT", f"vhosts/{quote(vhost, safe='')}", {})
    _call("PUT", f"permissions/{quote(vhost, safe='')}/{quote(user, safe='')}",
          {"configure": ".*", "write": ".*", "read": ".*"})
    apply(vhost)


def delete_vhost(vhost: str) -> None:
    _call("DELETE", f"vhosts/{quote(vhost, safe='')}")


def _put_user(vhost: str, user: str, password: str, permissions: dict, tags: str = "") -> None:
    _call("PUT", f"users/{quote(user, safe='')}", {"password": password, "tags": tags})
    _call("PUT", f"permissions/{quote(vhost, safe='')}/{quote(user, safe='')}", permissions)


def password_env(user: str, namespace: str) -> str:
    """The environment variable compose passes ``user``'s password in:
    ``lianchen.scoring`` -> ``BROKER_PASSWORD_SCORING``, ``lianchen.agency.SXAMR`` ->
    ``BROKER_PASSWORD_AGENCY_SXAMR``."""
    name = user.removeprefix(f"{namespace}.")
    return "BROKER_PASSWORD_" + "".join(c if c.isalnum() else "_" for c in name).upper()


FROM_ENV = Path("<environment>")  # ``secrets_dir=FROM_ENV``: passwords from ``password_env``


def _password(user: str, secrets_dir: Path | None, namespace: str = "") -> str:
    """A generated password, kept in ``secrets_dir/<user>`` (mode 600) and reused from there;
    or, with ``FROM_ENV``, the one compose passes in the environment (required)."""
    if secrets_dir == FROM_ENV:
        variable = password_env(user, namespace)
        if not os.environ.get(variable):
            raise RuntimeError(f"{variable} is not set (the password of broker user {user})")
        return os.environ[variable]
    if secrets_dir is None:
        return secrets.token_urlsafe(24)
    path = secrets_dir / user
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    secrets_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(secrets_dir, 0o700)
    password = secrets.token_urlsafe(24)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(password + "\n")
    return password


def create_users(vhost: str = "/", namespace: str = bususers.DEFAULT_NAMESPACE, *,
                 agencies=(), platforms=(), secrets_dir: Path | None = None,
                 only_extra: bool = False) -> dict[str, str]:
    """Create (or update) every least-privilege user of ``shared.bususers`` on ``vhost``:
    the six services, the operator, the monitor (``only_extra``: not these), and the agencies
    and platforms named. Returns ``{user: password}``. The topology must be applied
    (``apply``) first."""
    made = {}
    wanted = [] if only_extra else [
        (bususers.service_user(namespace, s), bususers.service_permissions(s), "")
        for s in bususers.SERVICES]
    if not only_extra:
        wanted += [(bususers.operator_user(namespace), bususers.operator_permissions(), ""),
                   (bususers.monitor_user(namespace), bususers.MONITOR_PERMISSIONS,
                    "monitoring")]
    wanted += [(bususers.agency_user(namespace, code), bususers.agency_permissions(code), "")
               for code in agencies]
    wanted += [(bususers.platform_user(namespace, pid), bususers.platform_permissions(pid), "")
               for pid in platforms]
    for user, permissions, tags in wanted:
        made[user] = _password(user, secrets_dir, namespace)
        _put_user(vhost, user, made[user], permissions, tags)
    return made


def delete_users(namespace: str) -> int:
    """Delete every user ``<namespace>.*`` (the tests' per-vhost users)."""
    users = [row["name"] for row in _call("GET", "users?columns=name").json()
             if str(row.get("name", "")).startswith(f"{namespace}.")]
    for user in users:
        _call("DELETE", f"users/{quote(user, safe='')}")
    return len(users)


def with_user(url: str, user: str, password: str) -> str:
    """``url`` (AMQP or management; ``a;b`` or ``a,b`` lists) with these credentials."""
    def one(item: str) -> str:
        parts = urlsplit(item.strip())
        host = parts.netloc.rsplit("@", 1)[-1]
        return urlunsplit(parts._replace(
            netloc=f"{quote(user, safe='')}:{quote(password, safe='')}@{host}"))
    for sep in (";", ","):
        if sep in url:
            return sep.join(one(item) for item in url.split(sep) if item.strip())
    return one(url)


def queue_depths(vhost: str = "/") -> dict[str, int]:
    rows = _call("GET", f"queues/{quote(vhost, safe='')}?columns=name,messages").json()
    return {row["name"]: row.get("messages", 0) for row in rows}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="broker_admin", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_apply = sub.add_parser("apply")
    p_apply.add_argument("--vhost", default="/")
    p_apply.add_argument("--wait-nodes", type=int, default=0,
                         help="first wait until this many cluster nodes run")
    for name in ("create-vhost", "delete-vhost"):
        sub.add_parser(name).add_argument("vhost")
    p_users = sub.add_parser("users")
    p_users.add_argument("--vhost", default="/")
    p_users.add_argument("--namespace", default=bususers.DEFAULT_NAMESPACE)
    where = p_users.add_mutually_exclusive_group(required=True)
    where.add_argument("--secrets", type=Path,
                       help="directory of the generated passwords (mode 600)")
    where.add_argument("--passwords-from-env", action="store_true",
                       help="take each password from BROKER_PASSWORD_<USER> (compose)")
    p_users.add_argument("--agency", action="append", default=[])
    p_users.add_argument("--platform", action="append", default=[])
    p_uri = sub.add_parser("uri")
    p_uri.add_argument("user")
    p_uri.add_argument("--secrets", type=Path, required=True)
    p_uri.add_argument("--base", help="AMQP URI to put the credentials in (default: AMQP_URI)")
    p_uri.add_argument("--management", action="store_true",
                       help="the management URL (RABBIT_MGMT_URL) instead")
    args = parser.parse_args(argv)
    if args.command == "uri":
        path = args.secrets / args.user
        if not path.exists():
            print(f"error: no password for {args.user} in {args.secrets}; "
                  f"create the users first: python -m shared.broker_admin users", file=sys.stderr)
            return 1
        if args.management:
            base = os.environ.get("RABBIT_MGMT_URL", "http://guest:guest@127.0.0.1:15672")
        else:
            base = args.base or os.environ.get("AMQP_URI", "amqp://guest:guest@127.0.0.1:5672/")
        print(with_user(base, args.user, path.read_text(encoding="utf-8").strip()))
        return 0
    try:
        if args.command == "apply":
            if args.wait_nodes:
                wait_for_nodes(args.wait_nodes)
            apply(args.vhost)
            print(f"broker topology applied to vhost {args.vhost!r} from {DEFINITIONS.relative_to(ROOT)}")
        elif args.command == "users":
            secrets_dir = FROM_ENV if args.passwords_from_env else args.secrets
            made = create_users(args.vhost, args.namespace, agencies=args.agency,
                                platforms=args.platform, secrets_dir=secrets_dir)
            print(f"broker users on vhost {args.vhost!r} (passwords in {secrets_dir}): "
                  f"{', '.join(made)}")
        elif args.command == "create-vhost":
            create_vhost(args.vhost)
        else:
            delete_vhost(args.vhost)
    except (RuntimeError, requests.RequestException) as exc:
        print(f"error: {exc}\nIs RabbitMQ running with the management plugin? "
              f"Try: bash infra/local/rabbitmq.sh start", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
