"""Reads usage out of OpenAI-shaped replies, and meters streams as they pass through.

A stream is forwarded event by event, never buffered whole. governd always asks
the upstream for usage (``stream_options.include_usage``); when the client did
not ask for it, the usage-only event is consumed here and not forwarded, so
the client sees exactly the stream it asked for. When no usage arrives (the
upstream ignores the option, or the stream breaks), the streamed text is
counted with the tokenizer instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import orjson

from governd import tokens
from governd.actions import Usage

_DONE = b"data: [DONE]"


def usage_from(data: Any) -> Usage | None:
    """The ``usage`` object of a reply or chunk, if it has one."""
    if not isinstance(data, dict):
        return None
    raw = data.get("usage")
    if not isinstance(raw, dict):
        return None
    details = raw.get("prompt_tokens_details") or {}
    cached = details.get("cached_tokens") if isinstance(details, dict) else 0
    return Usage(
        input_tokens=int(raw.get("prompt_tokens") or 0),
        cached_tokens=int(cached or 0),
        output_tokens=int(raw.get("completion_tokens") or 0),
        source="upstream",
    )


def usage_of_body(body: bytes) -> Usage | None:
    """Usage of a complete (non-streaming) JSON reply."""
    try:
        return usage_from(orjson.loads(body))
    except orjson.JSONDecodeError:
        return None


class StreamMeter:
    """Forwards SSE events while noting first-byte time, usage and the streamed text."""

    def __init__(self, forward_usage: bool, prompt_tokens: Callable[[], int]) -> None:
        self._forward_usage = forward_usage
        self._prompt_tokens = prompt_tokens
        self._pending = b""
        self._events: list[bytes] = []
        self.usage: Usage | None = None
        self.done = False

    def feed(self, chunk: bytes) -> bytes:
        """Take bytes from upstream; return the complete events to forward now."""
        data = self._pending + chunk if self._pending else chunk
        if b"\r" in data:
            # SSE allows CRLF line ends (sse-starlette, used by llama.cpp's server, sends them).
            data = data.replace(b"\r\n", b"\n")
        end = data.rfind(b"\n\n")
        if end < 0:
            self._pending = data
            return b""
        self._pending = data[end + 2 :]
        ready = data[: end + 2]
        if b'"usage"' not in ready and _DONE not in ready:
            self._events.append(ready)
            return ready
        return b"".join(self._keep(ev + b"\n\n") for ev in ready[:-2].split(b"\n\n"))

    def _keep(self, event: bytes) -> bytes:
        if event.startswith(_DONE):
            self.done = True
            return event
        if b'"usage"' in event and event.startswith(b"data:"):
            try:
                data = orjson.loads(event[5:])
            except orjson.JSONDecodeError:
                data = None
            found = usage_from(data)
            if found is not None:
                self.usage = found
                if not self._forward_usage and isinstance(data, dict) and not data.get("choices"):
                    return b""
        self._events.append(event)
        return event

    def tail(self) -> bytes:
        """Bytes still held when the upstream closed (an unterminated last event)."""
        rest, self._pending = self._pending, b""
        return rest

    def result(self) -> Usage:
        """Usage as reported, else counted from what was streamed."""
        if self.usage is not None:
            return self.usage
        text = "".join(_texts(self._events))
        return Usage(
            input_tokens=self._prompt_tokens(),
            output_tokens=tokens.count(text),
            source="counted",
        )


def data_chunks(block: bytes) -> Iterator[dict[str, Any]]:
    """The JSON objects of the ``data:`` lines of SSE bytes (not ``[DONE]``, not malformed ones)."""
    for line in block.split(b"\n"):
        if not line.startswith(b"data:") or line.startswith(_DONE):
            continue
        try:
            chunk = orjson.loads(line[5:])
        except orjson.JSONDecodeError:
            continue
        if isinstance(chunk, dict):
            yield chunk


def _texts(events: list[bytes]) -> list[str]:
    out: list[str] = []
    for block in events:
        for chunk in data_chunks(block):
            for choice in chunk.get("choices") or ():
                delta = choice.get("delta") or {}
                piece = delta.get("content") if isinstance(delta, dict) else None
                if piece is None:
                    piece = choice.get("text")
                if isinstance(piece, str):
                    out.append(piece)
    return out


class OutputCounter:
    """Counts the output tokens of a stream's events as they pass (a metered stream's meter).

    Each content, text or tool-call-arguments piece is counted with the
    tokenizer on its own: pieces split words, so the count errs high, never low.
    It remembers the last chunk's id, model and time, for the event that ends a
    cut stream.
    """

    def __init__(self) -> None:
        self.tokens = 0
        self.meta: dict[str, Any] = {}

    def add(self, block: bytes) -> int:
        """Count the events of ``block``; returns the output tokens so far."""
        for chunk in data_chunks(block):
            self.meta = {k: chunk[k] for k in ("id", "object", "created", "model") if k in chunk}
            for choice in chunk.get("choices") or ():
                self.tokens += sum(tokens.count(piece) for piece in _pieces(choice))
        return self.tokens

    def ending(self, choices: int, usage: Usage | None) -> bytes:
        """The events that end a cut stream: ``finish_reason: length`` per choice, usage, DONE."""
        chat = self.meta.get("object", "chat.completion.chunk") == "chat.completion.chunk"
        ends = [
            {"index": i, "delta": {}, "finish_reason": "length"}
            if chat
            else {"index": i, "text": "", "finish_reason": "length", "logprobs": None}
            for i in range(choices)
        ]
        out = b"data: " + orjson.dumps({**self.meta, "choices": ends}) + b"\n\n"
        if usage is not None:
            counts = {
                "prompt_tokens": usage.input_tokens,
                "completion_tokens": usage.output_tokens,
                "total_tokens": usage.input_tokens + usage.output_tokens,
            }
            out += b"data: " + orjson.dumps({**self.meta, "choices": [], "usage": counts}) + b"\n\n"
        return out + _DONE + b"\n\n"


def _pieces(choice: Any) -> list[str]:
    if not isinstance(choice, dict):
        return []
    delta = choice.get("delta")
    out: list[str] = []
    if isinstance(delta, dict):
        if isinstance(delta.get("content"), str):
            out.append(delta["content"])
        for call in delta.get("tool_calls") or ():
            args = (call.get("function") or {}).get("arguments") if isinstance(call, dict) else None
            if isinstance(args, str):
                out.append(args)
    if isinstance(choice.get("text"), str):
        out.append(choice["text"])
    return out
