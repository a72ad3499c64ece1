"""The upper bound of a model call's cost, reserved before it runs.

Input tokens. Where every deployment counts with o200k (the ``sim``, or a model
declaring ``tokenizer: o200k_base``) the prompt is counted exactly. Otherwise
the bound is the UTF-8 size of the prompt as JSON plus a chat-template
allowance per message: every byte-level BPE tokenizer (GPT-2, cl100k, o200k,
Llama 3, Qwen, Mistral Tekken) and SentencePiece with byte fallback (Llama 2)
emit at most one token per byte of text, the JSON form only adds bytes, and
no template we know of adds more than ``TEMPLATE_TOKENS`` special tokens per
message. An image part is bounded by ``IMAGE_TOKENS``.

Output tokens. ``max_tokens`` (or ``max_completion_tokens``) times ``n``;
when the client sent none, or more than the principal's cap, governd sets it
on the upstream request, so the bound is enforced by the model server.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from governd import tokens
from governd.actions import Action
from governd.config import GovernConfig, ModelAlias, SimUpstream
from governd.governance.budgets import Cost

TEMPLATE_TOKENS = 16
IMAGE_TOKENS = 2_000


@dataclass(frozen=True, slots=True)
class _AliasBound:
    exact: bool
    input_price: float
    output_price: float
    default_max_tokens: int


class CostBounds:
    """Per model alias: how to bound a call's tokens and the highest prices it could be charged."""

    def __init__(self, cfg: GovernConfig) -> None:
        self._aliases = {name: self._of(cfg, name, alias) for name, alias in cfg.models.items()}

    @staticmethod
    def _of(cfg: GovernConfig, name: str, alias: ModelAlias) -> _AliasBound:
        reachable = [alias, *(cfg.models[f] for f in alias.fallbacks)]
        deps = [d for a in reachable for d in a.deployments]
        prices = [d.pricing or a.pricing for a in reachable for d in a.deployments]
        all_sim = all(isinstance(cfg.upstreams[d.upstream], SimUpstream) for d in deps)
        exact = all_sim or all(a.tokenizer == "o200k_base" for a in reachable)
        return _AliasBound(
            exact=exact,
            input_price=max(max(p.input, p.cached_input or 0.0) for p in prices),
            output_price=max(p.output for p in prices),
            default_max_tokens=alias.default_max_tokens,
        )

    def output_tokens(self, action: Action, cap: int | None) -> int | None:
        """The per-choice output limit governd must impose, or None to keep the client's."""
        if action.operation == "embedding":
            return None
        body = action.body
        asked = body.get("max_completion_tokens") or body.get("max_tokens")
        default = cap or self._aliases[action.model].default_max_tokens
        if not isinstance(asked, int):
            return default
        return cap if cap is not None and asked > cap else None

    def output_limit(self, action: Action, served: str, imposed: int | None) -> int:
        """The per-choice output limit the call runs under (governd's, the client's, or the default)."""
        body = action.body
        limit = (
            imposed
            or body.get("max_completion_tokens")
            or body.get("max_tokens")
            or self._aliases[served].default_max_tokens
        )
        return int(limit)

    def output_price(self, served: str) -> float:
        """The highest USD an output token of ``served`` may cost."""
        return self._aliases[served].output_price / 1_000_000

    def bound(self, action: Action, served: str, imposed: int | None = None) -> Cost:
        """The most the call can cost, in USD and tokens (``imposed``: governd's output limit)."""
        alias = self._aliases[served]
        inputs = input_bound(action, exact=alias.exact)
        outputs = 0
        if action.operation != "embedding":
            outputs = self.output_limit(action, served, imposed) * int(action.body.get("n") or 1)
        usd = (inputs * alias.input_price + outputs * alias.output_price) / 1_000_000
        return Cost(usd=usd, tokens=inputs + outputs)


def input_bound(action: Action, exact: bool) -> int:
    """Upper bound of the prompt's tokens (exact for o200k)."""
    body = action.body
    if action.operation == "chat":
        messages = body.get("messages") or []
        tools = body.get("tools")
        if exact:
            return tokens.count_messages(messages, tools) + _images(messages) * IMAGE_TOKENS
        size = len(orjson.dumps(messages)) + (len(orjson.dumps(tools)) if tools else 0)
        return size + TEMPLATE_TOKENS * (len(messages) + 1) + _images(messages) * IMAGE_TOKENS
    raw = body.get("prompt") if action.operation == "completion" else body.get("input")
    return _text_bound(raw, exact)


def _text_bound(raw: Any, exact: bool) -> int:
    if isinstance(raw, str):
        return tokens.count(raw) if exact else len(raw.encode())
    if isinstance(raw, list) and raw and all(isinstance(x, int) for x in raw):
        return len(raw)
    if isinstance(raw, list):
        return sum(_text_bound(x, exact) for x in raw) + TEMPLATE_TOKENS
    return 0


def _images(messages: list[Any]) -> int:
    count = 0
    for m in messages:
        content = m.get("content") if isinstance(m, dict) else None
        if isinstance(content, list):
            count += sum(
                1
                for p in content
                if isinstance(p, dict) and p.get("type") in ("image_url", "input_image", "image")
            )
    return count
