"""``lianchen``: the operator's and integrator's command line.

    lianchen submit FILE.json            record one violation over HTTP
    lianchen import FILE.(csv|jsonl)     bulk import with progress, summary and resume
    lianchen status USCC [--sector S] [--as-of T]
    lianchen dead-letters list [QUEUE]   inspect a dead-letter queue (default dlq.violations.intake)
    lianchen dead-letters replay [QUEUE] put them back on the queue they failed on
    lianchen validate-catalog [FILE]     check a measure catalog without starting anything
    lianchen health                      each service, broker and store up or down

User errors print what was wrong and exit non-zero; never a stack trace.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import requests

PORTS = {"registry": 8001, "violations": 8002, "scoring": 8003, "restrictions": 8004,
         "notifications": 8005, "repair": 8006}


class UserError(Exception):
    pass


def _url(service: str) -> str:
    return os.environ.get(f"LIANCHEN_{service.upper()}_URL", f"http://127.0.0.1:{PORTS[service]}")


def _amqp() -> str:
    return os.environ.get("AMQP_URI", "amqp://guest:guest@127.0.0.1:5672/")


def cmd_submit(args) -> int:
    try:
        body = json.loads(Path(args.file).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"{args.file}: {exc}") from exc
    response = _request("post", f"{_url('violations')}/v1/violations", json=body)
    result = response.json()
    print(json.dumps(result, ensure_ascii=False, indent=2))
    return 0 if response.status_code in (200, 201) else 1


def cmd_import(args) -> int:
    from shared.importer import BulkImportError, run_import
    try:
        summary = run_import(args.file, _url("violations"), batch_size=args.batch_size,
                             rejected_path=args.rejected, progress=not args.quiet)
    except BulkImportError as exc:
        raise UserError(str(exc)) from exc
    if summary.resumed_from:
        print(f"resumed after record {summary.resumed_from}")
    print(f"records: {summary.total}  accepted: {summary.accepted}  "
          f"duplicates: {summary.duplicates}  rejected: {summary.rejected}")
    if summary.rejected:
        print(f"rejected records with reasons: {summary.rejected_file}")
    return 0


def cmd_status(args) -> int:
    params = {k: v for k, v in (("sector", args.sector), ("as_of", args.as_of)) if v}
    response = _request("get", f"{_url('restrictions')}/v1/entities/{args.uscc}/status",
                        params=params)
    body = response.json()
    if response.status_code != 200:
        raise UserError("; ".join(f"{e['field']}: {e['problem']}" for e in body.get("errors", []))
                        or body.get("error", response.text))
    print(f"{body['uscc']}  as of {body['as_of']}  record: {body['record']}  "
          f"answer {body['answer_id']}")
    print(f"{'sector':<15}{'verdict':<12}measures")
    for sector, entry in body["sectors"].items():
        measures = ", ".join(f"{m['measure_id']} (until {(m['ends_at'] or 'cured')[:10]})"
                             for m in entry["measures"]) or "-"
        print(f"{sector:<15}{'may pass' if entry['may_pass'] else 'RESTRICTED':<12}{measures}")
    return 0


def cmd_dead_letters(args) -> int:
    from shared.deadletters import list_dead_letters, replay
    import pika
    try:
        if args.action == "list":
            letters = list_dead_letters(_amqp(), args.queue, limit=args.limit)
            for letter in letters:
                print(f"{letter.failed_at or '-':<34} attempts={letter.attempts} "
                      f"queue={letter.queue} id={letter.message_id or '-'}\n    {letter.reason}")
            print(f"{len(letters)} dead letter(s) shown in {args.queue}")
        else:
            moved = replay(_amqp(), args.queue, credential=os.environ.get("LIANCHEN_KEY"))
            print(f"replayed {moved} message(s) from {args.queue}")
    except pika.exceptions.ChannelClosedByBroker as exc:
        raise UserError(f"{args.queue}: {exc.reply_text}") from exc
    except pika.exceptions.AMQPConnectionError as exc:
        raise UserError(f"broker unreachable at {_amqp()}: start it with make run") from exc
    return 0


def cmd_validate_catalog(args) -> int:
    from services.restrictions.catalog import Catalog, InvalidCatalog
    try:
        catalog = Catalog.load(args.file) if args.file else Catalog.load()
    except InvalidCatalog as exc:
        raise UserError(str(exc)) from exc
    print(f"catalog {catalog.version}: {len(catalog.measures)} measures, "
          f"{len(catalog.triggers)} triggers: valid")
    return 0


def cmd_health(args) -> int:
    ok = True
    for service in PORTS:
        try:
            state = requests.get(f"{_url(service)}/health", timeout=2).json().get("status")
        except (requests.RequestException, ValueError):
            state = "down"
        ok &= state == "ok"
        print(f"{service:<15}{state}")
    try:
        from shared.broker_admin import queue_depths
        depths = queue_depths()
        print(f"{'broker':<15}ok  ({sum(depths.values())} messages waiting; "
              f"dead letters: {sum(v for k, v in depths.items() if k.startswith('dlq.'))})")
    except Exception:
        ok = False
        print(f"{'broker':<15}down")
    return 0 if ok else 1


def _credential() -> str:
    key = os.environ.get("LIANCHEN_KEY")
    if not key:
        raise UserError("no credential: set LIANCHEN_KEY to your API key "
                        "(an administrator creates one with: lianchen keys create ROLE SUBJECT)")
    return key


def cmd_keys(args) -> int:
    """Keys are managed on the store directly: this is how the first administrator key exists."""
    from shared.auth import KeyStore
    from shared.mongo import connect
    store = KeyStore.from_config({"MONGO_URI": os.environ.get("MONGO_URI"),
                                  "DB_PREFIX": os.environ.get("DB_PREFIX")},
                                 connect(os.environ.get("MONGO_URI")))
    try:
        if args.action == "create":
            if not args.role or not args.subject:
                raise UserError("keys create needs ROLE and SUBJECT")
            key = store.create(args.role, args.subject, rate=args.rate)
            print(key)
            print("keep it: only its hash is stored", file=sys.stderr)
        elif args.action == "list":
            for doc in store.list():
                state = "revoked" if doc.get("revoked_at") else "active"
                print(f"{doc['_id']}  {doc['role']:<14}{doc['subject']:<20}{doc['rate']:>8.0f}/s  {state}")
        else:
            if not args.role:
                raise UserError("keys revoke needs the KEY_ID")
            if not store.revoke(args.role):
                raise UserError(f"no key {args.role}")
            print(f"revoked {args.role}")
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    return 0


def cmd_audit(args) -> int:
    """Verify every service's decision ledger (hash chains) on the store."""
    from shared.ledger import verify
    from shared.mongo import connect
    prefix = (os.environ.get("DB_PREFIX") or "lianchen") + "_"
    try:
        client = connect(os.environ.get("MONGO_URI"))
        names = [n for n in client.list_database_names() if n.startswith(prefix)
                 and (not args.service or n == prefix + args.service)]
    except Exception as exc:  # noqa: BLE001 - the store is down: a user-facing error
        raise UserError(f"store unreachable: {type(exc).__name__}") from exc
    bad = 0
    for name in sorted(names):
        verdict = verify(client[name])
        if not verdict.chains:
            continue
        state = "ok" if verdict.ok else "TAMPERED"
        print(f"{name.removeprefix(prefix):<15}{state:<10}{verdict.chains} chain(s), "
              f"{verdict.entries} entries")
        for problem in verdict.problems:
            print(f"    {problem}")
        bad += not verdict.ok
    return 1 if bad else 0


