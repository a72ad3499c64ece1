"""A whole reply built from its stream: content, tool calls, finish reasons and usage."""

from __future__ import annotations

import orjson

from governd.actions import Usage
from governd.execution.assemble import assemble


def sse(*chunks: dict[str, object]) -> bytes:
    return b"".join(b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"


def test_a_chat_stream_with_content_and_a_tool_call() -> None:
    head = {"id": "c1", "created": 7, "model": "m", "object": "chat.completion.chunk"}
    events = sse(
        {**head, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hel"}}]},
        {**head, "choices": [{"index": 0, "delta": {"content": "lo"}}]},
        {
            **head,
            "choices": [
                {
                    "index": 0,
                    "delta": {
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": "t1",
                                "function": {"name": "get", "arguments": '{"a"'},
                            }
                        ]
                    },
                }
            ],
        },
        {
            **head,
            "choices": [
                {
                    "index": 0,
                    "delta": {"tool_calls": [{"index": 0, "function": {"arguments": ": 1}"}}]},
                }
            ],
        },
        {**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
    )
    body = orjson.loads(assemble(events, Usage(5, 2, 9), chat=True))
    assert body["id"] == "c1" and body["object"] == "chat.completion" and body["model"] == "m"
    (choice,) = body["choices"]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "Hello"
    assert choice["message"]["tool_calls"] == [
        {"id": "t1", "type": "function", "function": {"name": "get", "arguments": '{"a": 1}'}}
    ]
    assert body["usage"] == {
        "prompt_tokens": 5,
        "completion_tokens": 9,
        "total_tokens": 14,
        "prompt_tokens_details": {"cached_tokens": 2},
    }


def test_a_completion_stream_with_two_choices() -> None:
    events = sse(
        {"id": "x", "choices": [{"index": 1, "text": "b"}, {"index": 0, "text": "a"}]},
        {"id": "x", "choices": [{"index": 0, "text": "!", "finish_reason": "length"}]},
        {"id": "x", "choices": [{"index": 1, "text": "", "finish_reason": "stop"}]},
    )
    body = orjson.loads(assemble(events, Usage(1, 0, 3), chat=False))
    assert body["object"] == "text_completion"
    assert [(c["index"], c["text"], c["finish_reason"]) for c in body["choices"]] == [
        (0, "a!", "length"),
        (1, "b", "stop"),
    ]
