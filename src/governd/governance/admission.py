"""Admission: everything governance decides and holds before a model call runs.

``Admission.admit(action)`` checks the model exists and fits the operation,
evaluates the policies that can match it (``PolicySet.select``), runs
``decide``, enforces the verdict, lets the budget ladder have its say
(``ladder``), bounds the call's output, then takes the call's share of its
path's rate limits, holds its cost bound on every budget of the path and takes
a step of its run. ``release`` gives back what was held once the call's real
cost is known. Tool calls are admitted by ``admit_tool`` (the verdict,
tightened by the run's risk level) and ``hold_run``; job submissions by
``admit_job``. A refusal raises a ``GovernError`` carrying the ``Decision``
that refused it.

What a principal may do is read from its ``Terms`` (resolved once per key);
each budget's use is read once per call and shared by the ladder and the
policies.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

from governd.actions import Action, Decision, Priority, Usage
from governd.clock import Clock
from governd.config import GovernConfig
from governd.errors import (
    ApprovalRequired,
    BudgetExceeded,
    GovernError,
    InvalidRequest,
    ModelNotFound,
    PolicyDenied,
    RateLimited,
    RunLimitExceeded,
    StateUnavailable,
)
from governd.governance import tools
from governd.governance.bets import Bet, Bets, Metered, Sized
from governd.governance.bounds import CostBounds
from governd.governance.budgets import BudgetPath, Budgets, Cost, Fill, Hold
from governd.governance.context import PolicyContext
from governd.governance.decide import decide
from governd.governance.ladder import ladder
from governd.governance.overrides import Overrides
from governd.governance.policies import Match, PolicySet, Selection
from governd.governance.principals import PrincipalTree
from governd.governance.ratelimits import Permit, RateLimits
from governd.governance.runs import LocalRuns, RunHold, Runs
from governd.governance.state.setup import limit_state
from governd.governance.terms import Terms, TermsBook

log = logging.getLogger("governd.admission")


@dataclass(slots=True)
class Admitted:
    """An admitted call: its verdict, the alias to serve, its output limit, and what it holds.

    ``max_tokens`` is the per-choice output limit governd imposes on the
    upstream request (None: the client's own stands).
    """

    decision: Decision
    served: str
    priority: Priority = "standard"
    max_tokens: int | None = None
    hold: Hold | None = None
    permit: Permit | None = None
    run: RunHold | None = None
    #: A stream whose hold was sized from recorded outputs: it is metered and topped up.
    metered: Metered | None = None
    #: Where its output size is counted once settled.
    sized: Sized | None = None


class Admission:
    """Decides, limits and reserves; pure decisions, state in budgets and limits."""

    def __init__(
        self,
        cfg: GovernConfig,
        tree: PrincipalTree,
        budgets: Budgets,
        clock: Clock,
        runs: Runs | None = None,
        overrides: Overrides | None = None,
    ) -> None:
        self._cfg = cfg
        self._tree = tree
        self.budgets = budgets
        self.limits = RateLimits(cfg, limit_state(cfg, clock))
        self.policies = PolicySet(cfg.policies)
        self.terms = TermsBook(tree, self.limits)
        self._bounds = CostBounds(cfg)
        self.runs = runs or Runs(cfg, tree, LocalRuns(clock, cfg.runs.idle_ttl_s), clock)
        self._context = PolicyContext(cfg, budgets, self.runs, clock)
        self._stops = any(level.stop for level in cfg.runs.risk.levels)
        #: Holds sized from recorded outcomes, for calls on budgets that afford few worst cases.
        self.bets = Bets(cfg.governance.sizing, self._bounds, budgets)
        #: What controllers changed at runtime (SLO policies); read on every admission.
        self.overrides = overrides or Overrides()

    async def admit(self, action: Action) -> Admitted:
        """Admit ``action`` or raise the refusal (carrying its decision)."""
        alias = self._cfg.models.get(action.model)
        if alias is None:
            raise ModelNotFound(f"model {action.model!r} does not exist", param="model")
        if (alias.kind == "embedding") != (action.operation == "embedding"):
            raise InvalidRequest(
                f"model {action.model!r} is a {alias.kind} model and cannot serve {action.operation}",
                param="model",
            )
        terms = self.terms.of(action.principal)
        path = self.budgets.path(action.principal)
        selection = terms.selections.get((action.model, action.operation))
        if selection is None:
            selection = self.policies.select(self._context.index(action, terms))
            terms.selections[action.model, action.operation] = selection
        fill = await self._fill(path, terms, selection)
        matches = await self._matches(selection, action, terms, fill)
        decision = decide(
            action,
            action.model in terms.models,
            matches,
            self._cfg.governance.default_effect,
            alias.degrade_to,
        )
        if self._stops and action.run_id:
            decision = await self._tighten(action, None, decision)
        _enforce(decision, action)
        priority = terms.priority
        if action.priority is not None or priority != "standard" or (fill and fill.at_step):
            decision, priority = ladder(
                decision,
                action.model,
                priority,
                action.priority,
                fill.uses() if fill is not None else [],
                terms.ladders,
                alias.degrade_to,
            )
        if self.overrides.active:
            served = decision.model or action.model
            decision, priority = self.overrides.admit(
                action.principal.path, served, decision, priority, alias.degrade_to
            )
        return await self._reserve(action, terms, path, decision, priority)

    async def _fill(self, path: BudgetPath, terms: Terms, selection: Selection) -> Fill | None:
        """How full the path's budgets are, if the ladder or the policies read it."""
        if selection.reads_budget or path.stepped:
            return await self.budgets.fill(path)
        return None

    async def _read(self, action: Action, selection: Selection) -> Fill | None:
        """The path's budgets' use, for actions no ladder applies to: only if policies read it."""
        if not selection.reads_budget:
            return None
        return await self.budgets.fill(self.budgets.path(action.principal))

    async def _matches(
        self, selection: Selection, action: Action, terms: Terms, fill: Fill | None
    ) -> list[Match]:
        if not selection:
            return []
        return selection.evaluate(await self._context.build(action, terms, selection, fill))

    async def admit_tool(self, action: Action, server: str, tier: str) -> Decision:
        """Admit a tool call (``action.model``: the namespaced tool, ``action.body``: its arguments)."""
        terms = self.terms.of(action.principal)
        tool = {"name": action.model, "server": server, "tier": tier}
        selection = self.policies.select(self._context.index(action, terms, tool))
        matches: list[Match] = []
        if selection:
            context = await self._context.build(
                action, terms, selection, await self._read(action, selection)
            )
            matches = selection.evaluate({**context, "tool": tool, "args": action.body})
        permitted = tools.allowed(list(terms.tool_lists), action.model)
        decision = decide(action, permitted, matches, self._cfg.governance.default_effect)
        if decision.effect == "degrade":  # there is no cheaper tool to serve instead
            decision = Decision("allow", decision.reasons)
        if self.runs.levels and action.run_id:
            decision = await self._tighten(action, tier, decision)
        tightened = self.overrides.tiers.get(tier) if self.overrides.active else None
        if tightened is not None:
            effect, source = tightened
            decision = _stricter(decision, effect, source, f"{tier} tools")
        _enforce(decision, action)
        return decision

    async def admit_job(self, action: Action, job: dict[str, Any]) -> Decision:
        """Admit a job submission (``action.model``: its queue); policies see ``job``.

        ``require_approval`` is returned, not raised: a job can wait for a human in its queue.
        """
        terms = self.terms.of(action.principal)
        selection = self.policies.select(self._context.index(action, terms))
        matches: list[Match] = []
        if selection:
            context = await self._context.build(
                action, terms, selection, await self._read(action, selection)
            )
            matches = selection.evaluate({**context, "job": job})
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
            raise exc.refusing(Decision("deny", (f"run_limit:{exc.limit}",))) from None

    async def _tighten(self, action: Action, tier: str | None, decision: Decision) -> Decision:
        """The verdict once the run's risk level has its say (tool tiers; ``stop``: everything)."""
        level = await self.runs.level(action)
        if level is None:
            return decision
        effect = (
            "deny" if level.stop else next((e for t, e in level.tiers.items() if t == tier), None)
        )
        what = "the run" if level.stop else f"{tier} tools"
        return _stricter(decision, effect, f"run_risk:{level.name}", what)

    async def top_up(self, admitted: Admitted, output_tokens: int) -> bool:
        """Raise a metered call's hold to cover ``output_tokens``; False when a budget is full."""
        if admitted.metered is None or admitted.hold is None:
            return True
        return await self.bets.top_up(admitted.metered, admitted.hold, output_tokens)

    async def release(self, admitted: Admitted, cost_usd: float, usage: Usage) -> None:
        """Give back the unused part of what the call held; count its output size."""
        tokens = usage.input_tokens + usage.output_tokens
        self.bets.observe(admitted.sized, usage)
        if admitted.hold is not None:  # first: it never fails (a charge Redis refuses is owed)
            await self.budgets.settle(admitted.hold, Cost(cost_usd, tokens))
        try:
            if admitted.permit is not None:
                await self.limits.release(admitted.permit, tokens)
            if admitted.run is not None:
                await self.runs.settle(admitted.run, cost_usd)
        except StateUnavailable as exc:  # the reply is out: its leases free what it held
            log.warning("a call's rate-limit or run share left to its lease: %s", exc)

    async def _reserve(
        self, action: Action, terms: Terms, path: BudgetPath, decision: Decision, priority: Priority
    ) -> Admitted:
        """Bound the call, then take its rate-limit share, budget holds and run step, all or none."""
        principal, served = action.principal, decision.model or action.model
        cap = terms.max_tokens or None
        if decision.max_tokens and (cap is None or decision.max_tokens < cap):
            cap = decision.max_tokens
        # With shared state even a path without budgets checks: another replica may add one.
        budgeted = bool(path.keys) or self.budgets.state.shared
        run_usd = bool(action.run_id) and self.runs.limits_for(principal).usd is not None
        limit = None
        if cap is not None or budgeted or run_usd:
            limit = self._bounds.output_tokens(action, cap)
        sized = self.bets.sized(action, served)
        if not (budgeted or run_usd or terms.rate_limited or action.run_id):
            return Admitted(decision, served, priority, limit, sized=sized)
        if sized is not None and budgeted:
            bet = self.bets.place(action, served, limit, sized, path)
        else:
            worst = self._bounds.bound(action, served, limit)
            bet = Bet(worst, None, limit, worst.tokens)
        bound = bet.bound
        permit = hold = run = None
        try:  # a refusal gives back what was taken
            if terms.rate_limited or budgeted or run_usd:
                try:
                    permit = await self.limits.acquire_on(terms.limits, bet.worst_tokens)
                except RateLimited as exc:
                    raise exc.refusing(_why(served, f"rate_limit: {exc.message}")) from None
                try:
                    hold = await self.budgets.reserve_on(path, bound)
                except BudgetExceeded as exc:
                    capped = None
                    if bet.metered is not None and sized is not None:
                        capped = await self.bets.capped(action, served, sized[2])
                    if capped is None:
                        raise exc.refusing(_why(served, f"budget:{exc.budget}")) from None
                    decision = _capped(decision, exc.budget, capped.max_tokens)
                    bet, bound = capped, capped.bound
                    try:
                        hold = await self.budgets.reserve_on(path, bound)
                    except BudgetExceeded as again:
                        raise again.refusing(_why(served, f"budget:{again.budget}")) from None
            if action.run_id:
                try:
                    run = await self.runs.hold(action, bound.usd)
                except RunLimitExceeded as exc:
                    raise exc.refusing(_why(served, f"run_limit:{exc.limit}")) from None
        except BaseException:
            if hold is not None:
                await self.budgets.settle(hold, _NOTHING)
            if permit is not None:
                await self.limits.release(permit, None)
            raise
        return Admitted(
            decision, served, priority, bet.max_tokens, hold, permit, run, bet.metered, sized
        )


def _capped(decision: Decision, budget: str, max_tokens: int | None) -> Decision:
    """The verdict of a call whose output was capped to what a budget's room affords."""
    why = f"budget:{budget}: max_tokens capped to {max_tokens}, what the budget affords"
    return dataclasses.replace(decision, reasons=(*decision.reasons, why), max_tokens=max_tokens)


def _stricter(decision: Decision, effect: str | None, policy: str, what: str) -> Decision:
    """``decision`` made as strict as ``effect`` (deny or require_approval) says, by ``policy``."""
    if effect == "deny" and decision.effect != "deny":
        done = "is stopped" if what == "the run" else "are disabled"
        return Decision("deny", (*decision.reasons, f"{policy}: {what} {done}"), policy=policy)
    if effect == "require_approval" and decision.effect == "allow":
        reason = f"{policy}: {what} need approval"
        return Decision("require_approval", (*decision.reasons, reason), policy=policy)
    return decision


def _why(served: str, reason: str) -> Decision:
    """The decision a refusal by a limit records: a deny of the model that would have served."""
    return Decision("deny", (reason,), served)


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
        raise PolicyDenied(message, policy=decision.policy or "", param="model", decision=decision)
    if decision.effect == "require_approval":
        raise ApprovalRequired(
            f"policy {decision.policy} requires approval" + _CANNOT_WAIT.get(action.kind, ""),
            policy=decision.policy or "",
            decision=decision,
        )


_NOTHING = Cost(0.0, 0)
_CANNOT_WAIT = {"model_call": ", which model calls cannot wait for"}


def refusal(exc: GovernError, decision: Decision | None) -> Decision:
    """The decision to record for an error: its own, else ``decision``, else a plain deny."""
    return exc.decision or decision or Decision("deny", (exc.code,))