def _request(method, url, **kwargs):
    headers = {**kwargs.pop("headers", {}), "Authorization": f"Bearer {_credential()}"}
    try:
        return requests.request(method, url, timeout=30, headers=headers, **kwargs)
    except requests.RequestException as exc:
        raise UserError(f"{url} unreachable ({type(exc).__name__}); is the system running? "
                        f"(make run)") from exc


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="lianchen", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("submit", help="record one violation from a JSON file")
    p.add_argument("file")
    p.set_defaults(run=cmd_submit)
    p = sub.add_parser("import", help="bulk import from CSV or JSON lines")
    p.add_argument("file")
    p.add_argument("--batch-size", type=int, default=200)
    p.add_argument("--rejected", help="where rejected records go (default FILE.rejected.jsonl)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=cmd_import)
    p = sub.add_parser("status", help="an entity's status in every sector")
    p.add_argument("uscc")
    p.add_argument("--sector")
    p.add_argument("--as-of")
    p.set_defaults(run=cmd_status)
    p = sub.add_parser("dead-letters", help="list or replay dead letters")
    p.add_argument("action", choices=("list", "replay"))
    p.add_argument("queue", nargs="?", default="dlq.violations.intake")
    p.add_argument("--limit", type=int, default=50)
    p.set_defaults(run=cmd_dead_letters)
    p = sub.add_parser("validate-catalog", help="check a measure catalog file")
    p.add_argument("file", nargs="?")
    p.set_defaults(run=cmd_validate_catalog)
    p = sub.add_parser("keys", help="create, list or revoke API keys (administrators, on the store)")
    p.add_argument("action", choices=("create", "list", "revoke"))
    p.add_argument("role", nargs="?", help="create: the role; revoke: the key id")
    p.add_argument("subject", nargs="?", help="agency code, platform id, gate-keeper name...")
    p.add_argument("--rate", type=float, default=200.0, help="requests per second (default 200)")
    p.set_defaults(run=cmd_keys)
    p = sub.add_parser("audit", help="verify the hash-chained decision ledgers")
    p.add_argument("action", choices=("verify",))
    p.add_argument("--service", help="only this service's ledger")
    p.set_defaults(run=cmd_audit)
    p = sub.add_parser("health", help="services, broker and store up or down")
    p.set_defaults(run=cmd_health)
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
