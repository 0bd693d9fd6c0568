"""Test helper: every answer a test session receives is checked against its declared contract
(``contracts/http.py``): an undeclared status or field fails the test that met it."""
from __future__ import annotations

from urllib.parse import urlsplit

from contracts import http


def checked(session, service: str):
    def check(response, *args, **kwargs):
        method, path = response.request.method, urlsplit(response.request.url).path
        problems = http.response_errors(service, method, path, response.status_code,
                                        response.json())
        assert problems is None, (f"{service}: {method} {path} answered {response.status_code} "
                                  f"outside its contract: {problems}\n{response.text[:800]}")
    session.hooks["response"].append(check)
    return session
