"""``/admin/v1/budgets``: operators read and change budgets at runtime (admin key)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from governd.actions import within
from governd.config import BudgetUnit
from governd.errors import InvalidRequest, NotFound
from governd.governance.budgets import BudgetKey, Limit, amount
from governd.intent.http import json_response, read_json

if TYPE_CHECKING:
    from governd.governance.budgets import Budgets
    from governd.governance.keys import KeyRing
    from governd.governance.principals import PrincipalTree
    from governd.pipeline.recorder import Recorder


class BudgetChange(BaseModel):
    """The body of ``PUT /admin/v1/budgets``."""

    model_config = ConfigDict(extra="forbid", strict=True)

    principal: str = Field(min_length=1, description="TEAM[/PROJECT], the org, or a key id")
    unit: BudgetUnit
    period: Literal["hour", "day", "week", "month"]
    limit: float = Field(ge=0, allow_inf_nan=False)
    soft: float | None = Field(None, gt=0, lt=1)


class BudgetRoutes:
    """Handlers of ``/admin/v1/budgets``."""

    def __init__(
        self,
        *,
        budgets: Budgets,
        keyring: KeyRing,
        recorder: Recorder,
        tree: PrincipalTree,
        admin: Any,
    ) -> None:
        self._budgets = budgets
        self._keyring = keyring
        self._recorder = recorder
        self._tree = tree
        self._admin = admin

    def routes(self) -> list[Route]:
        """The Starlette routes."""
        return [
            Route("/admin/v1/budgets", self.show, methods=["GET"]),
            Route("/admin/v1/budgets", self.change, methods=["PUT", "POST"]),
        ]

    async def show(self, request: Request) -> Response:
        """Budgets on a node and below it, with spent and reserved in the current window."""
        self._admin(request)
        await self._budgets.sync()
        principal = request.query_params.get("principal")
        node = await self._node(principal) if principal else self._tree.org
        keys = [k for k in self._budgets.all() if within(k.node, node)]
        return json_response({"budgets": [await self._status(k) for k in sorted(keys, key=_order)]})

    async def change(self, request: Request) -> Response:
        """Create or change one budget; the change is a ledger entry."""
        self._admin(request)
        try:
            body = BudgetChange.model_validate(await read_json(request, 16 * 1024))
        except ValidationError as exc:
            first = exc.errors()[0]
            param = ".".join(str(p) for p in first["loc"])
            raise InvalidRequest(f"{param}: {first['msg']}", param=param) from None
        key = BudgetKey(await self._node(body.principal), body.unit, body.period)
        limit = Limit(body.limit, body.soft)
        before = await self._budgets.change(key, limit)
        was = "new" if before is None else amount(key.unit, before.limit)
        await self._recorder.record_control(
            key.node,
            "budget_set",
            f"budget {key.name}: limit {was} -> {amount(key.unit, limit.limit)}, soft {limit.soft}",
        )
        return json_response(await self._status(key))

    async def _node(self, principal: str) -> str:
        if principal.startswith("key_"):
            keys = await asyncio.to_thread(self._keyring.list)
            found = next((k for k in keys if k.id == principal), None)
            if found is None:
                raise NotFound(f"no key {principal!r}", param="principal")
            return f"{found.principal}/{found.id}"
        return self._tree.resolve(principal).path

    async def _status(self, key: BudgetKey) -> dict[str, Any]:
        limit = self._budgets.limit(key)
        assert limit is not None
        start, end = self._budgets.window(key)
        spent, reserved = await self._budgets.state.usage(key, start)
        return {
            "principal": key.node,
            "unit": key.unit,
            "period": key.period,
            "limit": limit.limit,
            "spent": spent,
            # Of the spend, what upstreams billed past the bounds calls were given.
            "overage": await self._budgets.overage(key),
            "reserved": reserved,
            "soft": limit.soft,
            "window_start": start,
            "window_end": end,
        }


def _order(key: BudgetKey) -> tuple[str, str, int]:
    return key.node, key.unit, ["hour", "day", "week", "month"].index(key.period)
