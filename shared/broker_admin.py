"""Broker topology through the RabbitMQ management API.

    python -m shared.broker_admin apply [--vhost /] [--wait-nodes N]
                                   apply infra/rabbitmq/definitions.json (after N nodes run)
    python -m shared.broker_admin create-vhost NAME      (tests: a fresh vhost per test)
    python -m shared.broker_admin delete-vhost NAME
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from urllib.parse import quote, urlsplit

import requests

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
    args = parser.parse_args(argv)
    try:
        if args.command == "apply":
            if args.wait_nodes:
                wait_for_nodes(args.wait_nodes)
            apply(args.vhost)
            print(f"broker topology applied to vhost {args.vhost!r} from {DEFINITIONS.relative_to(ROOT)}")
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
