"""``lianchen``: the operator's and integrator's command line.

    lianchen submit FILE.json            record one violation over HTTP
    lianchen import FILE.(csv|jsonl)     bulk import with progress, summary and resume
    lianchen status USCC [--sector S] [--as-of T]
    lianchen changes [--since CURSOR] [--follow]   the change feed of restrictions
    lianchen dead-letters list [QUEUE]   inspect a dead-letter queue (default dlq.violations.intake)
    lianchen dead-letters replay [QUEUE] put them back on the queue they failed on
    lianchen notices dead [--subscriber S]          notices that could not be delivered
    lianchen notices redeliver [ID ...] [--subscriber S | --all]   send them again
    lianchen validate-catalog [FILE]     check a measure catalog without starting anything
                                         (no FILE: every file in catalog/, as a service does
                                         at start, and the version of each in force)
    lianchen validate-score-model [FILE] check a score model without starting anything
    lianchen health [--all-queues]       each service, broker and store up or down; queue depths
    lianchen contracts [--check]         regenerate (or check) docs/api/openapi.json, asyncapi.json
    lianchen keys create|list|revoke     API keys, on the store (administrators)
    lianchen audit verify [--service S]  check the hash-chained decision ledgers
    lianchen catalog migrate             re-decide every record under the catalog in force
                                         (restrictions stopped; its relay publishes the events)

User errors print what was wrong and exit non-zero; never a stack trace.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import unquote, urlsplit

import requests

from contracts.http import SERVICES

PORTS = dict(SERVICES)


class UserError(Exception):
    pass


class Unreachable(UserError):
    """The service did not answer (a follower waits and tries again)."""


def _url(service: str) -> str:
    return os.environ.get(f"LIANCHEN_{service.upper()}_URL", f"http://127.0.0.1:{PORTS[service]}")


def _amqp() -> str:
    """``AMQP_URI``; else the local broker as the operator's broker user when `make infra`
    created it (a replay as anyone else is refused by the consumers: shared.bususers)."""
    if os.environ.get("AMQP_URI"):
        return os.environ["AMQP_URI"]
    default = "amqp://guest:guest@127.0.0.1:5672/"
    var = Path(os.environ.get("LIANCHEN_VAR") or Path(__file__).resolve().parent.parent / "var")
    stored = var / "secrets" / "broker" / "lianchen.operator"
    if stored.is_file():
        from shared.broker_admin import with_user
        return with_user(default, "lianchen.operator", stored.read_text(encoding="utf-8").strip())
    return default


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
    body = _checked(response)
    print(f"{body['uscc']}  as of {body['as_of']}  record: {body['record']}  "
          f"answer {body['answer_id']}")
    print(f"{'sector':<15}{'verdict':<12}measures")
    for sector, entry in body["sectors"].items():
        measures = ", ".join(f"{m['measure_id']} [{m.get('effect', 'prohibit')}] "
                             f"(until {(m['ends_at'] or 'cured')[:10]})"
                             for m in entry["measures"]) or "-"
        print(f"{sector:<15}{'may pass' if entry['may_pass'] else 'PROHIBITED':<12}{measures}")
    return 0


def _change_line(change: dict) -> str:
    until = (change.get("ends_at") or "cured")[:10]
    tail = (f"lifted: {change.get('lift_reason') or '-'}" if change["change"] == "lifted"
            else f"until {until}")
    return (f"{change['at'][:19]}  {change['change']:<8}{change['uscc']}  "
            f"{change['sector']:<14}{change['measure_id']:<10}{tail}  [{change['restriction_id']}]")


def cmd_changes(args) -> int:
    """Page through GET /v1/changes; with --follow keep polling from the last cursor."""
    if not 1 <= args.limit <= 1000:
        raise UserError("--limit must be between 1 and 1000")
    if args.interval <= 0:
        raise UserError("--interval must be positive")
    url = f"{_url('restrictions')}/v1/changes"
    cursor, seen = args.since, 0
    try:
        while True:
            params = {"limit": args.limit, **({"since": cursor} if cursor else {})}
            try:
                body = _checked(_request("get", url, params=params))
            except Unreachable as exc:
                if not args.follow:
                    raise
                print(f"warning: {exc}; retrying in {args.interval:g}s", file=sys.stderr)
                time.sleep(args.interval)
                continue
            for change in body["changes"]:
                print(json.dumps(change, ensure_ascii=False) if args.json
                      else _change_line(change), flush=True)
                seen += 1
            cursor = body.get("next") or cursor  # a page interrupted: resume before it
            if len(body["changes"]) >= args.limit:
                continue  # a full page: more may be waiting
            if not args.follow:
                break
            time.sleep(args.interval)
    except KeyboardInterrupt:
        pass
    # Interrupted in the middle of a page, the cursor is still the one before that page:
    # resuming may print some changes again (at least once, never skipped).
    resume = f"lianchen changes --since {cursor}" if cursor else "lianchen changes"
    print(f"{seen} change(s); resume with: {resume}", file=sys.stderr)
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
            moved = replay(_amqp(), args.queue)
            print(f"replayed {moved} message(s) from {args.queue}")
    except pika.exceptions.ChannelClosedByBroker as exc:
        raise UserError(f"{args.queue}: {exc.reply_text}") from exc
    except pika.exceptions.AMQPConnectionError as exc:
        raise UserError(f"broker unreachable at {_amqp()}: start it with make run") from exc
    return 0


def cmd_notices(args) -> int:
    """Dead-lettered notices (administrators): list them, or redeliver them."""
    base = f"{_url('notifications')}/v1/dead-notices"
    if args.action == "dead":
        params = {"limit": args.limit}
        if args.subscriber:
            params["subscriber"] = args.subscriber
        response = _request("get", base, params=params)
        body = _json_or_error(response)
        for letter in body["dead_notices"]:
            print(f"{letter['dead_at']:<34} {letter['notice_id']}  {letter['subscriber_id']:<16}"
                  f"{letter['kind']:<19}attempts={letter['attempts']}\n    {letter['reason']}")
        print(f"{len(body['dead_notices'])} dead-lettered notice(s)")
        return 0
    if bool(args.ids) + bool(args.subscriber) + bool(args.all) != 1:
        raise UserError("notices redeliver needs notice ids, --subscriber S or --all")
    selector = ({"notice_ids": args.ids} if args.ids else
                {"subscriber_id": args.subscriber} if args.subscriber else {"all": True})
    body = _json_or_error(_request("post", f"{base}:redeliver", json=selector))
    for result in body["results"]:
        if not result["result"].startswith("redelivering"):
            print(f"{result['notice_id']}: {result['result']}")
    print(f"redelivering {body['redelivered']} notice(s)")
    return 0


def _json_or_error(response) -> dict:
    try:
        body = response.json()
    except ValueError as exc:
        raise UserError(f"unexpected answer {response.status_code} from the service") from exc
    if response.status_code != 200:
        details = "; ".join(f"{e['field']}: {e['problem']}" for e in body.get("errors", []))
        raise UserError(details or body.get("error", response.text))
    return body


def cmd_validate_catalog(args) -> int:
    from rules.measures import Catalog, InvalidCatalog
    if not args.file:
        return cmd_validate_catalogs(args)
    try:
        catalog = Catalog.load(args.file)
    except InvalidCatalog as exc:
        raise UserError(str(exc)) from exc
    print(f"catalog {catalog.version}: {len(catalog.measures)} measures, "
          f"{len(catalog.triggers)} triggers: valid")
    return 0


def cmd_catalog(args) -> int:
    """Runs the restrictions service's migration in its own process (shared/ imports no
    service): ``python -m services.restrictions.migrate`` with this environment."""
    import subprocess
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return subprocess.run([sys.executable, "-m", "services.restrictions.migrate"],
                          cwd=root).returncode


def cmd_validate_catalogs(args) -> int:
    from rules import loader
    try:
        catalogs = loader.load()
    except loader.InvalidCatalogFiles as exc:
        raise UserError("no service would start:\n  " + "\n  ".join(exc.problems)) from exc
    for name, version in sorted(catalogs.versions.items()):
        print(f"{name:<18}{version:<16}{catalogs.paths[name]}")
    measures = catalogs.measures
    print(f"catalog {measures.version}: {len(measures.measures)} measures, "
          f"{len(measures.triggers)} triggers; every catalog file valid, each at the "
          f"version in force (catalog/versions.json)")
    review = measures.legal_review
    print(f"measures.json effective from {measures.effective_from.isoformat()}; legal review "
          f"(法制审核): " + (f"{review['reviewed_by']} on {review['reviewed_at']} "
                             f"({review['reference']})" if review.get("reviewed_by")
                             else f"PENDING ({review.get('pending') or 'not reviewed'})"))
    print("measure catalog versions served (catalog/versions.json measures_versions):")
    for v in catalogs.history.versions:
        since = v.effective_from.isoformat() if v.effective_from else "the start"
        approval = (f"approved by {v.approved_by} on {v.approved_at.isoformat()}"
                    if v.approved_by else "法制审核 PENDING")
        print(f"  {v.version:<14} from {since:<26} {approval}  {v.file}")
    return 0


def _sample_record() -> dict:
    """A serious, listed record decided a month ago: it exercises every part of a model."""
    from contracts.violation import ViolationSchema
    decided = datetime.now(timezone.utc) - timedelta(days=30)
    return ViolationSchema().load({
        "agency_code": "SAMR-110000", "document_number": "CHECK-1",
        "uscc": "91350100M000100Y43", "entity_name": "check", "category": "food_safety",
        "severity": "serious", "penalties": [{"type": "fine", "amount": "50000.00"},
                                             {"type": "suspension", "months": 3}],
        "legal_basis": {"law": "Food Safety Law", "article": "124"},
        "occurred_at": (decided - timedelta(days=10)).isoformat(),
        "decided_at": decided.isoformat(),
        "listing": {"list": "serious_violation", "listed_at": decided.isoformat()}})


def cmd_validate_score_model(args) -> int:
    from rules.score_model import (ROOT as MODEL_ROOT, InvalidScoreModel, ScoreModel, today,
                                   violation_facts)
    path = Path(args.file) if args.file else MODEL_ROOT / "catalog" / "score_model.json"
    try:
        model = ScoreModel.load(path)
        day = today()
        clean = model.score([], day)
        listed = model.score([violation_facts("SAMR-110000/CHECK-1", _sample_record())], day)
    except InvalidScoreModel as exc:  # every problem named (overlaps, gaps, unknown names, ...)
        raise UserError(str(exc)) from exc
    except OSError as exc:
        raise UserError(f"{path}: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: not valid JSON: {exc}") from exc
    except KeyError as exc:
        raise UserError(f"{path}: invalid score model: missing entry {exc}") from exc
    except StopIteration as exc:
        raise UserError(f"{path}: invalid score model: the thresholds do not give every "
                        f"score a class") from exc
    except Exception as exc:  # noqa: BLE001 - whatever the loader refuses is the file's fault
        raise UserError(f"{path}: invalid score model: {exc}") from exc
    print(f"score model {model.version}: valid (no record: {clean.score:g} class "
          f"{clean.risk_class}; a serious listed record: {listed.score:g} class "
          f"{listed.risk_class})")
    return 0


def _vhost() -> str:
    return unquote(urlsplit(_amqp()).path[1:]) or "/"


def cmd_health(args) -> int:
    ok = True
    print(f"{'component':<16}state")
    for service in PORTS:
        try:
            response = requests.get(f"{_url(service)}/health", timeout=2)
            body = response.json()
            state = "up" if response.status_code == 200 and body.get("status") == "ok" else \
                f"degraded ({body.get('error') or body.get('status')})"
        except (requests.RequestException, ValueError):
            state = f"down (no answer at {_url(service)})"
        ok &= state == "up"
        print(f"{service:<16}{state}")
    try:
        from shared.mongo import connect
        client = connect(os.environ.get("MONGO_URI"), serverSelectionTimeoutMS=2000)
        try:
            client.admin.command("ping")
        finally:
            client.close()
        print(f"{'store':<16}up")
    except Exception as exc:  # noqa: BLE001 - any failure means down; say which
        ok = False
        print(f"{'store':<16}down ({type(exc).__name__})")
    vhost = args.vhost or _vhost()
    try:
        from shared.broker_admin import queue_depths
        depths = queue_depths(vhost)
    except Exception as exc:  # noqa: BLE001
        print(f"{'broker':<16}down (management API: {type(exc).__name__})")
        return 1
    dead = sum(v for k, v in depths.items() if k.startswith("dlq."))
    print(f"{'broker':<16}up (vhost {vhost}: {len(depths)} queues, "
          f"{sum(depths.values())} messages waiting, {dead} dead letters)")
    shown = {k: v for k, v in sorted(depths.items()) if args.all_queues or v}
    if shown:
        print(f"\n{'queue':<64}messages")
        for name, depth in shown.items():
            print(f"{name:<64}{depth}")
    if len(shown) < len(depths):
        print(f"({len(depths) - len(shown)} empty queues not shown; --all-queues lists them)")
    return 0 if ok else 1


def cmd_contracts(args) -> int:
    from shared.contracts import DOCS, run
    return run(args.check, Path(args.out) if args.out else DOCS)


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
            key = store.create(args.role, args.subject, rate=args.rate)
            print(key)
            print("keep it: only its hash is stored", file=sys.stderr)
        elif args.action == "list":
            for doc in store.list():
                state = "revoked" if doc.get("revoked_at") else "active"
                print(f"{doc['_id']}  {doc['role']:<14}{doc['subject']:<20}{doc['rate']:>8.0f}/s  {state}")
        else:
            if not store.revoke(args.key_id):
                raise UserError(f"no key {args.key_id}")
            print(f"revoked {args.key_id}")
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
        if name == prefix + "restrictions":  # its gate-keeping answers, against the ledger
            from shared.audit_pages import verify_answers
            verify_answers(client[name], verdict)
        state = "ok" if verdict.ok else "TAMPERED"
        print(f"{name.removeprefix(prefix):<15}{state:<10}{verdict.chains} chain(s), "
              f"{verdict.entries} entries")
        for problem in verdict.problems:
            print(f"    {problem}")
        bad += not verdict.ok
    return 1 if bad else 0


def cmd_pii(args) -> int:
    """Re-mask identity data stored before issue 19 and link what the sources resent; report
    how many copies stayed unmigrated (docs/personal-data.md)."""
    from shared import identity
    from shared.mongo import connect
    from shared.pii_migration import migrate
    try:
        key = identity.load_key()
    except identity.IdentityKeyMissing as exc:
        raise UserError(str(exc)) from exc
    prefix = os.environ.get("DB_PREFIX") or "lianchen"
    try:
        report = migrate(connect(os.environ.get("MONGO_URI")), prefix, key, args.dry_run)
    except Exception as exc:  # noqa: BLE001 - the store is down: a user-facing error
        raise UserError(f"store unreachable: {type(exc).__name__}: {exc}") from exc
    verb = "would change" if args.dry_run else "changed"
    print(f"scanned {report.documents} documents; {verb} {report.changed} "
          f"({report.remasked} copies re-masked, {report.linked} linked to a person id)")
    for where, count in sorted(report.by_collection.items()):
        print(f"    {where}: {count}")
    print(f"unmigrated: {report.unmigrated} copies keep no person id until the source "
          "resends the number (then run this again)")
    return 0


def _request(method, url, **kwargs):
    headers = {**kwargs.pop("headers", {}), "Authorization": f"Bearer {_credential()}"}
    try:
        return requests.request(method, url, timeout=30, headers=headers, **kwargs)
    except requests.RequestException as exc:
        raise Unreachable(f"{url} unreachable ({type(exc).__name__}); is the system running? "
                          f"(make run)") from exc


def _checked(response) -> dict:
    """The JSON answer, or a UserError saying what the service refused and why."""
    try:
        body = response.json()
    except ValueError:
        raise UserError(f"{response.url} answered {response.status_code} without JSON") from None
    if response.status_code >= 400:
        problems = "; ".join(f"{e.get('field')}: {e.get('problem')}"
                             for e in body.get("errors") or [] if isinstance(e, dict))
        raise UserError(f"{response.status_code} {body.get('error', '')}"
                        + (f" ({problems})" if problems else ""))
    return body


ENVIRONMENT = """environment:
  LIANCHEN_KEY               API key for the commands that call a service (never on the command
                             line: it would sit in the shell history and the process list)
  LIANCHEN_<SERVICE>_URL     base URL of a service (REGISTRY, VIOLATIONS, SCORING, RESTRICTIONS,
                             NOTIFICATIONS, REPAIR); default http://127.0.0.1:<its port>
  AMQP_URI                   broker (dead-letters, health); default the local development broker
  RABBIT_MGMT_URL            broker management API (health, dead-letters)
  MONGO_URI, DB_PREFIX       store and database prefix (keys, audit, pii, catalog migrate)
  LIANCHEN_PII_KEY           identity key (pii migrate; docs/personal-data.md)

