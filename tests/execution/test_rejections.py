"""An upstream's refusal reaches the client with its reason and param, never with a secret."""

from __future__ import annotations

import orjson
import pytest

from governd.errors import InvalidRequest, UpstreamError
from governd.execution.rejections import scrub, upstream_rejection

KEY = "k3y-of-the-upstream-0123456789"


def body(message: object, param: object = None) -> bytes:
    return orjson.dumps({"error": {"message": message, "param": param}})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("max_tokens is too large", "max_tokens is too large"),
        (f"bad key {KEY}", "bad key [redacted]"),
        ("got Authorization: Bearer abc.def-ghi", "got Authorization: Bearer [redacted]"),
        ("you sent sk-proj-AbCdEf0123456789", "you sent [redacted]"),
        ("governd key gvd-AbCdEf0123456789xyz leaked", "governd key [redacted] leaked"),
        ("x" * 600, "x" * 499 + "…"),
    ],
)
def test_scrub_keeps_the_reason_and_drops_credentials(text: str, expected: str) -> None:
    assert scrub(text, [KEY, "ab"]) == expected  # a two-letter "secret" would shred any text


def test_a_4xx_keeps_its_status_message_and_param() -> None:
    err = upstream_rejection(422, body("n must be at most 8", "n"), "up", [KEY])
    assert isinstance(err, InvalidRequest)
    assert (err.status, err.param, str(err)) == (422, "n", "n must be at most 8")


def test_a_4xx_echoing_the_credential_is_scrubbed() -> None:
    err = upstream_rejection(400, body(f"invalid header: Bearer {KEY}"), "up", [f"Bearer {KEY}"])
    assert KEY not in str(err) and "invalid header" in str(err)


@pytest.mark.parametrize("status", [401, 403])
def test_a_refusal_of_governds_credentials_says_only_that(status: int) -> None:
    err = upstream_rejection(status, body(f"bad {KEY}"), "up", [KEY])
    assert (
        isinstance(err, UpstreamError) and str(err) == "upstream up refused governd's credentials"
    )


@pytest.mark.parametrize("raw", [b"not json", b"[]", body(None), orjson.dumps({"error": 3})])
def test_an_unreadable_refusal_says_which_upstream(raw: bytes) -> None:
    assert str(upstream_rejection(400, raw, "up")) == "upstream up rejected the request"
