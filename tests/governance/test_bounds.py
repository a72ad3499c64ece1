"""Cost bounds are upper bounds: for every tokenizer we know, and for what the sim charges."""

from __future__ import annotations

from typing import Any

import bpe_openai
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from governd.actions import Action, Principal
from governd.config import parse_config
from governd.execution.sim import SimEngine
from governd.governance.bounds import TEMPLATE_TOKENS, CostBounds, input_bound

# The encodings bpe-openai carries natively (the legacy ones need tiktoken).
ENCODINGS = ["cl100k_base", "o200k_base", "voyage3_base"]
CFG = parse_config(
    """
upstreams:
  s: {kind: sim, output_tokens: [5, 40]}
  o: {kind: openai, base_url: "http://127.0.0.1:9/v1"}
models:
  simmed: {deployments: [{upstream: s, model: m}], pricing: {input: 1.0, output: 4.0}}
  remote:
    deployments: [{upstream: o, model: m, pricing: {input: 2.0, output: 8.0}}]
    fallbacks: [simmed]
"""
)


def chat(model: str, messages: list[dict[str, Any]], **extra: Any) -> Action:
    return Action(
        "r", "chat", Principal("acme"), model, {"model": model, "messages": messages, **extra}
    )


@settings(max_examples=150, deadline=None)
@given(text=st.text(min_size=0, max_size=400))
def test_byte_bound_covers_every_byte_level_tokenizer(text: str) -> None:
    messages = [{"role": "user", "content": text}]
    bound = input_bound(chat("remote", messages), exact=False)
    for name in ENCODINGS:
        enc = bpe_openai.get_encoding(name)
        assert len(enc.encode(text)) + TEMPLATE_TOKENS <= bound


async def test_sim_usage_never_exceeds_the_bound() -> None:
    bounds = CostBounds(CFG)
    engine = SimEngine("s", CFG.upstreams["s"])  # type: ignore[arg-type]
    for i in range(30):
        messages = [
            {"role": "system", "content": "be brief " * i},
            {"role": "user", "content": f"q{i} ü €"},
        ]
        action = chat("simmed", messages, max_tokens=10 + i)
        bound = bounds.bound(action, "simmed")
        usage = orjson.loads((await engine.post("/chat/completions", action.body, False)).body)[
            "usage"
        ]
        assert usage["prompt_tokens"] + usage["completion_tokens"] <= bound.tokens
        assert (
            usage["prompt_tokens"] * 1.0 + usage["completion_tokens"] * 4.0
            <= bound.usd * 1e6 + 1e-6
        )


def test_prices_are_the_highest_reachable_through_fallbacks() -> None:
    action = chat("remote", [{"role": "user", "content": "x"}], max_tokens=100)
    bound = CostBounds(CFG).bound(action, "remote")
    inputs = input_bound(action, exact=False)
    assert bound.usd == pytest.approx((inputs * 2.0 + 100 * 8.0) / 1e6)


@pytest.mark.parametrize(
    ("body", "cap", "limit"),
    [
        ({}, None, 1024),
        ({}, 256, 256),
        ({"max_tokens": 50}, 256, None),
        ({"max_tokens": 500}, 256, 256),
        ({"max_completion_tokens": 900}, None, None),
    ],
)
def test_output_limit_imposed_only_when_needed(
    body: dict[str, Any], cap: int | None, limit: int | None
) -> None:
    action = chat("simmed", [{"role": "user", "content": "x"}], **body)
    assert CostBounds(CFG).output_tokens(action, cap) == limit


def test_n_multiplies_the_output_bound() -> None:
    one = CostBounds(CFG).bound(
        chat("simmed", [{"role": "user", "content": "x"}], max_tokens=10), "simmed"
    )
    three = CostBounds(CFG).bound(
        chat("simmed", [{"role": "user", "content": "x"}], max_tokens=10, n=3), "simmed"
    )
    assert three.tokens - one.tokens == 20
