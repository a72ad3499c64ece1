"""Agent runs end to end: the openai and mcp SDKs against a real governd, one run id.

Run limits refuse the step past them; risk events escalate a run, and the
escalated run is tightened (writes held for approval, deletes disabled) while
another run of the same key is not; `governd runs show` prints model and tool
calls of one run in one timeline; tool-call entries carry behaviour signals.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from governd.cli.admin_client import AdminClient
from governd.server.launcher import Served, governd_server
from tests.conftest import governd_cli, write_yaml

ADMIN = "adm-runs"
RUN_USD = 0.05
RUN_WALL_S = 0.5
CONFIG = f"""
principals:
  org: acme
  teams:
    agents: {{}}
    stepper: {{run_limits: {{steps: 3}}}}
    thrifty: {{run_limits: {{usd: {RUN_USD}}}}}
    brief: {{run_limits: {{wall_s: {RUN_WALL_S}}}}}
upstreams:
  sim: {{kind: sim, prefill_tps: 1000000, decode_tps: 100000, output_tokens: [8, 8]}}
models:
  m:
    deployments: [{{upstream: sim, model: sim}}]
    pricing: {{input: 1000, output: 1000}}
mcp_servers:
  notes:
    transport: stdio
    command: python
    args: [-m, governd.testing.mcp_server]
    tools:
      write_note: {{target: name, reveal: [name]}}
runs:
  limits: {{tool_calls: 6}}
  risk:
    weights: {{denied: 2, destructive: 1}}
    levels:
      - {{at: 3, name: guarded, tiers: {{write: require_approval, destructive: deny}}}}
policies:
  - {{id: keep-welcome, when: 'tool.name == "notes__delete_note" && args.name == "welcome"',
     effect: deny}}
governance: {{approval_timeout_s: 60}}
ledger: {{flush_ms: 5}}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, dict[str, str]]]:
    tmp: Path = tmp_path_factory.mktemp("runs")
    with governd_server(tmp, write_yaml(tmp / "governd.yaml", CONFIG), ADMIN) as served:
        admin = AdminClient(served.url, ADMIN)
        keys = {
            team: admin.call("POST", "/admin/v1/keys", {"principal": team})["key"]
            for team in ("agents", "stepper", "thrifty", "brief")
        }
        yield served, keys


@asynccontextmanager
async def mcp(
    served: Served, key: str, run: str | None, mode: str = "auto"
) -> AsyncIterator[Client]:
    headers = {"authorization": f"Bearer {key}", **({"x-governd-run": run} if run else {})}
    http = httpx2.AsyncClient(headers=headers, timeout=60)
    transport = streamable_http_client(served.url + "/mcp", http_client=http)
    async with Client(transport, mode=mode) as client:
        yield client


async def call(served: Served, key: str, run: str | None, tool: str, **args: Any) -> Any:
    """One tool call in its own session; an MCPError is raised after the session closes."""
    async with mcp(served, key, run) as client:
        try:
            return await client.call_tool(tool, args)
        except MCPError as exc:
            refused = exc
    raise refused


def chat(served: Served, key: str, run: str) -> openai.types.chat.ChatCompletion:
    client = openai.OpenAI(base_url=served.url + "/v1", api_key=key, max_retries=0)
    return client.chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": "plan the next step"}],
        max_tokens=8,
        extra_headers={"x-governd-run": run},
    )


def governd(served: Served, *args: str) -> subprocess.CompletedProcess[str]:
    return governd_cli(served.url, ADMIN, *args)


def run_entries(served: Served, run: str) -> list[dict[str, Any]]:
    out = AdminClient(served.url, ADMIN).call("GET", f"/admin/v1/runs/{run}")
    return list(out["entries"])


def pending_for(served: Served, tool: str) -> dict[str, Any]:
    admin = AdminClient(served.url, ADMIN)
    deadline = time.monotonic() + 20
    while True:  # the held call shows up once it reached governd
        for a in admin.call("GET", "/admin/v1/approvals", status="pending")["approvals"]:
            if a["tool"] == tool:
                return dict(a)
        assert time.monotonic() < deadline, "no pending approval appeared"
        time.sleep(0.02)


