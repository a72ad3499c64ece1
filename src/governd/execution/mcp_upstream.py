"""Sessions with upstream MCP servers (stdio or streamable HTTP), through the official SDK.

One long-lived ``mcp.Client`` per configured server, opened when governd
starts. A server that is down at start, or whose connection breaks, is
reconnected on the next use; until then its tools are not listed and calls to
them fail with a clear error. Response caching is off: a tool whose
description changes must be seen at once (tool pinning depends on it).

What the server sends about a call in flight (progress, log messages,
sampling and elicitation requests) goes to that call's ``Relay``: the client
that made it. Progress is tied to its call by its token. The others are not
tied to a call on a shared session, so they are relayed only while exactly one
call is in flight on it; with none or several, a request is refused (an
error to the server) and a log message dropped, rather than risk sending one
client's exchange to another.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from typing import Any, Protocol

import httpx2
import mcp_types as types
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from governd.config.agents import McpServerConfig

log = logging.getLogger("governd.mcp")


class McpUnavailable(Exception):
    """An upstream MCP server cannot be reached now."""


class Relay(Protocol):
    """Where a server's messages about a call go: the client that made the call."""

    async def progress(self, progress: float, total: float | None, message: str | None) -> None:
        """The call's progress."""
        ...

    async def log(self, params: types.LoggingMessageNotificationParams) -> None:
        """A log message the server sent during the call."""
        ...

    async def sample(
        self, params: types.CreateMessageRequestParams
    ) -> types.CreateMessageResult | types.ErrorData:
        """The client's answer to the server's sampling request."""
        ...

    async def elicit(
        self, params: types.ElicitRequestParams
    ) -> types.ElicitResult | types.ErrorData:
        """The client's answer to the server's elicitation request."""
        ...


#: How long a server may take to start and answer the handshake.
_CONNECT_S = 30.0
_AMBIGUOUS = (
    "governd relays a server's requests only while exactly one client has a call in flight "
    "on the server ({} now)"
)


