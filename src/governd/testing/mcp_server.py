"""A small MCP server (official SDK) with one tool per risk tier, a resource, a prompt with
completions, and tools that report progress, log, and ask their client (sampling,
elicitation): an upstream for tests and demos.

Run it with ``python -m governd.testing.mcp_server`` (stdio) or
``python -m governd.testing.mcp_server --http PORT`` (streamable HTTP).
Notes live in memory. ``GOVERND_TEST_TOOL_DESCRIPTION`` overrides the
description of ``read_note`` (tests change it to exercise tool pinning).
"""

from __future__ import annotations

import argparse
import asyncio
import os

from mcp.server.mcpserver import Context, MCPServer
from mcp_types import (
    Completion,
    CompletionArgument,
    CompletionContext,
    PromptReference,
    ResourceTemplateReference,
    SamplingMessage,
    TextContent,
    ToolAnnotations,
)
from pydantic import BaseModel

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


@server.tool()
async def progress_and_log(steps: int, ctx: Context) -> str:
    """Report progress and log a line at each of ``steps`` steps."""
    for step in range(1, steps + 1):
        await ctx.report_progress(progress=step, total=steps, message=f"step {step}")
        await ctx.info(f"did step {step}")  # pyright: ignore[reportDeprecated]
    return f"did {steps} steps"


_PAIR = asyncio.Event()
_waiting: list[str] = []


@server.tool()
async def ask(prompt: str, ctx: Context, in_pairs: bool = False) -> str:
    """Ask the client's model (sampling); ``in_pairs``: only once another such call is in too."""
    if in_pairs:
        _waiting.append(prompt)
        if len(_waiting) % 2 == 0:
            _PAIR.set()
        await asyncio.wait_for(_PAIR.wait(), 10)
    try:
        result = await ctx.session.create_message(  # pyright: ignore[reportDeprecated]
            messages=[SamplingMessage(role="user", content=TextContent(type="text", text=prompt))],
            max_tokens=50,
            related_request_id=ctx.request_id,
        )
    except Exception as exc:
        return f"refused: {exc}"
    return f"sampled: {result.content.text if result.content.type == 'text' else '?'}"


class Answer(BaseModel):
    """What ``confirm`` asks the user for."""

    ok: bool


@server.tool()
async def confirm(question: str, ctx: Context) -> str:
    """Ask the client's user a yes/no question (elicitation)."""
    try:
        answer = await ctx.elicit(message=question, schema=Answer)
    except Exception as exc:
        return f"refused: {exc}"
    return f"{answer.action}: {answer.data.ok if answer.action == 'accept' else '-'}"


@server.completion()  # type: ignore[untyped-decorator,no-untyped-call]
async def complete(
    ref: PromptReference | ResourceTemplateReference,
    argument: CompletionArgument,
    context: CompletionContext | None,
) -> Completion:
    """Note names starting with what was typed, for ``summarize``'s ``name``."""
    names = sorted(n for n in NOTES if n.startswith(argument.value))
    return Completion(values=names, total=len(names), has_more=False)


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