exit status: 0 done, 1 a check found a problem, 2 a user error (the message says what to fix)"""


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("lianchen")
    except PackageNotFoundError:  # run from a checkout without `pip install -e .`
        return "unknown (not installed)"


def _uscc_argument(text: str) -> str:
    """A USCC as typed: inner spaces and hyphens are dropped, the check character verified."""
    from rules import uscc
    try:
        return uscc.validate(uscc.normalise(text))
    except uscc.InvalidUSCC as exc:
        raise argparse.ArgumentTypeError(f"not a USCC: {exc}") from None


def build_parser() -> argparse.ArgumentParser:
    from rules.vocabulary import SECTORS
    from shared.auth import ROLES
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(prog="lianchen", description=__doc__.splitlines()[0],
                                     epilog=ENVIRONMENT, formatter_class=formatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}",
                        help="print the installed version and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name, help_, run):
        p = sub.add_parser(name, help=help_, description=help_, epilog=ENVIRONMENT,
                           formatter_class=formatter)
        p.set_defaults(run=run)
        return p

    p = command("submit", "record one violation from a JSON file", cmd_submit)
    p.add_argument("file", help="a violation record as JSON (see examples/record.json)")
    p = command("import", "bulk import from CSV or JSON lines", cmd_import)
    p.add_argument("file", help="a .csv (see examples/history.csv) or .jsonl file of records")
    p.add_argument("--batch-size", type=int, default=200,
                   help="records per request (default 200)")
    p.add_argument("--rejected", help="where rejected records go (default FILE.rejected.jsonl)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p = command("status", "an entity's status in every sector", cmd_status)
    p.add_argument("uscc", type=_uscc_argument,
                   help="the entity's Unified Social Credit Code (spaces and hyphens allowed)")
    p.add_argument("--sector", choices=SECTORS, help="only this sector")
    p.add_argument("--as-of", help="the instant to answer for (ISO 8601; default now)")
    p = command("changes", "the change feed: imposed and lifted restrictions", cmd_changes)
    p.add_argument("--since", help="cursor printed by a previous run (default: from the start)")
    p.add_argument("--follow", action="store_true", help="keep polling for new changes (Ctrl-C)")
    p.add_argument("--interval", type=float, default=2.0, help="seconds between polls")
    p.add_argument("--limit", type=int, default=100, help="changes per request (1-1000)")
    p.add_argument("--json", action="store_true", help="one JSON object per change")
    p = command("dead-letters", "list or replay dead letters", cmd_dead_letters)
    p.add_argument("action", choices=("list", "replay"),
                   help="list: show them; replay: put them back on the queue they failed on")
    p.add_argument("queue", nargs="?", default="dlq.violations.intake",
                   help="a dead-letter queue, dlq.<queue> (default dlq.violations.intake)")
    p.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    p = command("notices", "dead-lettered notices: list or redeliver", cmd_notices)
    p.add_argument("action", choices=("dead", "redeliver"),
                   help="dead: list notices no webhook took; redeliver: send them again")
    p.add_argument("ids", nargs="*", help="redeliver: notice ids")
    p.add_argument("--subscriber", help="only this subscriber's notices")
    p.add_argument("--all", action="store_true", help="redeliver: every dead-lettered notice")
    p.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    p = command("validate-catalog", "check a measure catalog file (no file: every catalog "
                                    "file, as the services do)", cmd_validate_catalog)
    p.add_argument("file", nargs="?", help="a measures catalog JSON file (default: catalog/)")
    p = command("catalog", "catalog migration: re-decide every record under the catalog in "
                           "force (restrictions stopped)", cmd_catalog)
    p.add_argument("action", choices=("migrate",), help="migrate: re-decide and record why")
    p = command("validate-score-model", "check a credit score model file",
                cmd_validate_score_model)
    p.add_argument("file", nargs="?", help="a score model JSON file (default: the one in force)")
    p = command("contracts", "regenerate docs/api (OpenAPI, AsyncAPI) from the code",
                cmd_contracts)
    p.add_argument("--check", action="store_true",
                   help="write nothing: exit 1 if stale or disagreeing with the code")
    p.add_argument("--out", help="directory (default docs/api)")
    p = command("keys", "create, list or revoke API keys (administrators, on the store)",
                cmd_keys)
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="a new key, printed once")
    create.add_argument("role", choices=ROLES, help="what the key may do")
    create.add_argument("subject", help="agency code, platform id, gate-keeper name...")
    create.add_argument("--rate", type=float, default=200.0,
                        help="requests per second (default 200)")
    actions.add_parser("list", help="every key: id, role, subject, rate, state")
    revoke = actions.add_parser("revoke", help="revoke a key at once")
    revoke.add_argument("key_id", help="the key id (lc_...), as `keys list` prints it")
    p = command("audit", "verify the hash-chained decision ledgers", cmd_audit)
    p.add_argument("action", choices=("verify",), help="verify: check every chain")
    p.add_argument("--service", help="only this service's ledger")
    p = command("pii", "migrate identity data stored before issue 19", cmd_pii)
    p.add_argument("action", choices=("migrate",), help="migrate: re-mask and key the ids")
    p.add_argument("--dry-run", action="store_true", help="count only, change nothing")
    p = command("health", "services, broker and store up or down; queue depths", cmd_health)
    p.add_argument("--vhost", help="broker virtual host (default: from AMQP_URI)")
    p.add_argument("--all-queues", action="store_true", help="list empty queues too")
    return parser


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version (0) or a usage error argparse printed (2)
        return exc.code if isinstance(exc.code, int) else 2
    warnings.filterwarnings("ignore", message="(?s).*[Ee]ventlet is deprecated")
    try:
        return args.run(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # lianchen changes | head
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