class McpUpstream:
    """A session with one upstream MCP server."""

    def __init__(self, name: str, cfg: McpServerConfig) -> None:
        self.name = name
        self.cfg = cfg
        self._client: Client | None = None
        self._owner: asyncio.Task[None] | None = None
        self._closing = asyncio.Event()
        self._lock = asyncio.Lock()
        self._relays: list[Relay] = []  # of the calls in flight

    async def _connect(self) -> Client:
        async with self._lock:
            if self._client is not None:
                return self._client
            # The SDK's transports must be entered and left in one task: an owner task holds it open.
            ready: asyncio.Future[Client] = asyncio.get_running_loop().create_future()
            self._closing = asyncio.Event()
            self._owner = asyncio.create_task(self._own(ready), name=f"mcp-{self.name}")
            try:
                # Starting a server (a process to launch, a handshake) is not a call: it has a
                # bound of its own, so a server slow to start (a loaded machine) is not taken
                # for down. Calls are bounded by ``timeout_s`` in ``forward``.
                self._client = await asyncio.wait_for(ready, max(_CONNECT_S, self.cfg.timeout_s))
            except Exception as exc:
                if ready.cancelled():  # timed out: stop trying
                    self._owner.cancel()
                raise McpUnavailable(
                    f"MCP server {self.name!r} cannot be reached: {type(exc).__name__}"
                ) from None
            return self._client

    async def _own(self, ready: asyncio.Future[Client]) -> None:
        try:
            async with self._new_client() as client:
                ready.set_result(client)
                await self._closing.wait()
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc if isinstance(exc, Exception) else McpUnavailable(str(exc)))
            elif not isinstance(exc, asyncio.CancelledError):
                log.warning("MCP server %s: session ended: %s", self.name, type(exc).__name__)
        finally:
            self._client = None

    def _new_client(self) -> Client:
        cfg = self.cfg
        if cfg.transport == "stdio":
            command = sys.executable if cfg.command == "python" else cfg.command
            assert command is not None
            params = StdioServerParameters(command=command, args=cfg.args, env=cfg.env or None)
            return Client(params, cache=None, **self._relaying())
        assert cfg.url is not None
        http = httpx2.AsyncClient(headers=cfg.headers, timeout=cfg.timeout_s)
        return Client(
            streamable_http_client(cfg.url, http_client=http),
            cache=None,
            **self._relaying(),
        )

    def _relaying(self) -> dict[str, Any]:
        """The client's callbacks for what the server sends (every log level: clients filter).

        The initialize handshake, not the newest protocol's discovery: only on a handshake
        session may a server ask its client something in the middle of a call, which is how
        servers ask for sampling and elicitation today.
        """
        return {
            "mode": "legacy",
            "sampling_callback": self._sample,
            "elicitation_callback": self._elicit,
            "logging_callback": self._log,
            "log_level": "debug",
        }

    def _only(self) -> Relay | None:
        return self._relays[0] if len(self._relays) == 1 else None

    async def _sample(
        self, context: Any, params: types.CreateMessageRequestParams
    ) -> types.CreateMessageResult | types.ErrorData:
        relay = self._only()
        if relay is None:
            return self._unroutable()
        return await relay.sample(params)

    async def _elicit(
        self, context: Any, params: types.ElicitRequestParams
    ) -> types.ElicitResult | types.ErrorData:
        relay = self._only()
        if relay is None:
            return self._unroutable()
        return await relay.elicit(params)

    async def _log(self, params: types.LoggingMessageNotificationParams) -> None:
        relay = self._only()
        if relay is not None:
            await relay.log(params)

    def _unroutable(self) -> types.ErrorData:
        message = _AMBIGUOUS.format(len(self._relays))
        return types.ErrorData(code=types.INVALID_REQUEST, message=message)

    async def _drop(self) -> None:
        owner, self._owner, self._client = self._owner, None, None
        if owner is not None:
            self._closing.set()
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(owner, 10)

    async def list_tools(self) -> list[types.Tool]:
        """The server's tools now (every page)."""
        client = await self._connect()
        tools: list[types.Tool] = []
        cursor = None
        try:
            while True:
                page = await client.list_tools(cursor=cursor)
                tools.extend(page.tools)
                cursor = page.next_cursor
                if not cursor:
                    return tools
        except Exception as exc:
            await self._drop()
            raise McpUnavailable(
                f"MCP server {self.name!r} failed to list tools: {type(exc).__name__}"
            ) from None

    async def call_tool(
        self, tool: str, arguments: dict[str, Any], relay: Relay | None = None
    ) -> types.CallToolResult:
        """Call a tool, relaying what the server sends about it to ``relay``; ``McpUnavailable``
        when the server cannot be reached or does not answer in time."""
        if relay is None:
            found: types.CallToolResult = await self.forward("call_tool", tool, arguments)
            return found
        self._relays.append(relay)
        try:
            result: types.CallToolResult = await self.forward(
                "call_tool", tool, arguments, progress_callback=relay.progress
            )
            return result
        finally:
            self._relays.remove(relay)

    async def forward(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call ``method`` of the SDK's client (``read_resource``, ``get_prompt``...) on this server.

        ``McpUnavailable`` when the server cannot be reached or does not answer in
        time; the server's own protocol errors pass through as they are.
        """
        client = await self._connect()
        try:
            call = getattr(client, method)(*args, **kwargs)
            return await asyncio.wait_for(call, self.cfg.timeout_s)
        except TimeoutError:
            raise McpUnavailable(
                f"MCP server {self.name!r} did not answer within {self.cfg.timeout_s:g} s"
            ) from None
        except Exception as exc:
            if _protocol_error(exc):
                raise
            await self._drop()
            raise McpUnavailable(f"MCP server {self.name!r} failed: {type(exc).__name__}") from None

    async def aclose(self) -> None:
        """Close the session (and stop a stdio server)."""
        await self._drop()


def _protocol_error(exc: Exception) -> bool:
    return isinstance(exc, MCPError)
