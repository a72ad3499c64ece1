"""A whole OpenAI reply built from its stream: how a non-streamed call is metered like a stream.

governd asks the upstream to stream a call the client did not stream when
the call's hold was sized from recorded outputs (so it can be topped up, or
cut, as tokens arrive), then hands the client the reply it asked for: one
``chat.completion`` (or ``text_completion``) with each choice's content, tool
calls and finish reason, and the usage.
"""

from __future__ import annotations

from typing import Any

import orjson

from governd.actions import Usage
from governd.execution.usage import data_chunks


def assemble(events: bytes, usage: Usage, chat: bool) -> bytes:
    """The whole reply the SSE ``events`` stream, with ``usage``."""
    head: dict[str, Any] = {}
    choices: dict[int, dict[str, Any]] = {}
    for chunk in data_chunks(events):
        for key in ("id", "created", "model", "system_fingerprint"):
            if chunk.get(key) is not None:
                head[key] = chunk[key]
        for part in chunk.get("choices") or ():
            if isinstance(part, dict):
                _merge(choices.setdefault(int(part.get("index") or 0), {}), part, chat)
    body = {
        **head,
        "object": "chat.completion" if chat else "text_completion",
        "choices": [_choice(i, c, chat) for i, c in sorted(choices.items())],
        "usage": {
            "prompt_tokens": usage.input_tokens,
            "completion_tokens": usage.output_tokens,
            "total_tokens": usage.input_tokens + usage.output_tokens,
            "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
        },
    }
    return orjson.dumps(body)


def _merge(into: dict[str, Any], part: dict[str, Any], chat: bool) -> None:
    if part.get("finish_reason"):
        into["finish_reason"] = part["finish_reason"]
    if not chat:
        into["text"] = into.get("text", "") + (part.get("text") or "")
        return
    delta = part.get("delta") or {}
    if not isinstance(delta, dict):
        return
    if delta.get("role"):
        into["role"] = delta["role"]
    if isinstance(delta.get("content"), str):
        into["content"] = into.get("content", "") + delta["content"]
    for call in delta.get("tool_calls") or ():
        if not isinstance(call, dict):
            continue
        calls = into.setdefault("tool_calls", {})
        found = calls.setdefault(int(call.get("index") or 0), {"type": "function", "function": {}})
        if call.get("id"):
            found["id"] = call["id"]
        fn = call.get("function") or {}
        if fn.get("name"):
            found["function"]["name"] = found["function"].get("name", "") + fn["name"]
        if isinstance(fn.get("arguments"), str):
            found["function"]["arguments"] = (
                found["function"].get("arguments", "") + fn["arguments"]
            )


def _choice(index: int, c: dict[str, Any], chat: bool) -> dict[str, Any]:
    finish = c.get("finish_reason", "stop")
    if not chat:
        return {
            "index": index,
            "text": c.get("text", ""),
            "finish_reason": finish,
            "logprobs": None,
        }
    message: dict[str, Any] = {"role": c.get("role", "assistant"), "content": c.get("content")}
    if "tool_calls" in c:
        message["tool_calls"] = [c["tool_calls"][i] for i in sorted(c["tool_calls"])]
    return {"index": index, "message": message, "finish_reason": finish, "logprobs": None}
