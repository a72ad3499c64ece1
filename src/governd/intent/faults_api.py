"""``/admin/v1/upstreams/{name}/faults``: tell a ``sim`` replica to fail or slow down (drills, tests).

How an operator rehearses the loop end to end without breaking a real
server: the sim answers a share of requests with an error, or late, until
told otherwise. Every change is a ledger entry.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from governd.errors import InvalidRequest, NotFound
from governd.execution.sim import Faults, SimEngine
from governd.intent.http import json_response, read_json
from governd.intent.validation import checked

if TYPE_CHECKING:
    from governd.execution.upstream import Upstream
    from governd.pipeline.recorder import Recorder


class FaultsChange(BaseModel):
    """The body of ``PUT /admin/v1/upstreams/{name}/faults`` (all zero: healthy again)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    error_rate: float = Field(0.0, ge=0, le=1, allow_inf_nan=False)
    latency_ms: float = Field(0.0, ge=0, le=600_000, allow_inf_nan=False)
    status: int = Field(503, ge=500, le=599)


class FaultRoutes:
    """Handlers of ``/admin/v1/upstreams/{name}/faults``."""

    def __init__(
        self,
        *,
        upstreams: dict[str, Upstream],
        recorder: Recorder,
        check: Callable[[Request], None],
    ) -> None:
        self._upstreams = upstreams
        self._recorder = recorder
        self._check = check

    def routes(self) -> list[Route]:
        """The Starlette routes."""
        path = "/admin/v1/upstreams/{name}/faults"
        return [
            Route(path, self.show, methods=["GET"]),
            Route(path, self.change, methods=["PUT", "POST"]),
        ]

    async def show(self, request: Request) -> Response:
        """The faults a sim replica is told to make."""
        self._check(request)
        return json_response(self._sim(request).faults.as_dict())

    async def change(self, request: Request) -> Response:
        """Set a sim replica's faults; the change is a ledger entry."""
        self._check(request)
        sim = self._sim(request)
        body = checked(FaultsChange, await read_json(request, 4096))
        sim.faults = Faults(body.error_rate, body.latency_ms, body.status)
        await self._recorder.record_control(
            "",
            "sim_faults",
            f"upstream {sim.name}: error_rate {body.error_rate:g} (HTTP {body.status}), "
            f"latency {body.latency_ms:g} ms",
        )
        return json_response(sim.faults.as_dict())

    def _sim(self, request: Request) -> SimEngine:
        name = request.path_params["name"]
        found = self._upstreams.get(name)
        if found is None:
            raise NotFound(f"no upstream named {name!r}")
        if not isinstance(found, SimEngine):
            raise InvalidRequest(f"upstream {name!r} is not a sim: only a sim can be told to fail")
        return found
