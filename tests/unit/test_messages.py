"""Reading headers and bodies defensively (shared.messages), and the broker's own size cap."""
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from shared.messages import (correlation_or_new, decode_body, header_int, message_context,
                             screen)
from shared.shards import MAX_EVENT_BODY

ROOT = Path(__file__).resolve().parents[2]


def _message(body=b"{}", headers=None, content_type="application/json", encoding="utf-8"):
    return SimpleNamespace(body=body, headers=headers, content_type=content_type,
                           content_encoding=encoding)


@pytest.mark.parametrize("value, expected", [
    (3, 3), ("4", 4), (b"5", 5), ("boom", 0), (-7, 0), (True, 0), ([1], 0), ({"a": 1}, 0),
    (None, 0), ("9" * 40, 0), (10 ** 30, 1_000_000),
])
def test_counter_headers_never_raise(value, expected):
    assert header_int({"x-lianchen-attempts": value}, "x-lianchen-attempts") == expected


def test_headers_that_are_not_a_table_count_as_none():
    assert header_int(None, "x") == 0 and header_int([1], "x") == 0


def test_context_keeps_only_known_keys_of_the_right_type():
    context = message_context(_message(headers={
        "authorization": "Bearer lc_x.y", "nameko.authorization": "Bearer lc_x.y",
        "nameko.auth_token": "t", "nameko.principal": "administrator:ops:k",
        "x-lianchen-attempts": "boom", "nameko.call_id_stack": 5,
        "nameko.correlation_id": "abc-1"}))
    assert context == {"correlation_id": "abc-1"}
    trusted = message_context(_message(headers={"nameko.principal": "agency:SAMR:k",
                                                "nameko.call_id_stack": ["a", "b"]}),
                              trusted=("principal",))
    assert trusted == {"principal": "agency:SAMR:k", "call_id_stack": ["a", "b"]}


@pytest.mark.parametrize("value", ["关联", "a b", "x" * 129, "", "a\r\nX-Evil: 1"])
def test_a_correlation_id_that_cannot_travel_in_a_header_is_replaced(value):
    replaced = correlation_or_new(value)
    assert replaced != value and re.fullmatch(r"[0-9a-f]{32}", replaced)


def test_screen_refuses_before_decoding():
    assert screen(_message(b"x" * 11), 10).startswith("PermanentError: message body of 11")
    assert "compressed" in screen(_message(headers={"compression": "application/x-gzip"}), 10)
    assert "content type" in screen(_message(content_type="application/x-python-serialize"), 10)
    assert "encoding" in screen(_message(encoding="latin-1"), 10)
    assert screen(_message(b"{}"), 10) is None


@pytest.mark.parametrize("body", [b"\xff{", b"[" * 200_000 + b"]" * 200_000, b"", None])
def test_decode_body_raises_only_value_error(body):
    with pytest.raises(ValueError):
        decode_body(_message(body))


@pytest.mark.parametrize("path", ["infra/rabbitmq/rabbitmq.conf", "infra/local/rabbitmq.sh"])
def test_the_broker_refuses_messages_over_4_mib(path):
    text = (ROOT / path).read_text(encoding="utf-8")
    [size] = re.findall(r"^max_message_size = (\d+)$", text, re.M)
    assert MAX_EVENT_BODY < int(size) <= 4 * 1024 * 1024
