"""What every request meets first: a cap on its headers, and a brake on sources that fail to
authenticate.

A source (the client address) that gets more than ``failures_per_minute`` (120)
401s is refused with 429 ``too_many_auth_failures`` until its rate falls back
(GCRA: a minute's burst, then the rate), before its key is even looked at:
guessing keys costs the guesser, not the store. governd is the edge (it trusts
no proxy headers), so the address is the peer's; behind a proxy every client
shares one address, and the limit should be raised to match.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from governd.errors import AuthThrottled, GovernError, TooManyHeaders
from governd.intent.http import error_response

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

_WINDOW_S = 60.0
_MAX_SOURCES = 100_000


class Edge:
    """ASGI middleware: header cap, then the brake on failing sources."""

    def __init__(self, app: App, failures_per_minute: int, max_headers: int) -> None:
        self._app = app
        self._step = _WINDOW_S / failures_per_minute
        self._max_headers = max_headers
        #: Per source: the theoretical arrival time of its next failure (GCRA).
        self._tat: dict[str, float] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        if len(scope["headers"]) > self._max_headers:
            many = TooManyHeaders(f"more than {self._max_headers} request headers")
            await _answer(many, scope, receive, send)
            return
        client = scope.get("client")
        source = client[0] if client else ""
        ahead = self._tat.get(source, 0.0) - time.monotonic()
        if ahead > _WINDOW_S:
            braked = AuthThrottled(
                "too many failed authentications from this address", retry_after=ahead - _WINDOW_S
            )
            await _answer(braked, scope, receive, send)
            return

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 401:
                self._failed(source)
            await send(message)

        await self._app(scope, receive, watch)

    def _failed(self, source: str) -> None:
        now = time.monotonic()
        if len(self._tat) >= _MAX_SOURCES:  # forget sources whose failures have all aged out
            self._tat = {s: t for s, t in self._tat.items() if t > now}
        self._tat[source] = max(self._tat.get(source, 0.0), now) + self._step


async def _answer(err: GovernError, scope: Scope, receive: Receive, send: Send) -> None:
    await error_response(err)(scope, receive, send)
