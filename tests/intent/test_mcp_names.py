"""The names tools are listed under: a server's own, when it asks or is the only one."""

from __future__ import annotations

import pytest
from mcp import types
from mcp.shared.exceptions import MCPError

from governd.config.agents import McpServerConfig
from governd.execution.mcp_upstream import McpUpstream
from governd.intent.mcp_content import McpContent
from governd.intent.mcp_gateway import Offered, shown_names


def offered(server: str, tool: str) -> tuple[str, Offered]:
    schema = {"type": "object"}
    return f"{server}__{tool}", Offered(server, types.Tool(name=tool, input_schema=schema), "read")


CATALOG = dict(
    [offered("notes", "read_note"), offered("notes", "search"), offered("web", "search")]
)


@pytest.mark.parametrize(
    ("unprefixed", "expected"),
    [
        (set(), {"notes__read_note", "notes__search", "web__search"}),
        ({"notes"}, {"read_note", "search", "web__search"}),
        # Both offer `search`: neither may take the bare name.
        ({"notes", "web"}, {"read_note", "notes__search", "web__search"}),
    ],
)
def test_a_tool_keeps_its_own_name_only_where_it_is_unique(
    unprefixed: set[str], expected: set[str]
) -> None:
    shown = shown_names(CATALOG, unprefixed)
    assert set(shown) == set(CATALOG), "every tool keeps its canonical name behind the view"
    assert set(shown.values()) == expected


def content(*servers: str) -> McpContent:
    cfg = McpServerConfig(transport="stdio", command="true")
    return McpContent({s: McpUpstream(s, cfg) for s in servers}, lambda: set())


@pytest.mark.parametrize(
    ("servers", "asked", "found"),
    [
        (("notes", "web"), "notes__summarize", ("notes", "summarize")),
        (("notes", "web"), "web__summarize", ("web", "summarize")),
        (("notes",), "summarize", ("notes", "summarize")),  # the only server: its own name
    ],
)
def test_a_prompt_is_asked_of_the_server_its_name_says(
    servers: tuple[str, ...], asked: str, found: tuple[str, str]
) -> None:
    assert content(*servers).prompt_at(asked) == found


@pytest.mark.parametrize("asked", ["summarize", "other__summarize"])
def test_an_unknown_prompt_is_an_invalid_params_error(asked: str) -> None:
    with pytest.raises(MCPError) as info:
        content("notes", "web").prompt_at(asked)
    assert info.value.error.code == -32602
