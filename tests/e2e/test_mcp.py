"""The MCP gateway with the official mcp client, in front of real MCP servers (stdio and HTTP)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from governd.cli.admin_client import AdminClient
from governd.server.launcher import Served, free_port, governd_server, serve_process
from tests.conftest import write_yaml

ADMIN = "adm-mcp"

CONFIG = """
principals:
  org: acme
  teams:
    research: {{}}
    support: {{tools: ["notes__read_*", "web__*"]}}
mcp_servers:
  notes: {{transport: stdio, command: python, args: [-m, governd.testing.mcp_server], timeout_s: 1}}
  web:
    transport: http
    url: "{web}"
    tools: {{write_note: {{tier: external}}}}
  dead: {{transport: http, url: "http://127.0.0.1:{dead}/mcp"}}
policies:
  - {{id: no-outside-mail, when: 'tool.name == "notes__send_note" && args.to.endsWith("@rival.example")', effect: deny}}
  - {{id: no-destructive-for-support, when: 'tool.tier == "destructive" && principal.team == "support"', effect: deny}}
ledger: {{flush_ms: 5}}
mcp: {{catalog_ttl_s: 0}}  # list the upstreams on every request: changes show at once
"""


@dataclass
class McpGateway:
    served: Served
    web: Served
    keys: dict[str, str]

    @contextlib.asynccontextmanager
    async def client(
        self, who: str = "research", run: str | None = None, **callbacks: Any
    ) -> AsyncIterator[Client]:
        headers = {"authorization": f"Bearer {self.keys[who]}"}
        if run:
            headers["x-governd-run"] = run
        http = httpx2.AsyncClient(headers=headers, timeout=30)
        async with Client(
            streamable_http_client(self.served.url + "/mcp", http_client=http), **callbacks
        ) as client:
            yield client

    def ledger(self, **query: str) -> list[dict[str, object]]:
        found: list[dict[str, object]] = AdminClient(self.served.url, ADMIN).call(
            "GET", "/admin/v1/ledger", order="desc", limit=50, **query
        )["entries"]
        return found


@pytest.fixture(scope="module")
def mcp_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[McpGateway]:
    tmp: Path = tmp_path_factory.mktemp("mcp")
    port = free_port()
    web_args = ["governd.testing.mcp_server", "--http", str(port)]
    with serve_process(web_args, "/mcp", port, tmp / "web.log", any_status=True) as web:
        cfg = write_yaml(
            tmp / "governd.yaml", CONFIG.format(web=web.url + "/mcp", dead=free_port())
        )
        with governd_server(tmp, cfg, ADMIN) as served:
            admin = AdminClient(served.url, ADMIN)
            keys = {
                t: admin.call("POST", "/admin/v1/keys", {"principal": t})["key"]
                for t in ("research", "support")
            }
            yield McpGateway(served, web, keys)


async def test_tools_of_every_live_server_are_listed_per_principal(mcp_gateway: McpGateway) -> None:
    async with mcp_gateway.client("research") as client:
        research = {t.name for t in (await client.list_tools()).tools}
    async with mcp_gateway.client("support") as client:
        support = {t.name for t in (await client.list_tools()).tools}
    own = ("read_note", "write_note", "send_note", "delete_note", "slow")
    notes = {f"notes__{n}" for n in (*own, "progress_and_log", "ask", "confirm")}
    assert notes | {n.replace("notes__", "web__") for n in notes} == research  # `dead` is down
    assert support == {"notes__read_note"} | {n.replace("notes__", "web__") for n in notes}


async def test_calls_go_through_over_stdio_and_http_and_are_recorded(
    mcp_gateway: McpGateway,
) -> None:
    async with mcp_gateway.client("research", run="run-mcp-1") as client:
        local = await client.call_tool("notes__read_note", {"name": "welcome"})
        remote = await client.call_tool("web__write_note", {"name": "n1", "text": "hi"})
    assert local.content[0].text == "hello from the notes server"  # type: ignore[union-attr]
    assert remote.content[0].text == "wrote n1"  # type: ignore[union-attr]
    entries = mcp_gateway.ledger(run="run-mcp-1")
    by_tool = {e["model"]: e for e in entries}
    assert (
        by_tool["notes__read_note"]["kind"] == "tool_call"
        and by_tool["notes__read_note"]["deployment"] == "notes"
    )
    assert str(by_tool["notes__read_note"]["reasons"]).startswith("tier:read")
    assert str(by_tool["web__write_note"]["reasons"]).startswith(
        "tier:external"
    )  # configured over annotations
    assert all(e["status"] == 200 and e["decision"] == "allow" for e in entries)


@pytest.mark.parametrize(
    ("tool", "tier"),
    [
        ("notes__write_note", "write"),
        ("notes__send_note", "external"),
        ("notes__delete_note", "destructive"),
        ("notes__slow", "destructive"),
    ],
)
async def test_tiers_come_from_annotations_else_destructive(
    mcp_gateway: McpGateway, tool: str, tier: str
) -> None:
    args = {
        "write_note": {"name": "t", "text": "x"},
        "send_note": {"name": "t", "to": "a@b.example"},
        "delete_note": {"name": "t"},
        "slow": {"seconds": 0.01},
    }[tool.split("__")[1]]
    async with mcp_gateway.client("research", run=f"run-tier-{tool}") as client:
        await client.call_tool(tool, args)
    (entry,) = mcp_gateway.ledger(run=f"run-tier-{tool}")
    assert str(entry["reasons"]).startswith(f"tier:{tier}")


@pytest.mark.parametrize(
    ("who", "tool", "args", "code", "policy"),
    [
        (
            "support",
            "notes__write_note",
            {"name": "x", "text": "y"},
            "policy_denied",
            "tool_access",
        ),
        (
            "support",
            "web__delete_note",
            {"name": "x"},
            "policy_denied",
            "no-destructive-for-support",
        ),
        (
            "research",
            "notes__send_note",
            {"name": "x", "to": "boss@rival.example"},
            "policy_denied",
            "no-outside-mail",
        ),
    ],
)
async def test_refusals_are_json_rpc_errors_and_ledger_entries(
    mcp_gateway: McpGateway, who: str, tool: str, args: dict[str, str], code: str, policy: str
) -> None:
    async with mcp_gateway.client(who) as client:
        with pytest.raises(MCPError) as info:
            await client.call_tool(tool, args)
    assert info.value.code == -32001 and info.value.data == {"code": code}
    assert policy in info.value.message
    entry = mcp_gateway.ledger(model=tool)[0]
    assert entry["decision"] == "deny" and entry["status"] == 403


@pytest.mark.parametrize(
    ("tool", "args", "fragment"),
    [
        ("notes__nope", {}, "unknown tool"),
        ("nonsense", {}, "unknown tool"),
        ("notes__read_note", {}, "'name' is a required property"),
        ("notes__read_note", {"name": 5}, "name: 5 is not of type 'string'"),
    ],
)
async def test_bad_input_is_invalid_params(
    mcp_gateway: McpGateway, tool: str, args: dict[str, object], fragment: str
) -> None:
    async with mcp_gateway.client() as client:
        with pytest.raises(MCPError) as info:
            await client.call_tool(tool, args)
    assert info.value.code == -32602 and fragment in info.value.message


async def test_a_slow_tool_times_out_instead_of_hanging(mcp_gateway: McpGateway) -> None:
    async with mcp_gateway.client(run="run-slow") as client:
        with pytest.raises(MCPError) as info:
            await client.call_tool("notes__slow", {"seconds": 5})
        # The session still works afterwards.
        again = await client.call_tool("notes__read_note", {"name": "welcome"})
    assert info.value.code == -32003 and info.value.data == {"code": "upstream_unavailable"}
    assert not again.is_error
    entry = mcp_gateway.ledger(run="run-slow", model="notes__slow")[0]
    assert entry["status"] == 503


async def test_keys_are_required(mcp_gateway: McpGateway) -> None:
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"},
        },
    }
    async with httpx2.AsyncClient() as raw:
        for headers in ({}, {"authorization": "Bearer gvd-wrong"}):
            resp = await raw.post(mcp_gateway.served.url + "/mcp", json=initialize, headers=headers)
            assert resp.status_code == 401 and resp.json()["error"]["code"] == "invalid_api_key"
    http = httpx2.AsyncClient(headers={"authorization": "Bearer gvd-wrong"})
    with pytest.raises(Exception):  # noqa: B017 - the SDK wraps the HTTP 401 in its own errors
        async with Client(
            streamable_http_client(mcp_gateway.served.url + "/mcp", http_client=http)
        ) as client:
            await client.list_tools()


async def test_resources_prompts_and_completions_of_upstreams_pass_through(
    mcp_gateway: McpGateway,
) -> None:
    async with mcp_gateway.client("research") as client:
        uris = {str(r.uri) for r in (await client.list_resources()).resources}
        read = await client.read_resource("notes://welcome")
        prompts = {p.name for p in (await client.list_prompts()).prompts}
        prompt = await client.get_prompt("notes__summarize", {"name": "welcome"})
        ref = types.PromptReference(type="ref/prompt", name="notes__summarize")
        done = await client.complete(ref, {"name": "name", "value": "wel"})
    assert uris == {"notes://welcome"}  # both servers offer it: listed once
    assert read.contents[0].text == "hello from the notes server"  # type: ignore[union-attr]
    assert {"notes__summarize", "web__summarize"} <= prompts
    assert "'welcome'" in prompt.messages[0].content.text  # type: ignore[union-attr]
    assert done.completion.values == ["welcome"]


async def test_progress_logs_sampling_and_elicitation_reach_the_client_that_called(
    mcp_gateway: McpGateway,
) -> None:
    progress: list[tuple[float, float | None, str | None]] = []
    logs: list[Any] = []
    asked: list[str] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append((done, total, message))

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        logs.append(params.data)

    async def on_sampling(context: Any, params: types.CreateMessageRequestParams) -> Any:
        asked.append(params.messages[0].content.text)  # type: ignore[union-attr]
        return types.CreateMessageResult(
            role="assistant", content=types.TextContent(type="text", text="forty-two"), model="m"
        )

    async def on_elicit(context: Any, params: types.ElicitRequestParams) -> Any:
        asked.append(params.message)
        return types.ElicitResult(action="accept", content={"ok": True})

    callbacks = {
        "logging_callback": on_log,
        "sampling_callback": on_sampling,
        "elicitation_callback": on_elicit,
        "mode": "legacy",  # a 2025-era client: servers ask it in the middle of a call
    }
    async with mcp_gateway.client("research", run="run-relay", **callbacks) as client:
        await client.set_logging_level("info")
        stepped = await client.call_tool(
            "web__progress_and_log", {"steps": 3}, progress_callback=on_progress
        )
        sampled = await client.call_tool("web__ask", {"prompt": "the answer?"})
        confirmed = await client.call_tool("notes__confirm", {"question": "go ahead?"})
    assert stepped.content[0].text == "did 3 steps"  # type: ignore[union-attr]
    assert progress == [(1, 3, "step 1"), (2, 3, "step 2"), (3, 3, "step 3")]
    assert logs == ["did step 1", "did step 2", "did step 3"]
    assert sampled.content[0].text == "sampled: forty-two"  # type: ignore[union-attr]
    assert confirmed.content[0].text == "accept: True"  # type: ignore[union-attr]
    assert asked == ["the answer?", "go ahead?"]
    assert {e["model"] for e in mcp_gateway.ledger(run="run-relay")} >= {
        "web__ask",
        "notes__confirm",
    }


async def test_a_servers_request_is_never_sent_to_another_client(mcp_gateway: McpGateway) -> None:
    """Two clients call at once: the server's requests cannot be told apart, so neither gets
    the other's; each call hears that governd refused to route it."""
    sampled: list[str] = []

    async def on_sampling(context: Any, params: types.CreateMessageRequestParams) -> Any:
        sampled.append(params.messages[0].content.text)  # type: ignore[union-attr]
        return types.CreateMessageResult(
            role="assistant", content=types.TextContent(type="text", text="x"), model="m"
        )

    async def one(who: str, prompt: str) -> str:
        async with mcp_gateway.client(who, sampling_callback=on_sampling, mode="legacy") as client:
            got = await client.call_tool("web__ask", {"prompt": prompt, "in_pairs": True})
        return got.content[0].text  # type: ignore[union-attr]

    answers = await asyncio.gather(one("research", "research's secret"), one("research", "other"))
    assert sampled == []
    assert all(a.startswith("refused:") and "exactly one client" in a for a in answers), answers


# Last: it kills the module's HTTP server.
async def test_a_server_that_dies_gives_errors_not_hangs(mcp_gateway: McpGateway) -> None:
    async with mcp_gateway.client() as client:
        assert any(t.name.startswith("web__") for t in (await client.list_tools()).tools)
    mcp_gateway.web.process.kill()
    mcp_gateway.web.process.wait()
    async with mcp_gateway.client() as client:
        with pytest.raises(MCPError) as info:
            await client.call_tool("web__read_note", {"name": "welcome"})
        listed = {t.name for t in (await client.list_tools()).tools}
    assert info.value.code == -32003
    assert not any(n.startswith("web__") for n in listed)
