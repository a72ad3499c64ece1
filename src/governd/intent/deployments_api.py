"""``/admin/v1/deployments``: each deployment's breaker, and the trips an operator clears.

A deployment is tripped when its upstream bills past the bound a call was
given (``pipeline/overbilling.py``): it gets no calls until an operator, having
dealt with the upstream, clears it here (``governd deployments clear``). The
clearing is a ledger entry naming who did it.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from governd.errors import Conflict, NotFound
from governd.execution.router import Router
from governd.intent.http import json_response
from governd.observe.alerts import AlertSender
from governd.pipeline.overbilling import INCIDENT
from governd.pipeline.recorder import Recorder


class DeploymentRoutes:
    """Handlers of ``/admin/v1/deployments``."""

    def __init__(
        self,
        *,
        router: Router,
        recorder: Recorder,
        alerts: AlertSender,
        check: Callable[[Request], None],
    ) -> None:
        self._router = router
        self._recorder = recorder
        self._alerts = alerts
        self._check = check

    def routes(self) -> list[Route]:
        """The Starlette routes."""
        return [
            Route("/admin/v1/deployments", self.list, methods=["GET"]),
            Route("/admin/v1/deployments/{name:path}/clear", self.clear, methods=["POST"]),
        ]

    async def list(self, request: Request) -> Response:
        """Every deployment, and why it is tripped (null: in rotation)."""
        self._check(request)
        tripped = self._router.tripped
        return json_response(
            {
                "deployments": [
                    {"deployment": name, "tripped": tripped.get(name)}
                    for name in self._router.deployments()
                ]
            }
        )

    async def clear(self, request: Request) -> Response:
        """Put a tripped deployment back in rotation; recorded with who cleared it."""
        self._check(request)
        name = request.path_params["name"]
        if name not in self._router.deployments():
            raise NotFound(f"no deployment {name!r} (upstream/model)")
        why = self._router.clear(name)
        if why is None:
            raise Conflict(f"deployment {name!r} is not tripped")
        by = request.query_params.get("by") or "an operator"
        await self._recorder.record_control("", "upstream_cleared", f"{name} cleared by {by}")
        await self._alerts.resolve(INCIDENT, {"deployment": name}, self._recorder.clock.now())
        return json_response({"deployment": name, "tripped": None, "was": why})
