"""OpenAPI 3 documents generated from ``contracts.http`` and the marshmallow schemas.

    build()           the whole system (docs/api/openapi.json): each path names its service
                      and the server that answers it
    build("scoring")  one service's document (what that service serves at GET /openapi.json)

Generated with apispec's MarshmallowPlugin, so the published schema is the one the code loads
and dumps with. Two schemas that would publish under one name are an error, not a warning.
"""
from __future__ import annotations

import json
import warnings
from functools import lru_cache

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.ext.marshmallow.common import resolve_schema_cls
from marshmallow import fields

from contracts import http
from contracts.common import USCC

OPENAPI_VERSION = "3.0.3"
USCC_PATTERN = r"^[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}$"

DESCRIPTION = """\
Lianchen (联惩): credit-based joint punishment. Each service answers its own paths; the
`servers` of a path say which service that is (local ports of `make run`).

Authentication: `Authorization: Bearer <key>` on every endpoint except the published ones
(health, contracts, metrics). Each operation lists the roles it admits in `x-roles`;
administrators are always admitted (`["administrator"]` alone: administrators only). 401: no
valid credential; 403: wrong role; 429: the key's rate limit (see `Retry-After`).

Errors are JSON: `{"error": "...", "errors": [{"field": "...", "problem": "..."}]}`; bad input
is a 400 naming each field and its problem, never a 500.

Send `X-Correlation-Id` to follow a request through the logs of every service; each answer
carries it back (a new one when none was sent).
"""


def schema_name(schema) -> str:
    cls = resolve_schema_cls(schema)
    name = cls.__name__
    return name[: -len("Schema")] if name.endswith("Schema") and name != "Schema" else name


def _wire_format(converter, field, ret, **kwargs) -> dict:
    """USCC codes and string-dumped decimals are published as what they are on the wire."""
    if isinstance(field, USCC):
        extra = {"pattern": USCC_PATTERN, "minLength": 18, "maxLength": 18}
        if "description" not in ret:
            extra["description"] = ("Unified Social Credit Code (统一社会信用代码), "
                                    "check character verified")
        return extra
    if isinstance(field, fields.Decimal) and field.as_string:
        # A JSON string: numeric bounds do not apply to it; the pattern says what does.
        minimum = ret.pop("minimum", None)
        ret.pop("maximum", None)
        sign = "" if minimum is not None and float(minimum) >= 0 else "-?"
        digits = None if field.places is None else -int(field.places.as_tuple().exponent)
        places = r"(\.[0-9]+)?" if digits is None else rf"(\.[0-9]{{1,{digits}}})?"
        return {"type": "string", "format": "decimal", "pattern": f"^{sign}[0-9]+{places}$"}
    return {}


def new_spec(title: str, openapi_version: str = OPENAPI_VERSION, **options) -> APISpec:
    plugin = MarshmallowPlugin(schema_name_resolver=schema_name)
    spec = APISpec(title=title, version=http.API_VERSION, openapi_version=openapi_version,
                   plugins=[plugin], **options)
    plugin.converter.add_attribute_function(_wire_format)
    return spec


def _operation(endpoint: http.Endpoint) -> dict:
    parameters = [{"in": "path", "name": name, "required": True, "schema": {"type": "string"},
                   **({"description": "Unified Social Credit Code"} if name == "code" else {})}
                  for name in endpoint.path_params]
    if endpoint.query is not None:
        parameters.append({"in": "query", "schema": endpoint.query})
    responses = {}
    for status, answer in endpoint.answers.items():
        content_schema = answer.schema if answer.schema is not None else (
            {"type": "string"} if answer.content_type.startswith("text/") else {"type": "object"})
        responses[str(status)] = {"description": answer.description,
                                  "content": {answer.content_type: {"schema": content_schema}}}
    operation = {
        "operationId": f"{endpoint.service}_{endpoint.handler}"
        if endpoint.roles is not http.PUBLIC else endpoint.handler,
        "summary": endpoint.summary,
        "tags": [endpoint.service] if endpoint.roles is not http.PUBLIC else ["published"],
        "responses": responses,
    }
    if endpoint.description:
        operation["description"] = endpoint.description
    if endpoint.deprecated is not None:
        operation["deprecated"] = True
    if parameters:
        operation["parameters"] = parameters
    if endpoint.request is not None:
        operation["requestBody"] = {"required": True, "content": {
            "application/json": {"schema": endpoint.request}}}
    if endpoint.roles is http.PUBLIC:
        operation["security"] = []
        operation["x-roles"] = []
    else:
        operation["security"] = [{"bearerAuth": []}]
        # roles=() in the code: administrators only (they are admitted everywhere)
        operation["x-roles"] = list(endpoint.roles) or ["administrator"]
        roles_text = (", ".join(endpoint.roles) + " (administrators always)."
                      if endpoint.roles else "administrators only.")
        operation["description"] = (operation.get("description", "") + "\n\nRoles: "
                                    + roles_text).strip()
    return operation


def _server(service: str) -> dict:
    return {"url": f"http://127.0.0.1:{http.SERVICES[service]}", "description": service}


def build(service: str | None = None) -> dict:
    """The OpenAPI document of one service, or of the whole system when ``service`` is None."""
    if service is not None and service not in http.SERVICES:
        raise ValueError(f"unknown service {service!r}")
    title = f"Lianchen {service} API" if service else "Lianchen HTTP API"
    spec = new_spec(title, info={"description": DESCRIPTION}, tags=[
        {"name": name, "description": f"{name} service (port {port} locally)"}
        for name, port in http.SERVICES.items() if service in (None, name)]
        + [{"name": "published", "description": "served by every service, no credential"}])
    spec.components.security_scheme("bearerAuth", {
        "type": "http", "scheme": "bearer",
        "description": "An API key lc_<key id>.<secret> (lianchen keys create ROLE SUBJECT)"})
    spec.components.schema("Error", schema=http.ErrorSchema)
    endpoints = http.for_service(service) if service else http.all_endpoints()
    servers: dict[str, list[str]] = {}
    owners: dict[tuple[str, str], str] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # two schemas under one name: fail, never suffix
        for endpoint in endpoints:
            key = (endpoint.method, endpoint.path)
            if endpoint.roles is http.PUBLIC and key in owners:
                servers[endpoint.path].append(endpoint.service)
                continue
            if key in owners:
                raise ValueError(f"{endpoint.method} {endpoint.path} is declared by both "
                                 f"{owners[key]} and {endpoint.service}")
            owners[key] = endpoint.service
            servers.setdefault(endpoint.path, [])
            if endpoint.service not in servers[endpoint.path]:
                servers[endpoint.path].append(endpoint.service)
            spec.path(path=endpoint.path,
                      operations={endpoint.method.lower(): _operation(endpoint)})
        document = spec.to_dict()
    if service is None:
        for path, names in servers.items():
            document["paths"][path]["servers"] = [_server(name) for name in names]
    return document


@lru_cache(maxsize=None)
def served(service: str) -> bytes:
    """The service's document as served (built once per process)."""
    return dumps(build(service)).encode("utf-8")


def dumps(document: dict) -> str:
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"
