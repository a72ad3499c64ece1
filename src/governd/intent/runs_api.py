"""``/admin/v1/runs``: agent runs, each with its live counters and its timeline from the ledger."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from governd.actions import Principal
from governd.errors import NotFound
from governd.intent.admin_api import int_param
from governd.intent.http import json_response

if TYPE_CHECKING:
    from governd.governance.principals import PrincipalTree
    from governd.governance.runs import Runs
    from governd.ledger.storage import Storage
    from governd.ledger.writer import LedgerWriter

_MAX_TIMELINE = 10_000


class RunRoutes:
    """Handlers of ``/admin/v1/runs``."""

    def __init__(
        self,
        *,
        runs: Runs,
        storage: Storage,
        tree: PrincipalTree,
        writer: LedgerWriter,
        check: Callable[[Request], None],
    ) -> None:
        self._runs = runs
        self._storage = storage
        self._tree = tree
        self._writer = writer
        self._check = check

    def routes(self) -> list[Route]:
        """The Starlette routes."""
        return [
            Route("/admin/v1/runs", self.list_runs, methods=["GET"]),
            Route("/admin/v1/runs/{run_id}", self.show, methods=["GET"]),
        ]

    async def list_runs(self, request: Request) -> Response:
        """The most recently active runs (``principal``: only its subtree)."""
        self._check(request)
        principal = self._principal(request)
        limit = int_param(request.query_params.get("limit"), "limit", 50, 1, 1000)
        await asyncio.to_thread(self._writer.flush)
        rows = await asyncio.to_thread(self._storage.runs, principal, limit)
        return json_response({"runs": rows})

    async def show(self, request: Request) -> Response:
        """One run: per acting principal its counters, limits and risk level; then every entry."""
        self._check(request)
        run_id = request.path_params["run_id"]
        q = request.query_params
        limit = int_param(q.get("limit"), "limit", 1000, 1, _MAX_TIMELINE)
        after = int_param(q.get("after"), "after", None, 0, None)
        await asyncio.to_thread(self._writer.flush)
        rows = await asyncio.to_thread(
            self._storage.query,
            run=run_id,
            principal=self._principal(request),
            after=after,
            limit=limit,
        )
        if not rows and after is None:
            raise NotFound(f"no run {run_id!r} in the ledger", param="run")
        paths = sorted({r["principal"] for r in rows if r["kind"] != "control"})
        return json_response(
            {
                "run": run_id,
                "principals": [await self._state(path, run_id) for path in paths],
                "entries": rows,
                "next": rows[-1]["seq"] if len(rows) == limit else None,
            }
        )

    async def _state(self, path: str, run_id: str) -> dict[str, Any]:
        runs = self._runs
        principal = Principal.from_path(path)
        totals = await runs.totals(principal, run_id)
        level = runs.level_at(totals.risk) if totals else None
        return {
            "principal": path,
            **(totals.as_dict() if totals else {}),
            "level": level.name if level else None,
            "limits": runs.limits_for(principal).model_dump(),
        }

    def _principal(self, request: Request) -> str | None:
        principal = request.query_params.get("principal")
        return self._tree.resolve(principal).path if principal else None
