"""The admin API under ``/admin/v1``: keys and the ledger. Takes the admin key."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from governd.durations import parse_duration, parse_since
from governd.errors import InvalidRequest, NotFound
from governd.intent import admin_openapi
from governd.intent.auth import check_admin
from governd.intent.http import json_response, read_json

if TYPE_CHECKING:
    from governd.clock import Clock
    from governd.config import GovernConfig
    from governd.execution.router import Router
    from governd.governance.approvals import Approvals
    from governd.governance.keys import KeyRing
    from governd.governance.principals import PrincipalTree
    from governd.ledger.storage import Storage
    from governd.ledger.writer import LedgerWriter

_MAX_PAGE = 1000
_INT64 = 2**63 - 1


class AdminRoutes:
    """Handlers of ``/admin/v1``."""

    def __init__(
        self,
        *,
        clock: Clock,
        config: GovernConfig,
        keyring: KeyRing,
        approvals: Approvals,
        router: Router,
        storage: Storage,
        tree: PrincipalTree,
        writer: LedgerWriter,
    ) -> None:
        self._clock = clock
        self._config = config
        self._keyring = keyring
        self._approvals = approvals
        self._router = router
        self._storage = storage
        self._tree = tree
        self._writer = writer

    def routes(self) -> list[Route]:
        """The Starlette routes."""
        return [
            Route("/admin/v1/openapi.json", self.openapi, methods=["GET"]),
            Route("/admin/v1/keys", self.create_key, methods=["POST"]),
            Route("/admin/v1/keys", self.list_keys, methods=["GET"]),
            Route("/admin/v1/keys/{key_id}", self.revoke_key, methods=["DELETE"]),
            Route("/admin/v1/ledger", self.ledger, methods=["GET"]),
            Route("/admin/v1/ledger/summary", self.summary, methods=["GET"]),
            Route("/admin/v1/ledger/{entry_id}", self.entry, methods=["GET"]),
            Route("/admin/v1/capacity", self.capacity, methods=["GET"]),
            Route("/admin/v1/usage", self.usage, methods=["GET"]),
            Route("/admin/v1/approvals", self.list_approvals, methods=["GET"]),
            Route("/admin/v1/approvals/{approval_id}/approve", self.approve, methods=["POST"]),
            Route("/admin/v1/approvals/{approval_id}/deny", self.deny, methods=["POST"]),
        ]

    def check(self, request: Request) -> None:
        """Require the admin key."""
        key = self._config.admin_key
        check_admin(request, key.get_secret_value() if key else None)

    async def openapi(self, request: Request) -> Response:
        """The OpenAPI document of the admin API."""
        self.check(request)
        return json_response(admin_openapi.document())

    async def create_key(self, request: Request) -> Response:
        """Create a key; the reply is the only place the key is ever shown."""
        self.check(request)
        body = await read_json(request, 64 * 1024)
        principal = _string(body, "principal", required=True)
        name = _string(body, "name")
        expires = _string(body, "expires")
        try:
            expires_in = parse_duration(expires) if expires else None
        except ValueError as exc:
            raise InvalidRequest(str(exc), param="expires") from None
        assert principal is not None
        key, secret = await asyncio.to_thread(self._keyring.create, principal, name, expires_in)
        return json_response({**key.as_dict(), "key": secret}, 201)

    async def list_keys(self, request: Request) -> Response:
        """Key records (never keys), optionally for one principal's subtree."""
        self.check(request)
        principal = request.query_params.get("principal")
        path = self._tree.resolve(principal).path if principal else None
        keys = await asyncio.to_thread(self._keyring.list, path)
        return json_response({"keys": [k.as_dict() for k in keys]})

    async def revoke_key(self, request: Request) -> Response:
        """Revoke a key at once."""
        self.check(request)
        key = await asyncio.to_thread(self._keyring.revoke, request.path_params["key_id"])
        return json_response(key.as_dict())

    async def ledger(self, request: Request) -> Response:
        """Entries, oldest first, filtered; ``next`` is the ``after`` of the next page."""
        self.check(request)
        q = request.query_params
        filters = self._filters(request)
        limit = int_param(q.get("limit"), "limit", 100, 1, _MAX_PAGE)
        after = int_param(q.get("after"), "after", None, 0, None)
        order = q.get("order") or "asc"
        if order not in ("asc", "desc"):
            raise InvalidRequest("order must be asc or desc", param="order")
        newest = order == "desc"
        await self._settled()
        rows = await asyncio.to_thread(
            self._storage.query,
            **filters,
            run=q.get("run"),
            model=q.get("model"),
            decision=q.get("decision"),
            after=after,
            limit=limit,
            newest_first=newest,
        )
        nxt = rows[-1]["seq"] if len(rows) == limit else None
        return json_response({"entries": rows, "next": nxt})

    async def summary(self, request: Request) -> Response:
        """Per principal: requests, tokens, cached tokens, cost and errors."""
        self.check(request)
        filters = self._filters(request)
        await self._settled()
        rows = await asyncio.to_thread(self._storage.summary, **filters)
        return json_response({"principals": rows})

    async def entry(self, request: Request) -> Response:
        """One entry by its request id (``x-governd-request-id``)."""
        self.check(request)
        await self._settled()
        entry_id = request.path_params["entry_id"]
        rows = await asyncio.to_thread(self._storage.query, entry_id=entry_id, limit=1)
        if not rows:
            raise NotFound(f"no ledger entry {entry_id!r}", param="id")
        return json_response(rows[0])

    async def usage(self, request: Request) -> Response:
        """Per principal and hour: requests, errors, tokens and cost (from rollups; ``since`` in whole hours)."""
        self.check(request)
        filters = self._filters(request)
        await self._settled()
        rows = await asyncio.to_thread(self._storage.summary, **filters, by_hour=True)
        return json_response({"usage": rows})

    async def list_approvals(self, request: Request) -> Response:
        """Approvals (``status``: pending, approved, denied, expired), oldest first."""
        self.check(request)
        status = request.query_params.get("status")
        if status not in (None, "pending", "approved", "denied", "expired"):
            raise InvalidRequest(
                "status must be pending, approved, denied or expired", param="status"
            )
        principal = self._filters(request)["principal"]
        rows = await asyncio.to_thread(self._storage.approvals, status, principal)
        return json_response({"approvals": rows})

    async def approve(self, request: Request) -> Response:
        """Approve a held call: it runs."""
        return await self._decide(request, True)

    async def deny(self, request: Request) -> Response:
        """Deny a held call: it is refused."""
        return await self._decide(request, False)

    async def _decide(self, request: Request, approve: bool) -> Response:
        self.check(request)
        body = (
            await read_json(request, 16 * 1024)
            if request.headers.get("content-length") not in (None, "0")
            else {}
        )
        by = _string(body, "by") or "admin"
        row = await self._approvals.decide(request.path_params["approval_id"], approve, by)
        return json_response(row)

    async def capacity(self, request: Request) -> Response:
        """Per model with a capacity: slots, slots in use, requests waiting."""
        self.check(request)
        gates = self._router.gates
        return json_response(
            {
                "models": {
                    a: {"capacity": g.capacity, "in_use": g.in_use, "waiting": g.waiting}
                    for a, g in gates.items()
                }
            }
        )

    async def _settled(self) -> None:
        # Read-your-writes: whatever was recorded before this query is visible to it.
        await asyncio.to_thread(self._writer.flush)

    def _filters(self, request: Request) -> dict[str, Any]:
        q = request.query_params
        principal = q.get("principal")
        since = q.get("since")
        try:
            since_ts = parse_since(since, self._clock.now()) if since else None
        except ValueError as exc:
            raise InvalidRequest(str(exc), param="since") from None
        return {
            "principal": self._tree.resolve(principal).path if principal else None,
            "since": since_ts,
        }


def _string(body: dict[str, Any], name: str, required: bool = False) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise InvalidRequest(f"{name} must be a non-empty string", param=name)
    return value


def int_param(raw: str | None, name: str, default: int | None, lo: int, hi: int | None) -> Any:
    """A query parameter as an int in ``[lo, hi]``, or ``default`` when absent; 400 otherwise.

    Without ``hi``, at most what a database's 64-bit integer holds.
    """
    if raw is None:
        return default
    hi = _INT64 if hi is None else hi
    if not raw.isascii() or not raw.isdigit() or not lo <= int(raw) <= hi:
        raise InvalidRequest(f"{name} must be an integer from {lo} to {hi}", param=name)
    return int(raw)
