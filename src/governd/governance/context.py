"""What policies see of an action: its CEL context, and the values it is indexed by.

``index`` gives the few fields a policy may be indexed by (``policies.INDEXED``),
read straight from the action and its principal's terms. ``build`` makes the
whole context for the policies a request selected, computing only what they
read (the exact prompt size, the run's counters, the budgets' use). Parts
that change rarely are built once and shared: CEL never mutates its input.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from governd.actions import Action
from governd.clock import Clock
from governd.config import GovernConfig
from governd.config.cel_env import NO_JOB, NO_RUN
from governd.governance.bounds import input_bound
from governd.governance.budgets import Budgets, Fill
from governd.governance.policies import Selection
from governd.governance.runs import Runs
from governd.governance.terms import Terms

_NO_TOOL = {"name": "", "server": "", "tier": ""}
_NO_ARGS: dict[str, Any] = {}
_NO_BUDGET = {"used": 0.0, "over_soft": False}


class PolicyContext:
    """Builds policy contexts for one config."""

    def __init__(self, cfg: GovernConfig, budgets: Budgets, runs: Runs, clock: Clock) -> None:
        self._budgets = budgets
        self._runs = runs
        self._clock = clock
        self._tz = ZoneInfo(cfg.governance.timezone)
        self._time: tuple[int, dict[str, int]] = (-1, {})

    @staticmethod
    def index(action: Action, terms: Terms, tool: dict[str, str] | None = None) -> dict[str, str]:
        """The indexed fields of an action (what ``PolicySet.select`` keys on)."""
        who, on = terms.view, tool or _NO_TOOL
        return {
            "request.model": action.model,
            "request.operation": action.operation,
            "principal.org": who["org"],
            "principal.team": who["team"],
            "principal.project": who["project"],
            "principal.path": who["path"],
            "principal.key": who["key"],
            "tool.name": on["name"],
            "tool.server": on["server"],
            "tool.tier": on["tier"],
        }

    async def build(
        self, action: Action, terms: Terms, selection: Selection, fill: Fill | None
    ) -> dict[str, Any]:
        """The context the selected policies evaluate over (``tool``, ``args``, ``job``: none)."""
        body = action.body
        limit = body.get("max_completion_tokens") or body.get("max_tokens") or 0
        return {
            "principal": terms.view,
            "request": {
                "model": action.model,
                "operation": action.operation,
                "stream": action.stream,
                "max_tokens": limit if isinstance(limit, int) else 0,
                "n": body.get("n") or 1,
                "prompt_tokens": input_bound(action, exact=True) if selection.reads_prompt else 0,
                "messages": len(body.get("messages") or ()),
                "tools": len(body.get("tools") or ()),
                "user": body.get("user") or "",
            },
            "budget": _NO_BUDGET
            if fill is None
            else {"used": fill.used, "over_soft": fill.over_soft},
            "run": await self._run(action) if selection.reads_run else NO_RUN,
            "time": self._now(),
            "tool": _NO_TOOL,
            "args": _NO_ARGS,
            "job": NO_JOB,
        }

    async def _run(self, action: Action) -> dict[str, Any]:
        """What policies see of the action's run (``steps`` counts this action)."""
        if not action.run_id:
            return NO_RUN
        totals = await self._runs.totals(action.principal, action.run_id)
        if totals is None:
            return {**NO_RUN, "id": action.run_id, "steps": 1}
        level = self._runs.level_at(totals.risk)
        return {
            "id": action.run_id,
            "steps": totals.steps + 1,
            "tool_calls": totals.tool_calls,
            "usd": totals.spent_usd,
            "risk": totals.risk,
            "level": level.name if level else "",
        }

    def _now(self) -> dict[str, int]:
        second = int(self._clock.now())
        if second != self._time[0]:
            local = datetime.fromtimestamp(second, self._tz)
            fields = {
                "hour": local.hour,
                "minute": local.minute,
                "weekday": local.weekday(),
                "unix": second,
            }
            self._time = (second, fields)
        return self._time[1]
