"""Request validation names the field that is wrong."""

from __future__ import annotations

from typing import Any

import pytest

from governd.errors import InvalidRequest
from governd.intent.validation import validate

MSG = [{"role": "user", "content": "x"}]


@pytest.mark.parametrize(
    ("operation", "body", "param"),
    [
        ("chat", {"messages": MSG}, "model"),
        ("chat", {"model": "m", "messages": "hi"}, "messages"),
        ("chat", {"model": "m", "messages": [{"content": "x"}]}, "messages[0].role"),
        (
            "chat",
            {"model": "m", "messages": [{"role": "user", "content": 5}]},
            "messages[0].content",
        ),
        ("chat", {"model": "m", "messages": MSG, "n": 0}, "n"),
        (
            "chat",
            {"model": "m", "messages": MSG, "max_completion_tokens": 0},
            "max_completion_tokens",
        ),
        (
            "chat",
            {"model": "m", "messages": MSG, "stream_options": {"include_usage": "yes"}},
            "stream_options.include_usage",
        ),
        ("chat", {"model": "m", "messages": MSG, "tools": {"a": 1}}, "tools"),
        ("completion", {"model": "m"}, "prompt"),
        ("completion", {"model": "m", "prompt": {"a": 1}}, "prompt"),
        ("embedding", {"model": "m", "input": 3.5}, "input"),
        ("embedding", {"model": "m", "input": "x", "encoding_format": "hex"}, "encoding_format"),
        ("embedding", {"model": "", "input": "x"}, "model"),
    ],
)
def test_invalid_fields_are_named(operation: str, body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        validate(operation, body)
    assert info.value.param == param
    assert info.value.message.startswith(param)


@pytest.mark.parametrize(
    ("operation", "body"),
    [
        ("chat", {"model": "m", "messages": MSG, "custom": {"x": 1}, "logit_bias": {"1": 2}}),
        (
            "chat",
            {
                "model": "m",
                "messages": [{"role": "user", "content": [{"type": "text", "text": "x"}]}],
            },
        ),
        (
            "chat",
            {"model": "m", "messages": [{"role": "assistant", "content": None, "tool_calls": []}]},
        ),
        ("completion", {"model": "m", "prompt": [1, 2, 3]}),
        ("embedding", {"model": "m", "input": [[1, 2], [3]]}),
    ],
)
def test_valid_requests_pass_with_their_extra_fields(operation: str, body: dict[str, Any]) -> None:
    assert validate(operation, body).model == "m"
