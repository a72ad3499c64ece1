"""The sim upstream: vLLM-like replies, correct usage, timing bounds, concurrency, prefix cache."""

from __future__ import annotations

import asyncio
import base64
import struct
import time
from typing import Any

import orjson
import pytest

from governd import tokens
from governd.config import SimUpstream
from governd.execution.sim import SimEngine

FAST = {"kind": "sim", "prefill_tps": 1e9, "decode_tps": 1e9}


def engine(**kw: Any) -> SimEngine:
    return SimEngine("sim", SimUpstream.model_validate({**FAST, **kw}))


async def events(engine: SimEngine, body: dict[str, Any]) -> list[dict[str, Any]]:
    reply = await engine.post("/chat/completions", body, True)
    assert reply.chunks is not None
    raw = b"".join([c async for c in reply.chunks])
    assert raw.endswith(b"data: [DONE]\n\n")
    return [orjson.loads(e[6:]) for e in raw.split(b"\n\n") if e.startswith(b"data: {")]


async def test_chat_reply_has_exact_usage_and_says_it_is_simulated() -> None:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi there"}]
    reply = await engine().post(
        "/chat/completions", {"model": "m", "messages": messages, "max_tokens": 20}, False
    )
    data = orjson.loads(reply.body)
    text = data["choices"][0]["message"]["content"]
    assert "simulated" in text
    assert data["usage"]["prompt_tokens"] == tokens.count_messages(messages)
    assert data["usage"]["completion_tokens"] == 20 == tokens.count(text)
    assert data["choices"][0]["finish_reason"] == "length"
    assert data["model"] == "m"


async def test_stream_usage_only_when_asked() -> None:
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": "x"}],
        "max_tokens": 5,
        "stream": True,
    }
    plain = await events(engine(), body)
    assert all("usage" not in e for e in plain)
    with_usage = await events(engine(), {**body, "stream_options": {"include_usage": True}})
    assert with_usage[-1]["choices"] == [] and with_usage[-1]["usage"]["completion_tokens"] == 5
    text = "".join(c["delta"].get("content", "") for e in with_usage for c in e["choices"])
    assert tokens.count(text) == 5


async def test_n_choices_multiply_output() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": 4, "n": 3}
    data = orjson.loads((await engine().post("/chat/completions", body, False)).body)
    assert len(data["choices"]) == 3 and data["usage"]["completion_tokens"] == 12


async def test_reply_length_is_deterministic_within_the_configured_range() -> None:
    e = engine(output_tokens=(10, 30))
    lengths = set()
    for i in range(30):
        body = {"model": "m", "messages": [{"role": "user", "content": f"prompt {i}"}]}
        first = orjson.loads((await e.post("/chat/completions", body, False)).body)["usage"][
            "completion_tokens"
        ]
        again = orjson.loads((await e.post("/chat/completions", body, False)).body)["usage"][
            "completion_tokens"
        ]
        assert first == again and 10 <= first <= 30
        lengths.add(first)
    assert len(lengths) > 5


async def test_latency_follows_reply_length() -> None:
    e = engine(decode_tps=1000)
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": 50}
    start = time.perf_counter()
    await e.post("/chat/completions", body, False)
    assert time.perf_counter() - start >= 0.05  # 50 tokens at 1000 tok/s cannot be faster


async def test_concurrency_is_bounded_and_the_rest_wait() -> None:
    e = engine(decode_tps=2000, max_concurrency=2)
    peak = 0

    async def watch() -> None:
        nonlocal peak
        while True:
            peak = max(peak, e.running)
            await asyncio.sleep(0)

    watcher = asyncio.create_task(watch())
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": 20}
    await asyncio.gather(*(e.post("/chat/completions", body, False) for _ in range(6)))
    watcher.cancel()
    assert peak == 2


async def test_prefix_cache_reports_cached_tokens_in_blocks() -> None:
    e = engine(block_tokens=16)
    long = "shared system prompt " * 50
    body = {
        "model": "m",
        "messages": [{"role": "system", "content": long}, {"role": "user", "content": "a"}],
    }
    first = orjson.loads((await e.post("/chat/completions", body, False)).body)["usage"]
    assert first["prompt_tokens_details"]["cached_tokens"] == 0
    body["messages"][1]["content"] = "b"
    second = orjson.loads((await e.post("/chat/completions", body, False)).body)["usage"]
    cached = second["prompt_tokens_details"]["cached_tokens"]
    assert cached > 100 and cached % 16 == 0 and cached < second["prompt_tokens"]


async def test_completions_and_embeddings() -> None:
    e = engine(embedding_dim=8)
    comp = orjson.loads(
        (await e.post("/completions", {"model": "m", "prompt": "abc", "max_tokens": 3}, False)).body
    )
    assert comp["object"] == "text_completion" and comp["usage"]["completion_tokens"] == 3
    emb = orjson.loads(
        (await e.post("/embeddings", {"model": "m", "input": ["a b", "c"]}, False)).body
    )
    assert [len(d["embedding"]) for d in emb["data"]] == [8, 8]
    short = await e.post("/embeddings", {"model": "m", "input": "a", "dimensions": 3}, False)
    assert len(orjson.loads(short.body)["data"][0]["embedding"]) == 3
    assert emb["usage"]["prompt_tokens"] == tokens.count("a b") + tokens.count("c")
    b64 = orjson.loads(
        (
            await e.post(
                "/embeddings", {"model": "m", "input": "a b", "encoding_format": "base64"}, False
            )
        ).body
    )
    decoded = struct.unpack("<8f", base64.b64decode(b64["data"][0]["embedding"]))
    assert decoded == pytest.approx(emb["data"][0]["embedding"], abs=1e-6)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/chat/completions", {"model": "m"}),
        ("/completions", {"model": "m", "prompt": 5}),
        ("/embeddings", {"model": "m", "input": []}),
        # A vector of any size would be built on the event loop: 2e6 blocked it for seconds.
        ("/embeddings", {"model": "m", "input": "x", "dimensions": 2_000_000}),
        ("/embeddings", {"model": "m", "input": "x", "dimensions": 0}),
        ("/embeddings", {"model": "m", "input": "x", "dimensions": "8"}),
        ("/embeddings", {"model": "m", "input": "x", "dimensions": None}),
        (
            "/chat/completions",
            {"model": "m", "messages": [{"role": "user", "content": "x"}], "n": 0},
        ),
    ],
)
async def test_bad_requests_get_400(path: str, body: dict[str, Any]) -> None:
    reply = await engine().post(path, body, False)
    assert reply.status == 400 and "error" in orjson.loads(reply.body)
