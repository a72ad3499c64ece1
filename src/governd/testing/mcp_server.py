"""A small MCP server (official SDK) with one tool per risk tier, a resource and a prompt: an
upstream for tests and demos.

Run it with ``python -m governd.testing.mcp_server`` (stdio) or
``python -m governd.testing.mcp_server --http PORT`` (streamable HTTP).
Notes live in memory. ``GOVERND_TEST_TOOL_DESCRIPTION`` overrides the
description of ``read_note`` (tests change it to exercise tool pinning).
"""

from __future__ import annotations

import argparse
import asyncio
import os

from mcp.server.mcpserver import MCPServer
from mcp_types import ToolAnnotations

NOTES: dict[str, str] = {"welcome": "hello from the notes server"}
server = MCPServer("notes")


@server.tool(
    annotations=ToolAnnotations(read_only_hint=True),
    description=os.environ.get("GOVERND_TEST_TOOL_DESCRIPTION", "Read a note by name."),
)
def read_note(name: str) -> str:
    return NOTES.get(name, f"no note named {name}")


@server.tool(
    annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)
)
def write_note(name: str, text: str) -> str:
    """Create or replace a note."""
    NOTES[name] = text
    return f"wrote {name}"


@server.tool(
    annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=True)
)
def send_note(name: str, to: str) -> str:
    """Send a note to someone outside (pretends to)."""
    return f"sent {name} to {to}"


@server.tool(annotations=ToolAnnotations(destructive_hint=True))
def delete_note(name: str) -> str:
    """Delete a note."""
    return f"deleted {name}" if NOTES.pop(name, None) is not None else f"no note named {name}"


@server.tool()
async def slow(seconds: float) -> str:
    """Wait, then answer (no annotations: governd treats it as destructive)."""
    await asyncio.sleep(seconds)
    return f"waited {seconds}"


@server.resource("notes://welcome", description="The welcome note.")
def welcome_note() -> str:
    return NOTES.get("welcome", "")


@server.prompt(description="Ask for a summary of a note.")
def summarize(name: str) -> str:
    return f"Summarize the note {name!r} in one line."


def main() -> None:
    """Serve over stdio, or streamable HTTP on 127.0.0.1 with --http."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--http", type=int, help="serve streamable HTTP on this port")
    args = parser.parse_args()
    if args.http:
        server.run("streamable-http", host="127.0.0.1", port=args.http)
    else:
        server.run("stdio")


if __name__ == "__main__":
    main()
