"""Jobs over HTTP: ``/v1/jobs`` with a governd key, ``/admin/v1/jobs`` with the admin key.

A key sees and cancels only the jobs of its own subtree; the admin API sees
every job and may submit on behalf of any principal (``principal``; default
the org).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from governd.actions import Principal
from governd.errors import InvalidRequest, NotFound
from governd.governance.scheduler.report import queue_report, unit_report
from governd.intent.admin_api import int_param
from governd.intent.auth import bearer
from governd.intent.http import json_response, read_json
from governd.intent.validation import JobRequest, checked
from governd.ledger.job_record import JobRecord
from governd.pipeline.jobs.pipeline import Jobs
from governd.pipeline.jobs.terms import JobSpec

if TYPE_CHECKING:
    from governd.config import GovernConfig
    from governd.governance.keys import KeyRing
    from governd.governance.principals import PrincipalTree

_MAX_BODY = 256 * 1024
_MAX_LOG = 4 * 1024 * 1024

Caller = Callable[[Request], Awaitable[Principal | None]]


class JobRoutes:
    """Handlers of ``/v1/jobs`` and ``/admin/v1/jobs``."""

    def __init__(
        self,
        *,
        config: GovernConfig,
        keyring: KeyRing,
        tree: PrincipalTree,
        jobs: Jobs,
        check: Callable[[Request], None],
    ) -> None:
        self._config = config
        self._keyring = keyring
        self._tree = tree
        self._jobs = jobs
        self._check = check

    def routes(self) -> list[Route]:
        """The Starlette routes, once with a key and once with the admin key."""
        out = []
        for prefix, caller in (("/v1/jobs", self._key), ("/admin/v1/jobs", self._admin)):
            out += [
                Route(prefix, self._bind(self.submit, caller), methods=["POST"]),
                Route(prefix, self._bind(self.list_jobs, caller), methods=["GET"]),
                Route(prefix + "/{job_id}", self._bind(self.show, caller), methods=["GET"]),
                Route(
                    prefix + "/{job_id}/cancel", self._bind(self.cancel, caller), methods=["POST"]
                ),
                Route(prefix + "/{job_id}/logs", self._bind(self.logs, caller), methods=["GET"]),
            ]
        out.append(Route("/admin/v1/compute", self.compute, methods=["GET"]))
        return out

    @staticmethod
    def _bind(
        handler: Callable[[Request, Principal | None], Awaitable[Response]], caller: Caller
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            return await handler(request, await caller(request))

        return endpoint

    async def _key(self, request: Request) -> Principal | None:
        return await self._keyring.authenticate(bearer(request))

    async def _admin(self, request: Request) -> Principal | None:
        self._check(request)
        return None  # the admin sees everything

    async def submit(self, request: Request, caller: Principal | None) -> Response:
        """Queue a job: 201 with the job, or the refusal (recorded in the ledger)."""
        body = checked(JobRequest, await read_json(request, _MAX_BODY))
        if caller is not None and body.principal is not None:
            raise InvalidRequest("principal: only the admin API submits on behalf of others")
        principal = caller or self._on_behalf(body.principal)
        spec = JobSpec(
            body.queue,
            body.gpus,
            tuple(body.command),
            body.flavor,
            body.max_runtime_s,
            body.priority,
            tuple(body.env.items()),
        )
        row = await self._jobs.submit(principal, spec)
        return json_response(view(row), 201)

    def _on_behalf(self, path: str | None) -> Principal:
        if path is None:
            return Principal(self._config.principals.org)
        return self._tree.resolve(path)

    async def list_jobs(self, request: Request, caller: Principal | None) -> Response:
        """Jobs, newest first (``status``: one status, or ``active``)."""
        q = request.query_params
        limit = int_param(q.get("limit"), "limit", 100, 1, 1000)
        named = q.get("principal")
        principal = caller.path if caller else (self._tree.resolve(named).path if named else None)
        rows = await asyncio.to_thread(self._jobs.store.list, principal, q.get("status"), limit)
        return json_response({"jobs": [view(r) for r in rows]})

    async def show(self, request: Request, caller: Principal | None) -> Response:
        """One job, with its events."""
        return json_response(view(await self._row(request, caller)))

    async def cancel(self, request: Request, caller: Principal | None) -> Response:
        """Cancel a job (a finished one is returned as it is)."""
        row = await self._row(request, caller)
        by = caller.path if caller else "admin"
        return json_response(view(await self._jobs.cancel(row.id, by)))

    async def logs(self, request: Request, caller: Principal | None) -> Response:
        """The job's output so far (its last 4 MiB), as ``{"id", "log"}``."""
        row = await self._row(request, caller)
        text = await asyncio.to_thread(_tail, self._jobs.log_path(row.id))
        return json_response({"id": row.id, "log": text.decode(errors="replace")})

    async def compute(self, request: Request) -> Response:
        """Quotas and use per queue and flavor, every device unit with the job holding it, and
        whether this replica is the one scheduling (``scheduler.here``)."""
        self._check(request)
        snap = await self._jobs.shown()
        scheduler = {"replica": self._jobs.replica, "here": self._jobs.leading}
        return json_response(
            {"queues": queue_report(snap), "units": unit_report(snap), "scheduler": scheduler}
        )

    async def _row(self, request: Request, caller: Principal | None) -> JobRecord:
        job_id = request.path_params["job_id"]
        row = self._jobs.get(job_id) or await asyncio.to_thread(self._jobs.store.get, job_id)
        if row is None or (caller is not None and not caller.contains(row.principal)):
            raise NotFound(f"no job {job_id}", param="job_id")
        return row


def view(row: JobRecord) -> dict[str, Any]:
    """A job as the API shows it: its record, environment values withheld."""
    out = {f: getattr(row, f) for f in row.__dataclass_fields__ if f not in ("argv", "env")}
    out["command"] = list(row.argv)
    out["env"] = sorted(name for name, _ in row.env)  # names only: values may be secrets
    out["units"] = list(row.units)
    out["events"] = [{"at": e.at, "event": e.event, "detail": e.detail} for e in row.events]
    return out


def _tail(path: Path) -> bytes:
    try:
        with path.open("rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - _MAX_LOG))
            return f.read()
    except FileNotFoundError:
        return b""
