"""Admission: everything governance decides and holds before a model call runs.

``Admission.admit(action)`` checks the model exists and fits the operation,
builds the policy context, runs ``decide``, enforces the verdict, caps the
output, takes the call's share of its path's rate limits, holds its cost
bound on every budget of the path and takes a step of its run. ``release``
gives back what was held once the call's real cost is known. Tool calls are
admitted by ``admit_tool`` (the verdict, tightened by the run's risk level)
and ``hold_run``. A refusal raises a ``GovernError`` carrying
the ``Decision`` that refused it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from governd.actions import PRIORITIES, Action, Decision, Principal
from governd.clock import Clock
from governd.config import GovernConfig
from governd.config.cel_env import NO_JOB, NO_RUN
from governd.errors import (
    ApprovalRequired,
    BudgetExceeded,
    GovernError,
    InvalidRequest,
    ModelNotFound,
    PolicyDenied,
    RateLimited,
    RunLimitExceeded,
)
from governd.governance import tools
from governd.governance.bounds import CostBounds, input_bound
from governd.governance.budgets import Budgets, Cost, Hold
from governd.governance.decide import decide
from governd.governance.policies import PolicySet
from governd.governance.principals import PrincipalTree
from governd.governance.ratelimits import Permit, RateLimits
from governd.governance.runs import LocalRuns, RunHold, Runs
from governd.governance.state.setup import limit_state

_MAX_PRINCIPALS = 100_000
_NO_TOOL = {"name": "", "server": "", "tier": ""}
RANK: dict[str, int] = {name: i for i, name in enumerate(PRIORITIES)}


@dataclass(slots=True)
class Admitted:
    """An admitted call: its verdict, the alias to serve, and what it holds."""

    decision: Decision
    served: str
    priority: str = "standard"
    hold: Hold | None = None
    permit: Permit | None = None
    run: RunHold | None = None


class Admission:
    """Decides, limits and reserves; pure decisions, state in budgets and limits."""

    def __init__(
        self,
        cfg: GovernConfig,
        tree: PrincipalTree,
        budgets: Budgets,
        clock: Clock,
        runs: Runs | None = None,
    ) -> None:
        self._cfg = cfg
        self._tree = tree
        self.budgets = budgets
        self.limits = RateLimits(cfg, limit_state(cfg, clock))
        self.policies = PolicySet(cfg.policies)
        self._bounds = CostBounds(cfg)
        self._clock = clock
        self._tz = ZoneInfo(cfg.governance.timezone)
        self.runs = runs or Runs(cfg, tree, LocalRuns(clock, cfg.runs.idle_ttl_s), clock)
        self._stops = any(level.stop for level in cfg.runs.risk.levels)
        self._reads_prompt = any("prompt_tokens" in p.when for p in cfg.policies)
        self._reads_run = any("run." in p.when for p in cfg.policies)
        # Parts of the context that change rarely, built once and shared (CEL never mutates them).
        self._who: dict[Principal, dict[str, str]] = {}
        self._time: tuple[int, dict[str, int]] = (-1, {})

    async def admit(self, action: Action) -> Admitted:
        """Admit ``action`` or raise the refusal (with ``.decision`` set)."""
        alias = self._cfg.models.get(action.model)
        if alias is None:
            raise ModelNotFound(f"model {action.model!r} does not exist", param="model")
        if (alias.kind == "embedding") != (action.operation == "embedding"):
            raise InvalidRequest(
                f"model {action.model!r} is a {alias.kind} model and cannot serve {action.operation}",
                param="model",
            )
        matches = (
            self.policies.evaluate(await self._context(action)) if self.policies.policies else []
        )
        decision = decide(
            action,
            action.model in self._tree.models_for(action.principal),
            matches,
            self._cfg.governance.default_effect,
            alias.degrade_to,
        )
        if self._stops and action.run_id:
            decision = await self._tighten(action, None, decision)
        _enforce(decision, action)
        decision, priority = await self._ladder(action, decision, alias.degrade_to)
        admitted = Admitted(decision, decision.model or action.model, priority)
        await self._reserve(action, admitted)
        return admitted

    async def _ladder(
        self, action: Action, decision: Decision, degrade_to: str | None
    ) -> tuple[Decision, str]:
        """The priority class, lowered by the request or a budget's ladder; degrade past soft lines."""
        base = self._tree.priority_for(action.principal)
        path_budgets = self.budgets.on_path(action.principal)
        if action.priority is None and not path_budgets:
            return decision, base
        rank = RANK[base]
        reasons = list(decision.reasons)
        if action.priority is not None:
            if RANK[action.priority] < rank:
                reasons.append(f"priority:{action.priority} asked, {base} allowed")
            rank = max(rank, RANK[action.priority])
        served = decision.model or action.model
        effect = decision.effect
        for key in path_budgets:
            limit = self.budgets.limit(key)
            ladder = self._tree.node_config(key.node).ladder
            if limit is None or (limit.soft is None and ladder.lower_priority_at is None):
                continue
            spent, reserved = await self.budgets.state.usage(key, self.budgets.window(key)[0])
            used = (spent + reserved) / limit.limit if limit.limit else 1.0
            if (
                ladder.lower_priority_at is not None
                and used >= ladder.lower_priority_at
                and rank < 3
            ):
                rank += 1
                reasons.append(f"ladder:{key.name} at {used:.0%}: priority lowered")
            if (
                ladder.degrade
                and limit.soft is not None
                and used >= limit.soft
                and effect == "allow"
                and degrade_to
                and degrade_to != served
            ):
                effect, served = "degrade", degrade_to
                reasons.append(
                    f"ladder:{key.name} at {used:.0%} past soft {limit.soft:.0%}: degraded"
                )
        priority = PRIORITIES[rank]
        if priority != "standard":
            reasons.append(f"priority:{priority}")
        if effect == decision.effect and tuple(reasons) == decision.reasons:
            return decision, priority
        return Decision(
            effect, tuple(reasons), served, decision.max_tokens, decision.policy
        ), priority

    async def admit_tool(self, action: Action, server: str, tier: str) -> Decision:
        """Admit a tool call (``action.model``: the namespaced tool, ``action.body``: its arguments)."""
        context = await self._context(action)
        context["tool"] = {"name": action.model, "server": server, "tier": tier}
        context["args"] = action.body
        matches = self.policies.evaluate(context) if self.policies.policies else []
        permitted = tools.allowed(self._tree.tool_lists(action.principal), action.model)
        decision = decide(action, permitted, matches, self._cfg.governance.default_effect)
        if decision.effect == "degrade":  # there is no cheaper tool to serve instead
            decision = Decision("allow", decision.reasons)
        if self.runs.levels and action.run_id:
            decision = await self._tighten(action, tier, decision)
        _enforce(decision, action)
        return decision

    async def admit_job(self, action: Action, job: dict[str, Any]) -> Decision:
        """Admit a job submission (``action.model``: its queue); policies see ``job``.

        ``require_approval`` is returned, not raised: a job can wait for a human in its queue.
        """
        context = await self._context(action)
        context["job"] = job
        matches = self.policies.evaluate(context) if self.policies.policies else []
        decision = decide(action, True, matches, self._cfg.governance.default_effect)
        if decision.effect == "degrade":  # a job has no cheaper model to fall back to
            decision = Decision("allow", decision.reasons)
        if decision.effect == "deny":
            _enforce(decision, action)
        return decision

    async def hold_run(self, action: Action) -> RunHold | None:
        """Take a step (and a tool call) of the action's run, or raise its ``RunLimitExceeded``."""
        try:
            return await self.runs.hold(action, 0.0)
        except RunLimitExceeded as exc:
            raise _refused(exc, Decision("deny", (f"run_limit:{exc.limit}",))) from None

    async def _tighten(self, action: Action, tier: str | None, decision: Decision) -> Decision:
        """The verdict once the run's risk level has its say (tool tiers; ``stop``: everything)."""
        level = await self.runs.level(action)
        if level is None:
            return decision
        effect = (
            "deny" if level.stop else next((e for t, e in level.tiers.items() if t == tier), None)
        )
        policy = f"run_risk:{level.name}"
        if effect == "deny" and decision.effect != "deny":
            what = "the run is stopped" if level.stop else f"{tier} tools are disabled"
            return Decision("deny", (*decision.reasons, f"{policy}: {what}"), policy=policy)
        if effect == "require_approval" and decision.effect == "allow":
            reason = f"{policy}: {tier} tools need approval"
            return Decision("require_approval", (*decision.reasons, reason), policy=policy)
        return decision

    async def release(self, admitted: Admitted, cost_usd: float, tokens: int) -> None:
        """Give back the unused part of what the call held."""
        if admitted.permit is not None:
            await self.limits.release(admitted.permit, tokens)
        if admitted.hold is not None:
            await self.budgets.settle(admitted.hold, Cost(cost_usd, tokens))
        if admitted.run is not None:
            await self.runs.settle(admitted.run, cost_usd)

    async def _reserve(self, action: Action, admitted: Admitted) -> None:
        principal, served = action.principal, admitted.served
        caps = [
            c for c in (self._tree.max_tokens_for(principal), admitted.decision.max_tokens) if c
        ]
        cap = min(caps) if caps else None
        budgeted = bool(self.budgets.on_path(principal))
        run_usd = bool(action.run_id) and self.runs.limits_for(principal).usd is not None
        bound_usd = 0.0
        if cap is not None or budgeted or run_usd or self.limits.active(principal):
            if cap is not None or budgeted or run_usd:
                limit = self._bounds.output_tokens(action, cap)
                if limit is not None:
                    action.body = with_output_limit(action.body, limit)
            bound = self._bounds.bound(action, served)
            bound_usd = bound.usd
            await self._hold(action, admitted, bound)
        if action.run_id:
            try:
                admitted.run = await self.runs.hold(action, bound_usd)
            except RunLimitExceeded as exc:  # the call never runs: give everything back
                if admitted.permit is not None:
                    await self.limits.release(admitted.permit, None)
                if admitted.hold is not None:
                    await self.budgets.settle(admitted.hold, Cost(0.0, 0))
                raise _refused(exc, Decision("deny", (f"run_limit:{exc.limit}",), served)) from None

    async def _hold(self, action: Action, admitted: Admitted, bound: Cost) -> None:
        """The call's share of its path's rate limits, and its bound on every budget of the path."""
        principal, served = action.principal, admitted.served
        try:
            admitted.permit = await self.limits.acquire(principal, bound.tokens)
        except RateLimited as exc:
            raise _refused(exc, Decision("deny", (f"rate_limit: {exc.message}",), served)) from None
        try:
            admitted.hold = await self.budgets.reserve(principal, bound)
        except BudgetExceeded as exc:
            await self.limits.release(admitted.permit, None)
            admitted.permit = None
            raise _refused(exc, Decision("deny", (f"budget:{exc.budget}",), served)) from None

    async def _context(self, action: Action) -> dict[str, Any]:
        body = action.body
        used, over_soft = (
            await self._budget_use(action) if self.policies.reads_budget else (0.0, False)
        )
        limit = body.get("max_completion_tokens") or body.get("max_tokens") or 0
        return {
            "principal": self._principal(action.principal),
            "request": {
                "model": action.model,
                "operation": action.operation,
                "stream": action.stream,
                "max_tokens": limit if isinstance(limit, int) else 0,
                "n": body.get("n") or 1,
                "prompt_tokens": input_bound(action, exact=True) if self._reads_prompt else 0,
                "messages": len(body.get("messages") or ()),
                "tools": len(body.get("tools") or ()),
                "user": body.get("user") or "",
            },
            "budget": {"used": used, "over_soft": over_soft},
            "run": await self._run(action) if self._reads_run else NO_RUN,
            "time": self._now(),
            "tool": _NO_TOOL,
            "args": {},
            "job": NO_JOB,
        }

    async def _run(self, action: Action) -> dict[str, Any]:
        """What policies see of the action's run (``steps`` counts this action)."""
        if not action.run_id:
            return NO_RUN
        totals = await self.runs.totals(action.principal, action.run_id)
        if totals is None:
            return {**NO_RUN, "id": action.run_id, "steps": 1}
        level = self.runs.level_at(totals.risk)
        return {
            "id": action.run_id,
            "steps": totals.steps + 1,
            "tool_calls": totals.tool_calls,
            "usd": totals.spent_usd,
            "risk": totals.risk,
            "level": level.name if level else "",
        }

    def _principal(self, who: Principal) -> dict[str, str]:
        found = self._who.get(who)
        if found is None:
            if len(self._who) > _MAX_PRINCIPALS:
                self._who.clear()
            found = self._who[who] = {
                "org": who.org,
                "team": who.team or "",
                "project": who.project or "",
                "path": who.path,
                "key": who.key_id or "",
            }
        return found

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

    async def _budget_use(self, action: Action) -> tuple[float, bool]:
        """The highest fraction used among the path's budgets, and whether any is past its soft line."""
        used, over = 0.0, False
        for key in self.budgets.on_path(action.principal):
            limit = self.budgets.limit(key)
            assert limit is not None
            spent, reserved = await self.budgets.state.usage(key, self.budgets.window(key)[0])
            fraction = (spent + reserved) / limit.limit if limit.limit else 1.0
            used = max(used, fraction)
            over = over or (limit.soft is not None and fraction >= limit.soft)
        return used, over


