"""The openai SDK against a running governd: every endpoint, headers and the ledger entry."""

from __future__ import annotations

import http.client
import json
import socket

import httpx2
import openai
import pytest

from governd import tokens
from tests.conftest import FakeUpstreamProc
from tests.e2e.conftest import Gateway


def test_chat_non_stream_reports_usage_cost_and_records_entry(gateway: Gateway) -> None:
    raw = gateway.client().chat.completions.with_raw_response.create(
        model="chat-sim", messages=[{"role": "user", "content": "Say hello to the ledger."}]
    )
    reply = raw.parse()
    assert "simulated" in (reply.choices[0].message.content or "")
    usage = reply.usage
    assert usage is not None
    assert usage.prompt_tokens == tokens.count_messages(
        [{"role": "user", "content": "Say hello to the ledger."}]
    )
    rid = raw.headers["x-governd-request-id"]
    assert raw.headers["x-governd-decision"] == "allow"
    expected_cost = (usage.prompt_tokens * 1.0 + usage.completion_tokens * 2.0) / 1e6
    assert float(raw.headers["x-governd-cost-usd"]) == pytest.approx(expected_cost)
    entry = gateway.entry(rid)
    assert entry["principal"] == "acme/research/agents"
    assert entry["status"] == 200
    assert entry["input_tokens"] == usage.prompt_tokens
    assert entry["output_tokens"] == usage.completion_tokens
    assert entry["usage_source"] == "upstream"
    assert entry["deployment"] == "sim/sim-small"
    assert entry["cost_usd"] == pytest.approx(expected_cost)


