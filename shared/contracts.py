"""The published contracts against the code: discovery, checks and the checked-in copies.

    python -m shared.contracts [--check]     (also: lianchen contracts, make contracts)

writes ``docs/api/openapi.json`` and ``docs/api/asyncapi.json`` from ``contracts.http`` and
the marshmallow schemas, or with ``--check`` says what is stale and what disagrees with the
code, and exits 1. The checks read the services' own decorators: every ``@http`` handler
(method, rule, roles, handler name) must be declared in ``contracts.http`` and nothing else
may be; every ``make_event`` type must be produced by the service ``contracts.asyncapi``
names; every ``event_handler`` must listen where that service publishes.
"""
from __future__ import annotations

import argparse
import importlib
import inspect
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "api"
ENTRYPOINTS_ATTR = "nameko_entrypoints"  # nameko.extensions.ENTRYPOINT_EXTENSIONS_ATTR


@dataclass(frozen=True)
class Route:
    service: str
    handler: str
    method: str
    rule: str
    roles: tuple[str, ...] | None


def service_classes() -> dict[str, type]:
    """Every nameko service class in ``services/*/service.py``, by service name."""
    found = {}
    for path in sorted((ROOT / "services").glob("*/service.py")):
        module = importlib.import_module(f"services.{path.parent.name}.service")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == module.__name__ and isinstance(getattr(cls, "name", None), str) \
                    and any(getattr(member, ENTRYPOINTS_ATTR, None)
                            for _, member in inspect.getmembers(cls, inspect.isfunction)):
                found[cls.name] = cls
    return found


def http_routes(service_cls) -> list[Route]:
    """The HTTP entrypoints of a service class, inherited ones included."""
    from nameko.web.handlers import HttpRequestHandler
    routes = []
    for name, member in inspect.getmembers(service_cls, inspect.isfunction):
        for extension in getattr(member, ENTRYPOINTS_ATTR, ()):
            if isinstance(extension, HttpRequestHandler):
                roles = getattr(extension, "roles", "undeclared")
                routes.append(Route(service_cls.name, name, extension.method.upper(),
                                    extension.url, roles))
    return sorted(routes, key=lambda r: (r.rule, r.method))


def event_handlers(service_cls) -> list[tuple[str, str, str]]:
    """``(source service, event type, handler)`` of every event handler of a service class."""
    from nameko.events import EventHandler
    found = []
    for name, member in inspect.getmembers(service_cls, inspect.isfunction):
        for extension in getattr(member, ENTRYPOINTS_ATTR, ()):
            if isinstance(extension, EventHandler):
                found.append((extension.source_service, extension.event_type, name))
    return found


def route_problems(classes: dict[str, type] | None = None) -> list[str]:
    """How the code's HTTP handlers and ``contracts.http`` disagree (empty when they agree)."""
    from contracts import http
    classes = service_classes() if classes is None else classes
    problems = []
    for name in sorted(set(classes) - set(http.SERVICES)):
        problems.append(f"service {name!r} is not in contracts.http.SERVICES")
    for name in sorted(set(http.SERVICES) - set(classes)):
        problems.append(f"contracts.http.SERVICES names {name!r}, which has no service class")
    declared = {(e.service, e.method, e.rule): e for e in http.all_endpoints()}
    in_code = {(r.service, r.method, r.rule): r for name in classes for r in http_routes(classes[name])}
    for key in sorted(set(in_code) - set(declared)):
        route = in_code[key]
        problems.append(f"{route.service}: {route.method} {route.rule} ({route.handler}) is not "
                        f"declared; add to contracts/http.py:\n    "
                        + http.stub(route.service, route.handler, route.method, route.rule,
                                    route.roles))
    for key in sorted(set(declared) - set(in_code)):
        problems.append(f"{key[0]}: {key[1]} {key[2]} is declared in contracts.http but no "
                        f"handler serves it")
    for key in sorted(set(declared) & set(in_code)):
        endpoint, route = declared[key], in_code[key]
        if endpoint.roles != route.roles:
            problems.append(f"{key[0]}: {key[1]} {key[2]}: roles in code {route.roles!r}, "
                            f"in contracts.http {endpoint.roles!r}")
        if endpoint.handler != route.handler:
            problems.append(f"{key[0]}: {key[1]} {key[2]}: handler in code {route.handler!r}, "
                            f"in contracts.http {endpoint.handler!r}")
    return problems


_MAKE_EVENT = re.compile(r"make_event\(\s*[\"'](\w+)[\"']")


def event_problems(classes: dict[str, type] | None = None) -> list[str]:
    """How ``make_event`` calls and event handlers disagree with ``contracts.asyncapi``."""
    from contracts import asyncapi, events
    classes = service_classes() if classes is None else classes
    problems = [f"event type {t} has no producer in contracts.asyncapi.PRODUCERS"
                for t in asyncapi.unknown_producers()]
    for t in sorted(set(asyncapi.PRODUCERS) - set(events.PAYLOADS)):
        problems.append(f"contracts.asyncapi.PRODUCERS names {t}, which is not in PAYLOADS")
    for path in sorted((ROOT / "services").glob("*/*.py")):
        service = path.parent.name
        for event_type in _MAKE_EVENT.findall(path.read_text(encoding="utf-8")):
            producer = asyncapi.PRODUCERS.get(event_type)
            if producer != service:
                problems.append(f"{path.relative_to(ROOT)} makes {event_type}, which "
                                f"contracts.asyncapi.PRODUCERS says {producer!r} publishes")
    for name, cls in sorted(classes.items()):
        for source, event_type, handler in event_handlers(cls):
            if asyncapi.PRODUCERS.get(event_type) != source:
                problems.append(f"{name}.{handler} listens for {event_type} from {source}, "
                                f"but the AsyncAPI document has it from "
                                f"{asyncapi.PRODUCERS.get(event_type)!r}")
    return problems


def documents() -> dict[str, str]:
    """The checked-in files' expected content, freshly generated."""
    from contracts import asyncapi, openapi
    return {"openapi.json": openapi.dumps(openapi.build()),
            "asyncapi.json": openapi.dumps(asyncapi.build())}


def stale(directory: Path = DOCS) -> list[str]:
    """Files under ``directory`` that differ from freshly generated documents."""
    return [name for name, text in documents().items()
            if not (directory / name).exists()
            or (directory / name).read_text(encoding="utf-8") != text]


def write(directory: Path = DOCS) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in documents().items():
        (directory / name).write_text(text, encoding="utf-8")
        written.append(directory / name)
    return written


def run(check: bool, directory: Path = DOCS, out=None, err=None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    problems = route_problems() + event_problems()
    for problem in problems:
        print(f"contract: {problem}", file=err)
    if check:
        outdated = stale(directory)
        for name in outdated:
            print(f"stale: {directory / name} (regenerate: lianchen contracts)", file=err)
        if problems or outdated:
            return 1
        print(f"contracts agree with the code; {directory} is up to date", file=out)
        return 0
    if problems:
        print("not written: fix the disagreements above first", file=err)
        return 1
    for path in write(directory):
        print(f"wrote {path}", file=out)
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.contracts",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 when stale or disagreeing with the code")
    parser.add_argument("--out", type=Path, default=DOCS)
    args = parser.parse_args(argv)
    import warnings
    warnings.filterwarnings("ignore", message="(?s).*[Ee]ventlet is deprecated")
    return run(args.check, args.out)


if __name__ == "__main__":
    sys.exit(main())