async def test_risk_escalates_one_run_and_its_timeline_shows_everything(
    server: tuple[Served, dict[str, str]],
) -> None:
    served, keys = server
    key, run = keys["agents"], "agent-1"
    await asyncio.to_thread(chat, served, key, run)
    await call(served, key, run, "notes__write_note", name="todo", text="buy milk")
    with pytest.raises(MCPError) as denied:  # destructive (1) + denied (2): risk 3 -> guarded
        await call(served, key, run, "notes__delete_note", name="welcome")
    assert denied.value.data == {"code": "policy_denied"}

    # Guarded: a delete that policies allow is now disabled for this run ...
    with pytest.raises(MCPError) as disabled:
        await call(served, key, run, "notes__delete_note", name="todo")
    assert disabled.value.code == -32001 and "run_risk:guarded" in disabled.value.message
    # ... while another run of the same key is not tightened.
    other = await call(served, key, "agent-2", "notes__read_note", name="todo")
    assert other.content[0].text == "buy milk"

    # A write now waits for a human.
    held = asyncio.create_task(call(served, key, run, "notes__write_note", name="todo", text="x"))
    approval = await asyncio.to_thread(pending_for, served, "notes__write_note")
    assert approval["policy"] == "run_risk:guarded" and approval["run_id"] == run
    await asyncio.to_thread(governd, served, "approvals", "approve", approval["id"])
    assert (await asyncio.wait_for(held, 30)).content[0].text == "wrote todo"

    entries = await asyncio.to_thread(run_entries, served, run)
    kinds = [(e["kind"], e["model"] or e["operation"], e["decision"]) for e in entries]
    assert kinds == [
        ("model_call", "m", "allow"),
        ("tool_call", "notes__write_note", "allow"),
        ("tool_call", "notes__delete_note", "deny"),
        ("control", "run_escalated", "allow"),
        ("tool_call", "notes__delete_note", "deny"),
        ("tool_call", "notes__write_note", "allow"),
    ]
    escalated = entries[3]["reasons"]
    assert escalated.startswith("run agent-1 risk 0 -> 3: level guarded")

    write = json.loads(entries[1]["signals"])
    assert write["target"] == "todo" and write["side_effect"] == "mutation"
    assert write["args"] == {"name": "todo", "text": "[redacted]"}
    assert len(write["args_digest"]) == 64 and write["outcome"] == "ok"
    assert json.loads(entries[2]["signals"])["risk"] == {
        "events": ["destructive", "denied"],
        "points": 3.0,
    }

    shown = await asyncio.to_thread(governd, served, "runs", "show", run)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    # Refused calls are not steps; the disabled delete added 3 more risk (destructive, denied).
    assert "acme/agents: 3 steps, 2/6 tool calls" in lines[1]
    assert "risk 6 (level guarded)" in lines[1]
    timeline = lines[2:]
    assert len(timeline) == 6 and "model_call" in timeline[0] and "notes__write_note" in timeline[1]
    assert "target=todo" in timeline[1] and "run_escalated" in timeline[3]
    listed = await asyncio.to_thread(governd, served, "runs", "list")
    assert run in listed.stdout and "agent-2" in listed.stdout


async def test_run_limits_refuse_the_step_past_them(
    server: tuple[Served, dict[str, str]],
) -> None:
    served, keys = server
    for _ in range(3):
        await asyncio.to_thread(chat, served, keys["stepper"], "steps-1")
    with pytest.raises(openai.RateLimitError) as steps:
        await asyncio.to_thread(chat, served, keys["stepper"], "steps-1")
    assert steps.value.code == "run_limit_exceeded" and "its 3 steps" in steps.value.message
    await asyncio.to_thread(chat, served, keys["stepper"], "steps-2")  # a new run starts afresh

    async with mcp(served, keys["agents"], "tools-1") as client:
        for _ in range(6):
            await client.call_tool("notes__read_note", {"name": "welcome"})
        with pytest.raises(MCPError) as tools:
            await client.call_tool("notes__read_note", {"name": "welcome"})
    assert tools.value.code == -32002 and tools.value.data == {"code": "run_limit_exceeded"}


def test_a_run_past_its_wall_time_is_refused(server: tuple[Served, dict[str, str]]) -> None:
    """Steps keep working until the run is older than its wall-time limit, then are refused."""
    served, keys = server
    started = time.monotonic()
    chat(served, keys["brief"], "wall-1")
    deadline = started + 20
    while True:  # the condition under test is time passing: poll until the limit bites
        try:
            chat(served, keys["brief"], "wall-1")
        except openai.RateLimitError as exc:
            refused = exc
            break
        assert time.monotonic() < deadline, "the run was never refused"
        time.sleep(0.05)
    assert time.monotonic() - started >= RUN_WALL_S
    assert refused.code == "run_limit_exceeded" and "wall time of 0.5 s" in refused.message
    chat(served, keys["brief"], "wall-2")  # another run of the same key is not affected


def test_a_run_never_spends_past_its_usd_limit(server: tuple[Served, dict[str, str]]) -> None:
    """Concurrent calls of one run: each holds its cost bound, so spend stays under the limit."""
    served, keys = server

    def one(_: int) -> str:
        try:
            chat(served, keys["thrifty"], "usd-1")
            return "ok"
        except openai.RateLimitError as exc:
            return str(exc.code)

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(16) as pool:
        outcomes = list(pool.map(one, range(16)))
    assert "ok" in outcomes and "run_limit_exceeded" in outcomes
    spent = sum(e["cost_usd"] for e in run_entries(served, "usd-1"))
    assert 0 < spent <= RUN_USD


async def test_an_mcp_session_without_a_run_id_is_a_run(
    server: tuple[Served, dict[str, str]],
) -> None:
    """Handshake-era clients have sessions: each is a run. The stateless protocol has none."""
    served, keys = server
    admin = AdminClient(served.url, ADMIN)
    for mode in ("legacy", "legacy", "auto"):
        async with mcp(served, keys["agents"], None, mode) as client:
            await client.call_tool("notes__read_note", {"name": mode})
            await client.call_tool("notes__read_note", {"name": mode})
    page = admin.call("GET", "/admin/v1/ledger", model="notes__read_note", order="desc", limit=6)
    runs = [e["run_id"] for e in reversed(page["entries"])]
    assert runs[0] == runs[1] and runs[2] == runs[3] and runs[0] != runs[2]
    assert all(r.startswith("mcp-") for r in runs[:4])
    assert runs[4:] == [None, None]
