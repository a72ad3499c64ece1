"""``/admin/v1/releases``: create, start, watch, pause, resume, promote and abort releases (admin key)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from governd.errors import InvalidRequest, NotFound
from governd.intent.admin_api import int_param
from governd.intent.http import json_response, read_json

if TYPE_CHECKING:
    from governd.controllers.release_commands import ReleaseCommands
    from governd.controllers.releases import ReleaseController
    from governd.ledger.writer import LedgerWriter

_ACTIONS = ("start", "pause", "resume", "promote", "abort")


class ReleaseRoutes:
    """Handlers of ``/admin/v1/releases``."""

    def __init__(
        self,
        *,
        controller: ReleaseController,
        commands: ReleaseCommands,
        describe: Callable[[Any], dict[str, Any]],
        writer: LedgerWriter,
        check: Callable[[Request], None],
        max_body_bytes: int,
    ) -> None:
        self._c = controller
        self._commands = commands
        self._describe = describe
        self._writer = writer
        self._check = check
        self._max = max_body_bytes

    def routes(self) -> list[Route]:
        """The Starlette routes."""
        return [
            Route("/admin/v1/releases", self.list_releases, methods=["GET"]),
            Route("/admin/v1/releases", self.create, methods=["POST"]),
            Route("/admin/v1/releases/kill", self.kill, methods=["POST"]),
            Route("/admin/v1/releases/{name}", self.show, methods=["GET"]),
            Route("/admin/v1/releases/{name}/history", self.history, methods=["GET"]),
            Route("/admin/v1/releases/{name}/{action}", self.act, methods=["POST"]),
        ]

    async def list_releases(self, request: Request) -> Response:
        """Every release, as ``status`` shows it."""
        self._check(request)
        rows = await asyncio.to_thread(self._c.store.all)
        return json_response({"releases": [self._describe(r) for r in rows]})

    async def show(self, request: Request) -> Response:
        """One release: arms, weights, step, checks and headroom."""
        self._check(request)
        name = request.path_params["name"]
        row = await asyncio.to_thread(self._c.store.get, name)
        if row is None:
            raise NotFound(f"no release {name!r}", param="name")
        return json_response(self._describe(row))

    async def history(self, request: Request) -> Response:
        """A release's recorded changes, newest first."""
        self._check(request)
        name = request.path_params["name"]
        limit = int_param(request.query_params.get("limit"), "limit", 50, 1, 1000)
        await asyncio.to_thread(self._writer.flush)
        found = await asyncio.to_thread(self._c.store.history, name, limit)
        return json_response({"name": name, "history": found})

    async def create(self, request: Request) -> Response:
        """Create a release from a ``releases:`` item as JSON (``{"by": ...}`` optional)."""
        self._check(request)
        body = await read_json(request, self._max)
        by = _text(body.pop("by", None), "by") or "admin"
        row = await self._commands.create(body, by)
        return json_response(self._describe(row), 201)

    async def act(self, request: Request) -> Response:
        """``start``, ``pause``, ``resume``, ``promote`` (``{"full": true}``: to the end) or ``abort``."""
        self._check(request)
        name, action = request.path_params["name"], request.path_params["action"]
        if action not in _ACTIONS:
            raise NotFound(f"no release action {action!r} (one of {', '.join(_ACTIONS)})")
        body = await read_json(request, self._max, empty_ok=True)
        by = _text(body.get("by"), "by") or "admin"
        c = self._commands
        if action == "promote":
            full = body.get("full", False)
            if not isinstance(full, bool):
                raise InvalidRequest("full must be true or false", param="full")
            row = await c.promote(name, by, full)
        elif action == "abort":
            row = await c.abort(name, by, _text(body.get("reason"), "reason") or "")
        else:
            row = await {"start": c.start, "pause": c.pause, "resume": c.resume}[action](name, by)
        return json_response(self._describe(row))

    async def kill(self, request: Request) -> Response:
        """Abort every release of ``{"model": ALIAS}`` in force."""
        self._check(request)
        body = await read_json(request, self._max)
        model = _text(body.get("model"), "model")
        if not model:
            raise InvalidRequest("model is required", param="model")
        by = _text(body.get("by"), "by") or "admin"
        rows = await self._commands.kill(model, by, _text(body.get("reason"), "reason") or "")
        return json_response({"aborted": [self._describe(r) for r in rows]})


def _text(value: object, name: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise InvalidRequest(f"{name} must be a string", param=name)
