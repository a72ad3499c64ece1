"""A server's messages about a tool call, passed on to the client that made the call.

Each goes on the client's request stream (``related_request_id``), so it
reaches that client and no other: progress against the client's own token
(nothing when it asked for none), log messages at the level the client asked
for, and the server's sampling and elicitation requests, whose answers (or
the client's refusal) go back to the server.
"""

from __future__ import annotations

import warnings
from typing import Any

import mcp_types as types
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError
from mcp.shared.message import ServerMessageMetadata


class ClientRelay:
    """The relay of one call: the client's request context on governd's MCP server."""

    def __init__(self, ctx: Any) -> None:
        self._ctx = ctx
        self._related = ServerMessageMetadata(related_request_id=ctx.request_id)

    async def progress(self, progress: float, total: float | None, message: str | None) -> None:
        """Pass on progress (a no-op for a client that sent no progress token)."""
        await self._ctx.session.report_progress(progress, total, message)

    async def log(self, params: types.LoggingMessageNotificationParams) -> None:
        """Pass on a log message, if the client asked for its level."""
        with warnings.catch_warnings():
            # Deprecated in the newest protocol, still what clients of earlier ones expect.
            warnings.simplefilter("ignore", MCPDeprecationWarning)
            await self._ctx.session.send_log_message(
                params.level, params.data, params.logger, related_request_id=self._ctx.request_id
            )

    async def sample(
        self, params: types.CreateMessageRequestParams
    ) -> types.CreateMessageResult | types.ErrorData:
        """Ask the client to sample; its answer or its error."""
        request = types.CreateMessageRequest(params=params)
        return await self._ask(request, types.CreateMessageResult)  # type: ignore[no-any-return]

    async def elicit(
        self, params: types.ElicitRequestParams
    ) -> types.ElicitResult | types.ErrorData:
        """Ask the client's user; the answer or the client's error."""
        request = types.ElicitRequest(params=params)
        return await self._ask(request, types.ElicitResult)  # type: ignore[no-any-return]

    async def _ask(self, request: Any, answer: type[Any]) -> Any:
        try:
            return await self._ctx.session.send_request(request, answer, metadata=self._related)
        except MCPError as exc:
            return exc.error
        except Exception as exc:  # no back channel, a client gone: the server hears why
            return types.ErrorData(
                code=types.INTERNAL_ERROR,
                message=f"the client cannot be asked: {type(exc).__name__}",
            )
