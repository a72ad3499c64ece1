"""Approvals: a held tool call runs when approved, is refused when denied or when time runs out."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from governd.cli.admin_client import AdminClient
from governd.server.launcher import Served, governd_server
from tests.conftest import governd_cli, write_yaml

ADMIN = "adm-approvals"
CONFIG = """
principals: {org: acme, teams: {ops: {}}}
governance: {approval_timeout_s: TIMEOUT}
mcp_servers: {notes: {transport: stdio, command: python, args: [-m, governd.testing.mcp_server]}}
policies:
  - {id: deletes-need-a-human, when: 'tool.tier == "destructive"', effect: require_approval}
ledger: {flush_ms: 5}
"""


def serve(tmp: Path, timeout_s: float) -> Iterator[tuple[Served, str]]:
    config = CONFIG.replace("TIMEOUT", str(timeout_s))
    with governd_server(tmp, write_yaml(tmp / "governd.yaml", config), ADMIN) as served:
        key = AdminClient(served.url, ADMIN).call("POST", "/admin/v1/keys", {"principal": "ops"})[
            "key"
        ]
        yield served, key


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, str]]:
    """A server whose approvals wait long enough for a human on a slow machine."""
    yield from serve(tmp_path_factory.mktemp("approvals"), 120)


@pytest.fixture(scope="module")
def hasty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, str]]:
    """A server whose approvals expire within the test's patience."""
    yield from serve(tmp_path_factory.mktemp("hasty"), 1)


async def held_call(served: Served, key: str, name: str) -> object:
    http = httpx2.AsyncClient(headers={"authorization": f"Bearer {key}"}, timeout=60)
    async with Client(streamable_http_client(served.url + "/mcp", http_client=http)) as client:
        try:
            return await client.call_tool("notes__delete_note", {"name": name})
        except MCPError as exc:
            refused = exc  # raised once the client is closed, not inside its task group
    raise refused


def pending(served: Served, name: str) -> dict[str, str]:
    admin = AdminClient(served.url, ADMIN)
    deadline = time.monotonic() + 20
    while True:  # the call is waiting; its approval appears once it reached governd
        for a in admin.call("GET", "/admin/v1/approvals", status="pending")["approvals"]:
            if json.loads(a["arguments"]) == {"name": name}:
                return dict(a)
        assert time.monotonic() < deadline, "no pending approval appeared"
        time.sleep(0.02)


def governd(served: Served, *args: str) -> subprocess.CompletedProcess[str]:
    return governd_cli(served.url, ADMIN, *args)


def entry_of(served: Served, approval_id: str) -> dict[str, object]:
    entries = AdminClient(served.url, ADMIN).call(
        "GET", "/admin/v1/ledger", model="notes__delete_note", limit=100
    )
    (found,) = [e for e in entries["entries"] if approval_id in str(e["reasons"])]
    return dict(found)


async def test_an_approved_call_runs_and_says_who_approved(server: tuple[Served, str]) -> None:
    served, key = server
    call = asyncio.create_task(held_call(served, key, "welcome"))
    approval = await asyncio.to_thread(pending, served, "welcome")
    assert approval["tool"] == "notes__delete_note" and approval["tier"] == "destructive"
    listed = await asyncio.to_thread(governd, served, "approvals", "list")
    assert approval["id"] in listed.stdout
    done = await asyncio.to_thread(
        governd, served, "approvals", "approve", approval["id"], "--by", "alice"
    )
    assert done.returncode == 0 and "approved by alice" in done.stdout
    result = await asyncio.wait_for(call, 30)
    assert result.content[0].text == "deleted welcome"  # type: ignore[attr-defined]
    entry = entry_of(served, approval["id"])
    assert entry["decision"] == "allow" and entry["status"] == 200
    assert "approved by alice" in str(entry["reasons"])
    again = await asyncio.to_thread(governd, served, "approvals", "deny", approval["id"])
    assert again.returncode == 1 and "already approved" in again.stderr


async def test_a_denied_call_is_refused(server: tuple[Served, str]) -> None:
    served, key = server
    call = asyncio.create_task(held_call(served, key, "keep-me"))
    approval = await asyncio.to_thread(pending, served, "keep-me")
    await asyncio.to_thread(governd, served, "approvals", "deny", approval["id"], "--by", "bob")
    with pytest.raises(MCPError) as info:
        await asyncio.wait_for(call, 30)
    assert info.value.code == -32001 and info.value.data == {"code": "approval_denied"}
    assert "denied by bob" in info.value.message
    entry = entry_of(served, approval["id"])
    assert entry["decision"] == "deny" and "denied by bob" in str(entry["reasons"])


async def test_an_undecided_call_times_out(hasty: tuple[Served, str]) -> None:
    served, key = hasty
    with pytest.raises(MCPError) as info:
        await asyncio.wait_for(held_call(served, key, "nobody-answers"), 30)
    assert info.value.code == -32001 and info.value.data == {"code": "approval_required"}
    expired = AdminClient(served.url, ADMIN).call("GET", "/admin/v1/approvals", status="expired")[
        "approvals"
    ]
    assert any(json.loads(a["arguments"]) == {"name": "nobody-answers"} for a in expired)


def test_unknown_approvals_and_bad_status(server: tuple[Served, str]) -> None:
    served, _ = server
    missing = governd(served, "approvals", "approve", "apr_missing")
    assert missing.returncode == 1 and "no approval" in missing.stderr
    bad = httpx2.get(
        served.url + "/admin/v1/approvals?status=maybe",
        headers={"authorization": f"Bearer {ADMIN}"},
    )
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "status"


async def test_the_only_server_is_listed_under_its_own_names_and_recorded_canonically(
    server: tuple[Served, str],
) -> None:
    served, key = server
    http = httpx2.AsyncClient(headers={"authorization": f"Bearer {key}"}, timeout=60)
    async with Client(streamable_http_client(served.url + "/mcp", http_client=http)) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        plain = await client.call_tool("read_note", {"name": "welcome"})
        prefixed = await client.call_tool("notes__read_note", {"name": "welcome"})  # still works
    assert {"read_note", "write_note", "delete_note"} <= names
    assert not any("__" in n for n in names)
    assert plain.content[0].text == prefixed.content[0].text  # type: ignore[union-attr]
    assert not plain.is_error
    entries = AdminClient(served.url, ADMIN).call(
        "GET", "/admin/v1/ledger", model="notes__read_note", limit=10
    )["entries"]
    assert len(entries) == 2, "the ledger names the tool canonically, however it was called"


async def test_resources_and_prompts_pass_through_to_a_keyed_client(
    server: tuple[Served, str],
) -> None:
    served, key = server
    http = httpx2.AsyncClient(headers={"authorization": f"Bearer {key}"}, timeout=60)
    async with Client(streamable_http_client(served.url + "/mcp", http_client=http)) as client:
        resources = {str(r.uri) for r in (await client.list_resources()).resources}
        read = await client.read_resource("notes://welcome")
        prompts = {p.name for p in (await client.list_prompts()).prompts}
        prompt = await client.get_prompt("summarize", {"name": "welcome"})
    assert "notes://welcome" in resources and read.contents
    assert prompts == {"summarize"}, "the only server's prompts keep their own names"
    assert "Summarize the note 'welcome'" in prompt.messages[0].content.text  # type: ignore[union-attr]
