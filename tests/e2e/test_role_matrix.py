"""The whole role x endpoint matrix against the running system.

For every endpoint the contract registry declares (``contracts/http.py``, itself checked
against the code's decorators) and every role, plus no credential at all: a role the endpoint
does not admit is refused with 403 by the guard; an admitted role is never refused by the
guard (it may still get 400/404/409 from the handler, or a handler's own ownership 403 such as
"another platform's notice"); no credential is 401; public endpoints answer without one.
"""
import re

import pytest

from contracts.http import all_endpoints
from shared.auth import ROLES

pytestmark = pytest.mark.e2e
GUARD_REFUSAL = re.compile(r"role '(\w+)' may not call this endpoint")
SAMPLE = {"code": "91350100M000100Y44", "uscc": "91350100M000100Y44"}


def concrete(rule: str) -> str:
    return re.sub(r"<(?:[a-z]+:)?(\w+)>", lambda m: SAMPLE.get(m.group(1), "matrix-x"), rule)


def call(session, system, endpoint):
    url = system.url(endpoint.service, concrete(endpoint.rule))
    kwargs = {"json": {}} if endpoint.method in ("POST", "PUT", "PATCH") else {}
    return session.request(endpoint.method, url, timeout=30, **kwargs)


def test_every_role_on_every_endpoint(system):
    endpoints = [e for e in all_endpoints() if e.service in system.services]
    assert len(endpoints) > 40  # the registry is complete (checked in tests/unit)
    sessions = {role: system.session(role, f"matrix-{role}") for role in ROLES}
    anonymous = system.session(None)
    wrong, checked = [], 0
    for endpoint in endpoints:
        name = f"{endpoint.service} {endpoint.method} {endpoint.rule}"
        if endpoint.method == "DELETE":
            continue  # covered by the notification tests; a matrix call would delete
        if endpoint.roles is None:
            response = call(anonymous, system, endpoint)
            checked += 1
            if response.status_code in (401, 403):
                wrong.append(f"{name}: public, but {response.status_code} without credential")
            continue
        response = call(anonymous, system, endpoint)
        checked += 1
        if response.status_code != 401:
            wrong.append(f"{name}: {response.status_code} without a credential (expected 401)")
        for role, session in sessions.items():
            response = call(session, system, endpoint)
            checked += 1
            admitted = role == "administrator" or role in endpoint.roles
            refused = response.status_code == 403 and GUARD_REFUSAL.search(response.text)
            if response.status_code >= 500:
                wrong.append(f"{name} as {role}: {response.status_code}")
            elif admitted and refused:
                wrong.append(f"{name}: {role} is admitted by the contract but refused")
            elif not admitted and not refused:
                wrong.append(f"{name}: {role} should be refused, got {response.status_code}")
    print(f"\n== role matrix: {checked} calls over {len(endpoints)} endpoints and "
          f"{len(ROLES)} roles + anonymous")
    assert not wrong, "\n".join(wrong)
