"""The names tools are listed under: a server's own, when it asks or is the only one."""

from __future__ import annotations

import pytest
from mcp import types

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
