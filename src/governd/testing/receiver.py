"""An HTTP server on loopback that keeps every JSON body posted to it: a webhook's far end."""

from __future__ import annotations

from typing import Any

from aiohttp import web


class Receiver:
    """Records ``(path, body)`` of every POST; ``url`` once started."""

    def __init__(self) -> None:
        self.posted: list[tuple[str, Any]] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def __aenter__(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._keep)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _keep(self, request: web.Request) -> web.Response:
        self.posted.append((request.path, await request.json()))
        return web.json_response({"status": "success"})

    def at(self, path: str) -> list[Any]:
        """The bodies posted to ``path``, in order."""
        return [body for p, body in self.posted if p == path]
