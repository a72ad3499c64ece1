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
from governd.errors import UpstreamError

_DONE = b"data: [DONE]"


def usage_from(data: Any) -> Usage | None:
    """The ``usage`` object of a reply or chunk, if it has one whose counts are counts.

    A count that is not a non-negative integer (a string, a float, a negative)
    makes the whole object unusable: the reply is then counted with the tokenizer.
    """
    if not isinstance(data, dict):
        return None
    raw = data.get("usage")
    if not isinstance(raw, dict):
        return None
    details = raw.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    counts = (raw.get("prompt_tokens"), cached, raw.get("completion_tokens"))
    if not all(c is None or (type(c) is int and c >= 0) for c in counts):
        return None
    prompt, cached_n, output = (c or 0 for c in counts)
    return Usage(prompt, cached_n, output, source="upstream")


def reply_usage(body: bytes, upstream: str, prompt_tokens: Callable[[], int]) -> Usage:
    """Usage of a complete (non-streaming) reply: as reported, else counted from its choices.

    Raises ``UpstreamError`` when the body is not a JSON object: a 200 that
    cannot be read is a failed call, not a free one.
    """
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = None
    if not isinstance(data, dict):
        raise UpstreamError(f"upstream {upstream} sent a reply that is not a JSON object")
    found = usage_from(data)
    if found is not None:
        return found
    pieces = [p for choice in data.get("choices") or () for p in _pieces(choice, "message")]
    return Usage(prompt_tokens(), output_tokens=tokens.count("".join(pieces)), source="counted")


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
            usage_only = isinstance(data, dict) and "usage" in data and not data.get("choices")
            if usage_only and not self._forward_usage:  # governd asked for it, not the client
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
    return [
        p
        for block in events
        for c in data_chunks(block)
        for ch in c.get("choices") or ()
        for p in _pieces(ch)
    ]


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


def _pieces(choice: Any, part: str = "delta") -> list[str]:
    """The text a choice carries in ``part`` (a chunk's ``delta``, a reply's ``message``)."""
    if not isinstance(choice, dict):
        return []
    delta = choice.get(part)
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