def _enforce(decision: Decision, action: Action) -> None:
    if decision.effect == "deny":
        if decision.policy in ("model_access", "tool_access"):
            what = "tool" if action.kind == "tool_call" else "model"
            message = (
                f"denied by policy {decision.policy}: {what} {action.model!r} is not allowed for "
                f"{action.principal.path}"
            )
        else:
            message = f"denied by policy {decision.policy}: " + "; ".join(decision.reasons)
        raise _refused(PolicyDenied(message, policy=decision.policy or "", param="model"), decision)
    if decision.effect == "require_approval":
        raise _refused(
            ApprovalRequired(
                f"policy {decision.policy} requires approval" + _CANNOT_WAIT.get(action.kind, ""),
                policy=decision.policy or "",
            ),
            decision,
        )


_CANNOT_WAIT = {"model_call": ", which model calls cannot wait for"}


def _refused(exc: GovernError, decision: Decision) -> GovernError:
    exc.decision = decision
    return exc


def with_output_limit(body: dict[str, Any], limit: int) -> dict[str, Any]:
    """``body`` asking for at most ``limit`` output tokens, in the field the client used."""
    out = dict(body)
    if "max_completion_tokens" in out:
        out["max_completion_tokens"] = limit
    if "max_tokens" in out or "max_completion_tokens" not in out:
        out["max_tokens"] = limit
    return out