def test_stream_with_usage_requested_passes_usage_chunk(gateway: Gateway) -> None:
    client = gateway.client()
    with client.chat.completions.with_streaming_response.create(
        model="chat-sim",
        messages=[{"role": "user", "content": "stream please"}],
        stream=True,
        stream_options={"include_usage": True},
        max_tokens=12,
    ) as resp:
        rid = resp.headers["x-governd-request-id"]
        assert "x-governd-cost-usd" not in resp.headers
        chunks = list(resp.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    usage = [c.usage for c in chunks if c.usage]
    assert len(usage) == 1 and usage[0].completion_tokens == 12
    assert tokens.count(text) == 12
    entry = gateway.entry(rid)
    assert entry["stream"] is True and entry["output_tokens"] == 12
    assert entry["ttft_ms"] is not None and entry["usage_source"] == "upstream"


def test_stream_without_usage_requested_hides_usage_chunk_but_ledger_has_it(
    gateway: Gateway,
) -> None:
    stream = gateway.client().chat.completions.create(
        model="chat-sim", messages=[{"role": "user", "content": "hi"}], stream=True, max_tokens=7
    )
    chunks = list(stream)
    assert all(c.usage is None for c in chunks)
    assert all(c.choices for c in chunks)
    entries = gateway.admin.call("GET", "/admin/v1/ledger", order="desc", limit=1)["entries"]
    assert entries[0]["output_tokens"] == 7 and entries[0]["usage_source"] == "upstream"


def test_tools_and_unknown_fields_are_passed_through(
    gateway: Gateway, fake_upstream: FakeUpstreamProc
) -> None:
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    gateway.client().chat.completions.create(
        model="fake-ok",
        messages=[{"role": "user", "content": "x"}],
        tools=tools,  # type: ignore[arg-type]
        extra_body={"vendor_knob": {"depth": 3}},
    )
    last = fake_upstream.requests()["last"]
    assert last["model"] == "ok"
    assert last["tools"] == tools
    assert last["vendor_knob"] == {"depth": 3}


def test_stream_asks_upstream_for_usage(gateway: Gateway, fake_upstream: FakeUpstreamProc) -> None:
    list(
        gateway.client().chat.completions.create(
            model="fake-ok", messages=[{"role": "user", "content": "x"}], stream=True
        )
    )
    assert fake_upstream.requests()["last"]["stream_options"] == {"include_usage": True}


def test_completions_stream_and_non_stream(gateway: Gateway) -> None:
    client = gateway.client()
    done = client.completions.create(model="chat-sim", prompt="Once upon a time", max_tokens=5)
    assert done.usage is not None and done.usage.completion_tokens == 5
    assert done.usage.prompt_tokens == tokens.count("Once upon a time")
    parts = list(
        client.completions.create(model="chat-sim", prompt="Once", max_tokens=4, stream=True)
    )
    assert tokens.count("".join(p.choices[0].text for p in parts if p.choices)) == 4


def test_embeddings_float_and_base64(gateway: Gateway) -> None:
    client = gateway.client()
    res = client.embeddings.create(model="embed-sim", input=["alpha beta", "gamma"])
    assert len(res.data) == 2 and len(res.data[0].embedding) == 256
    assert res.usage.prompt_tokens == tokens.count("alpha beta") + tokens.count("gamma")
    floats = client.embeddings.create(
        model="embed-sim", input="alpha beta", encoding_format="float"
    )
    assert floats.data[0].embedding == pytest.approx(res.data[0].embedding, abs=1e-6)


async def test_the_async_client_parses_embeddings(gateway: Gateway) -> None:
    client = openai.AsyncOpenAI(
        base_url=gateway.url + "/v1", api_key=gateway.keys["research/agents"], max_retries=0
    )
    async with client:
        res = await client.embeddings.create(model="embed-sim", input=["alpha", "beta"])
        short = await client.embeddings.create(model="embed-sim", input="alpha", dimensions=16)
    assert [len(d.embedding) for d in res.data] == [256, 256]
    assert len(short.data[0].embedding) == 16
    assert all(isinstance(x, float) for x in res.data[0].embedding)


def test_prefix_cache_hits_are_reported_and_priced(gateway: Gateway) -> None:
    system = "You are a careful assistant. " * 40
    messages = [{"role": "system", "content": system}, {"role": "user", "content": "q"}]
    client = gateway.client()
    first = client.chat.completions.create(model="chat-sim", messages=messages)  # type: ignore[arg-type]
    raw = client.chat.completions.with_raw_response.create(model="chat-sim", messages=messages)  # type: ignore[arg-type]
    second = raw.parse()
    assert first.usage is not None and second.usage is not None
    cached = second.usage.prompt_tokens_details.cached_tokens  # type: ignore[union-attr]
    assert cached and cached > 200
    entry = gateway.entry(raw.headers["x-governd-request-id"])
    assert entry["cached_tokens"] == cached
    uncached = second.usage.prompt_tokens - cached
    expected = (uncached * 1.0 + cached * 0.5 + second.usage.completion_tokens * 2.0) / 1e6
    assert entry["cost_usd"] == pytest.approx(expected)


def test_models_lists_only_what_the_key_may_use(gateway: Gateway) -> None:
    support = {m.id for m in gateway.client("support").models.list()}
    research = {m.id for m in gateway.client().models.list()}
    assert support == {"chat-sim", "embed-sim"}
    assert {"chat-sim", "fake-ok", "embed-sim"} <= research


@pytest.mark.parametrize(
    ("principal", "model", "found"),
    [
        ("support", "chat-sim", True),
        ("support", "fake-ok", False),  # exists, but not for this key: as if it did not
        ("research/agents", "fake-ok", True),
        ("research/agents", "no-such-model", False),
    ],
)
def test_a_model_is_retrieved_only_by_a_key_that_may_use_it(
    gateway: Gateway, principal: str, model: str, found: bool
) -> None:
    client = gateway.client(principal)
    if found:
        got = client.models.retrieve(model)
        assert (got.id, got.object) == (model, "model")
        return
    with pytest.raises(openai.NotFoundError) as info:
        client.models.retrieve(model)
    assert info.value.code == "model_not_found" and info.value.param == "model"


def test_run_header_groups_calls(gateway: Gateway) -> None:
    client = gateway.client(default_headers={"x-governd-run": "run-e2e-1"})
    for _ in range(3):
        client.chat.completions.create(
            model="chat-sim", messages=[{"role": "user", "content": "s"}]
        )
    run = gateway.admin.call("GET", "/admin/v1/ledger", run="run-e2e-1")["entries"]
    assert len(run) == 3 and {e["run_id"] for e in run} == {"run-e2e-1"}


def test_health_endpoints(gateway: Gateway) -> None:
    assert gateway.admin.call("GET", "/healthz") == {"status": "ok"}
    assert gateway.admin.call("GET", "/readyz")["status"] == "ready"


def test_team_key_acts_as_team(gateway: Gateway) -> None:
    raw = gateway.client("research").chat.completions.with_raw_response.create(
        model="chat-sim", messages=[{"role": "user", "content": "x"}]
    )
    assert gateway.entry(raw.headers["x-governd-request-id"])["principal"] == "acme/research"


def test_sdk_errors_are_typed(gateway: Gateway) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        gateway.client().chat.completions.create(
            model="no-such-model", messages=[{"role": "user", "content": "x"}]
        )
    assert info.value.code == "model_not_found"


def test_client_disconnect_stops_the_stream_and_is_recorded(gateway: Gateway) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", int(gateway.url.rsplit(":", 1)[1]), timeout=30)
    body = json.dumps(
        {
            "model": "chat-sim-slow",
            "stream": True,
            "max_tokens": 50,
            "messages": [{"role": "user", "content": "a long answer please"}],
        }
    )
    conn.request(
        "POST",
        "/v1/chat/completions",
        body,
        {
            "authorization": f"Bearer {gateway.keys['research/agents']}",
            "content-type": "application/json",
        },
    )
    resp = conn.getresponse()
    rid = resp.getheader("x-governd-request-id")
    assert resp.status == 200 and rid
    assert b"data:" in resp.fp.readline() + resp.fp.readline()
    conn.sock.shutdown(socket.SHUT_RDWR)  # hang up after the first events
    conn.close()
    entry = gateway.entry(rid)
    assert entry["status"] == 499 and entry["error_code"] == "client_disconnected"
    # Settled while the sim was still generating: fewer tokens than the 50 asked for.
    assert entry["usage_source"] == "counted" and entry["output_tokens"] < 50
    assert "Traceback" not in gateway.served.output()


def test_usage_by_hour_from_rollups(gateway: Gateway) -> None:
    before = gateway.admin.call("GET", "/admin/v1/usage", principal="research/agents")["usage"]
    gateway.client().chat.completions.create(
        model="chat-sim", messages=[{"role": "user", "content": "u"}]
    )
    after = gateway.admin.call("GET", "/admin/v1/usage", principal="research/agents")["usage"]
    assert sum(r["requests"] for r in after) == sum(r["requests"] for r in before) + 1
    assert all(r["hour"] % 3600 == 0 and r["principal"] == "acme/research/agents" for r in after)


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        # Nullable in OpenAI's OpenAPI document: null means the default.
        ("/v1/chat/completions", {"model": "chat-sim", "stream": None, "max_tokens": None}, 200),
        ("/v1/chat/completions", {"model": "chat-sim", "n": None, "temperature": None}, 200),
        ("/v1/completions", {"model": "chat-sim", "prompt": None, "max_tokens": 2}, 200),
        # Zero where the document allows it (completions), refused where OpenAI refuses it.
        ("/v1/completions", {"model": "chat-sim", "prompt": "hi", "max_tokens": 0}, 200),
        ("/v1/chat/completions", {"model": "chat-sim", "max_tokens": 0}, 400),
        # A special token's spelling is text (the tokenizer refused it: a 500, found by fuzzing).
        (
            "/v1/chat/completions",
            {"model": "chat-sim", "messages": [{"role": "user", "content": "<|endoftext|>"}]},
            200,
        ),
        ("/v1/embeddings", {"model": "embed-sim", "input": "hi", "user": 7}, 400),
        ("/v1/embeddings", {"model": "embed-sim", "input": "hi", "dimensions": 0}, 400),
    ],
)
def test_requests_are_judged_by_openais_document(
    gateway: Gateway, path: str, body: dict[str, object], status: int
) -> None:
    if path == "/v1/chat/completions":
        body = {"messages": [{"role": "user", "content": "hi"}], **body}
    reply = httpx2.post(
        gateway.url + path,
        json=body,
        headers={"authorization": f"Bearer {gateway.keys['research/agents']}"},
    )
    assert reply.status_code == status, reply.text
