"""Retried and dead-lettered copies stay under the broker's message size limit."""
from shared.entrypoints import (MAX_COPY_BODY, RECEIVED_COMPRESSION_HEADER, TRUNCATED_HEADER,
                                bounded_copy)


def test_a_body_over_the_cap_is_cut_and_its_size_recorded():
    body, headers = bounded_copy(b"[" + b"1," * 4_000_000 + b"1]", {"x-lianchen-reason": "r"})
    assert len(body) == MAX_COPY_BODY
    assert headers[TRUNCATED_HEADER] == 8_000_003
    assert headers["x-lianchen-reason"] == "r"


def test_a_body_within_the_cap_is_kept_whole():
    body, headers = bounded_copy(b'{"a": 1}', {})
    assert body == b'{"a": 1}' and TRUNCATED_HEADER not in headers


def test_the_compression_header_is_kept_under_another_name():
    original = {"compression": "application/x-gzip"}
    _, headers = bounded_copy(b"x", original)
    assert "compression" not in headers
    assert headers[RECEIVED_COMPRESSION_HEADER] == "application/x-gzip"
    assert original == {"compression": "application/x-gzip"}  # the caller's dict is not changed
