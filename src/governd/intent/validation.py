"""Validation of OpenAI request bodies: the fields governd relies on, strictly typed.

Unknown fields pass through to the upstream untouched; a field that is present
and wrong gets a 400 naming it (``param``), so nothing malformed reaches an
upstream or the ledger.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from governd.errors import InvalidRequest

M = TypeVar("M", bound=BaseModel)


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


class Request(_Open):
    """What every governed request names: its model."""

    model: str = Field(min_length=1, max_length=256)


class _Message(_Open):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None


class _StreamOptions(_Open):
    include_usage: bool | None = None


class _Sampling(Request):
    # Nullable where OpenAI's OpenAPI document says so (null: the default).
    stream: bool | None = False
    stream_options: _StreamOptions | None = None
    max_tokens: int | None = Field(None, ge=1)
    n: int | None = Field(None, ge=1, le=128)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    user: str | None = None


class ChatRequest(_Sampling):
    """``POST /v1/chat/completions``."""

    messages: list[_Message] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    tools: list[dict[str, Any]] | None = None


class CompletionRequest(_Sampling):
    """``POST /v1/completions``."""

    prompt: str | list[str] | list[int] | list[list[int]] | None
    # 0 is allowed here (``echo`` scores a prompt without generating), not in chat.
    max_tokens: int | None = Field(None, ge=0)


class EmbeddingRequest(Request):
    """``POST /v1/embeddings``."""

    input: str | list[str] | list[int] | list[list[int]]
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: int | None = Field(None, ge=1)
    user: str | None = None


_MODELS: dict[str, type[Request]] = {
    "chat": ChatRequest,
    "completion": CompletionRequest,
    "embedding": EmbeddingRequest,
}


class JobRequest(BaseModel):
    """``POST /v1/jobs``: a command to run on ``gpus`` devices of a queue (unknown fields are errors)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    queue: str = Field(min_length=1, max_length=64)
    gpus: int = Field(ge=1, le=1024)
    command: list[str] = Field(min_length=1, max_length=4096)
    flavor: str | None = Field(None, min_length=1, max_length=130)
    max_runtime_s: float | None = Field(None, gt=0, le=366 * 86400)
    priority: str | None = Field(None, min_length=1, max_length=64)
    env: dict[str, str] = Field(default_factory=dict, max_length=256)
    principal: str | None = Field(
        None, min_length=1, max_length=255, description="admin API only: on whose behalf"
    )


def validate(operation: str, data: dict[str, Any]) -> Request:
    """Check ``data`` against the request schema of ``operation``; 400 naming the field if wrong."""
    return checked(_MODELS[operation], data)


def checked(model: type[M], data: dict[str, Any]) -> M:
    """``data`` as ``model``, or a 400 naming the first wrong field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = [p for p in first["loc"] if not _is_union_tag(p)]
        param = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise InvalidRequest(
            f"{param or 'body'}: {first['msg']}{more}", param=param or None
        ) from None


def _is_union_tag(part: Any) -> bool:
    return isinstance(part, str) and (part.startswith(("list[", "dict[")) or part in ("str", "int"))
