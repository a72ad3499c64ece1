"""``/admin/v1/slos``: each SLO's definition, where its groups stand, and its alerts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from governd.controllers.slo_policies import OPERATIONS as POLICY_OPERATIONS
from governd.errors import NotFound
from governd.intent.admin_api import int_param
from governd.intent.http import json_response
from governd.ledger.slos.burn import rules

if TYPE_CHECKING:
    from governd.controllers.slo_alerts import SloAlerts
    from governd.ledger.slos.evaluator import GroupStatus
    from governd.ledger.writer import LedgerWriter


class SloRoutes:
    """Handlers of ``/admin/v1/slos``."""

    def __init__(
        self, *, slos: SloAlerts | None, writer: LedgerWriter, check: Callable[[Request], None]
    ) -> None:
        self._slos = slos
        self._writer = writer
        self._check = check

    def routes(self) -> list[Route]:
        """The Starlette routes."""
        return [
            Route("/admin/v1/slos", self.list_slos, methods=["GET"]),
            Route("/admin/v1/slos/{name}", self.show, methods=["GET"]),
        ]

    async def list_slos(self, request: Request) -> Response:
        """Every SLO with its groups' burn rates, budget left and firing alerts."""
        self._check(request)
        names = self._slos.evaluator.names if self._slos else []
        return json_response({"slos": [self._describe(name) for name in names]})

    async def show(self, request: Request) -> Response:
        """One SLO, with its alert rules, its groups and its latest transitions."""
        self._check(request)
        name = request.path_params["name"]
        if self._slos is None or name not in self._slos.evaluator.names:
            raise NotFound(f"no SLO named {name!r}")
        limit = int_param(request.query_params.get("limit"), "limit", 20, 1, 500)
        await asyncio.to_thread(self._writer.flush)  # every transition recorded so far
        store = self._slos.store
        history = await asyncio.to_thread(store.history, name, limit)
        steps = await asyncio.to_thread(store.recorded, list(POLICY_OPERATIONS.values()))
        actions = [s for s in steps if s.get("slo") == name][:limit]
        return json_response({**self._describe(name), "transitions": history, "actions": actions})

    def _describe(self, name: str) -> dict[str, Any]:
        assert self._slos is not None
        ev = self._slos.evaluator
        cfg = ev.config(name)
        return {
            "name": name,
            "description": cfg.description,
            "objective": cfg.objective,
            "window_s": cfg.window,
            "kind": cfg.kind,
            "sli": cfg.sli,
            "threshold": cfg.threshold,
            "filter": cfg.filter,
            "bad": cfg.bad,
            "good": cfg.good,
            "group_by": cfg.group_by,
            "error_budget": cfg.budget,
            "rules": [
                {"severity": r.severity, "long_s": r.long, "short_s": r.short, "factor": r.factor}
                for r in rules(cfg)
            ],
            "policies": [p.model_dump() for p in cfg.policies],
            "in_force": self._in_force(name),
            "no_data": ev.silent(name),
            "groups": [_group(s) for s in ev.status(name)],
        }

    def _in_force(self, name: str) -> list[dict[str, Any]]:
        assert self._slos is not None
        if self._slos.policies is None:
            return []
        taken = self._slos.policies.book.taken.values()
        return [{**s.as_dict(), "describe": s.override.describe()} for s in taken if s.slo == name]


def _group(status: GroupStatus) -> dict[str, Any]:
    return {
        "group": dict(status.group),
        "windows": [w.as_dict() for w in status.windows],
        "remaining": status.remaining,
        "firing": list(status.firing),
    }
