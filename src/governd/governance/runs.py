"""Agent runs: the actions that share a run id, their limits and their risk score.

A run is keyed by the principal that acts and the run id it sent, so two
tenants using the same id never share a run. Its counters (start, steps, tool
calls, USD, risk score) live behind ``RunState``: in this process by default,
in Redis when replicas share state, where one script checks every limit and
takes the step, so the limits hold across replicas. USD is held like a budget:
the call's cost bound before it runs, the real cost after, so the run's USD
limit is hard under concurrency. A process that meets a run it holds no state
for (after a restart) rebuilds the counters from the ledger first.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass, fields
from typing import Any, Protocol

from governd.actions import Action, Principal
from governd.clock import Clock
from governd.config import GovernConfig
from governd.config.agents import RiskLevelConfig, RunLimitsConfig
from governd.errors import RunLimitExceeded
from governd.governance.principals import PrincipalTree

_MAX_RUNS = 100_000


@dataclass(slots=True)
class RunTotals:
    """What a run has done so far."""

    started: float
    steps: int = 0
    tool_calls: int = 0
    spent_usd: float = 0.0
    reserved_usd: float = 0.0
    risk: float = 0.0

    def as_dict(self) -> dict[str, float]:
        """Plain data, for the admin API."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class Take:
    """What one action asks of its run: a step, maybe a tool call, a USD bound to hold."""

    tool_calls: int
    usd: float


def refusal(totals: RunTotals, now: float, take: Take, limits: RunLimitsConfig) -> str | None:
    """The limit ``take`` would break (``wall_s``, ``steps``, ``tool_calls``, ``usd``), or None."""
    if limits.wall_s is not None and now - totals.started > limits.wall_s:
        return "wall_s"
    if limits.steps is not None and totals.steps + 1 > limits.steps:
        return "steps"
    if limits.tool_calls is not None and totals.tool_calls + take.tool_calls > limits.tool_calls:
        return "tool_calls"
    if limits.usd is not None and totals.spent_usd + totals.reserved_usd + take.usd > limits.usd:
        return "usd"
    return None


class RunState(Protocol):
    """The counters of every live run."""

    async def take(
        self, key: str, now: float, take: Take, limits: RunLimitsConfig
    ) -> tuple[str | None, RunTotals]:
        """Start the run at ``now`` if new; take a step unless a limit refuses (named)."""
        ...

    async def settle(self, key: str, held: float, used: float) -> None:
        """Release a USD hold and charge what the action cost."""
        ...

    async def add_risk(self, key: str, points: float, now: float) -> float:
        """Add to the run's risk score; returns the new score."""
        ...

    async def totals(self, key: str) -> RunTotals | None:
        """The run's counters, None for a run this state does not hold."""
        ...

    async def preload(self, key: str, totals: RunTotals) -> None:
        """Start a run at ``totals`` (rebuilt from the ledger) unless it is already held."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


class LocalRuns:
    """``RunState`` in this process; atomic because nothing between check and take awaits."""

    def __init__(self, clock: Clock, idle_ttl_s: float) -> None:
        self._runs: OrderedDict[str, tuple[RunTotals, float]] = OrderedDict()
        self._clock = clock
        self._ttl = idle_ttl_s

    def _touch(self, key: str, totals: RunTotals) -> None:
        now = self._clock.now()
        self._runs.pop(key, None)
        self._runs[key] = (totals, now)
        while self._runs:  # oldest first: drop the idle ones, and any beyond the cap
            _, (_, touched) = next(iter(self._runs.items()))
            if now - touched <= self._ttl and len(self._runs) <= _MAX_RUNS:
                break
            self._runs.popitem(last=False)

    async def take(
        self, key: str, now: float, take: Take, limits: RunLimitsConfig
    ) -> tuple[str | None, RunTotals]:
        held = self._runs.get(key)
        totals = held[0] if held else RunTotals(started=now)
        refused = refusal(totals, now, take, limits)
        if refused is None:
            totals.steps += 1
            totals.tool_calls += take.tool_calls
            totals.reserved_usd += take.usd
        self._touch(key, totals)
        return refused, totals

    async def settle(self, key: str, held: float, used: float) -> None:
        found = self._runs.get(key)
        if found is not None:
            totals = found[0]
            totals.reserved_usd = max(0.0, totals.reserved_usd - held)
            totals.spent_usd += used

    async def add_risk(self, key: str, points: float, now: float) -> float:
        held = self._runs.get(key)
        totals = held[0] if held else RunTotals(started=now)
        totals.risk += points
        self._touch(key, totals)
        return totals.risk

    async def totals(self, key: str) -> RunTotals | None:
        held = self._runs.get(key)
        return held[0] if held else None

    async def preload(self, key: str, totals: RunTotals) -> None:
        if key not in self._runs:
            self._touch(key, totals)

    async def aclose(self) -> None:
        """Nothing to release."""


@dataclass(slots=True)
class RunHold:
    """What one admitted action holds on its run, settled once."""

    key: str
    usd: float
    settled: bool = False


class RunStore(Protocol):
    """Where the record of past actions lives (``governd.ledger.Storage``)."""

    def run_totals(self, principal: str, run_id: str) -> dict[str, Any] | None: ...


def run_key(principal: Principal, run_id: str) -> str:
    """The state key of a run: the acting node and the id it chose."""
    return f"{principal.path}|{run_id}"


class Runs:
    """Run limits and risk levels, over a ``RunState``."""

    def __init__(
        self,
        cfg: GovernConfig,
        tree: PrincipalTree,
        state: RunState,
        clock: Clock,
        store: RunStore | None = None,
    ) -> None:
        self.state = state
        self.levels: list[RiskLevelConfig] = list(cfg.runs.risk.levels)
        self.weights = cfg.runs.risk.weights
        self._default = cfg.runs.limits
        self._tree = tree
        self._clock = clock
        self._store = store
        self._limits: dict[tuple[str, ...], RunLimitsConfig] = {}
        self._loaded: OrderedDict[str, asyncio.Task[None]] = OrderedDict()

    def limits_for(self, principal: Principal) -> RunLimitsConfig:
        """The tightest of each limit among ``runs.limits`` and the nodes on the principal's path."""
        scope = principal.scope
        found = self._limits.get(scope)
        if found is None:
            layers = [self._default, *(n.run_limits for n in self._tree.nodes_on_path(principal))]
            values: dict[str, Any] = {}
            for name in RunLimitsConfig.model_fields:
                set_ = [
                    getattr(layer, name) for layer in layers if getattr(layer, name) is not None
                ]
                values[name] = min(set_) if set_ else None
            found = self._limits[scope] = RunLimitsConfig(**values)
        return found

    async def hold(self, action: Action, bound_usd: float) -> RunHold | None:
        """Take a step of the action's run (and its USD bound), or raise ``RunLimitExceeded``."""
        if not action.run_id:
            return None
        key = run_key(action.principal, action.run_id)
        await self._resume(key, action)
        limits = self.limits_for(action.principal)
        usd = bound_usd if limits.usd is not None else 0.0
        take = Take(1 if action.kind == "tool_call" else 0, usd)
        refused, totals = await self.state.take(key, self._clock.now(), take, limits)
        if refused is not None:
            raise _exceeded(action.run_id, refused, limits, totals, self._clock.now())
        return RunHold(key, usd)

    async def settle(self, hold: RunHold, used_usd: float) -> None:
        """Release the hold and charge the action's real cost (once)."""
        if hold.settled:
            return
        hold.settled = True
        await self.state.settle(hold.key, hold.usd, used_usd)

    async def totals(self, principal: Principal, run_id: str) -> RunTotals | None:
        """A run's counters (rebuilt from the ledger if this process has not met it yet)."""
        key = run_key(principal, run_id)
        await self._resume(key, None)
        return await self.state.totals(key)

    async def level(self, action: Action) -> RiskLevelConfig | None:
        """The risk level the action's run has reached, if any."""
        if not self.levels or not action.run_id:
            return None
        totals = await self.totals(action.principal, action.run_id)
        return self.level_at(totals.risk) if totals else None

    def level_at(self, score: float) -> RiskLevelConfig | None:
        """The highest level whose threshold ``score`` reaches."""
        reached = [level for level in self.levels if score >= level.at]
        return reached[-1] if reached else None

    async def add_risk(self, action: Action, points: float) -> tuple[float, float]:
        """Add ``points`` to the action's run; ``(score before, score after)``."""
        assert action.run_id
        key = run_key(action.principal, action.run_id)
        await self._resume(key, action)
        after = await self.state.add_risk(key, points, self._clock.now())
        return after - points, after

    async def _resume(self, key: str, action: Action | None) -> None:
        """Once per run and process: start its state from the ledger if no state holds it."""
        task = self._loaded.get(key)
        if task is None:
            task = asyncio.ensure_future(self._load(key))
            self._loaded[key] = task
            if len(self._loaded) > _MAX_RUNS:
                self._loaded.popitem(last=False)
        if task.done():  # the common case: no new future per call (this is on every decision)
            task.result()
        else:
            await asyncio.shield(task)

    async def _load(self, key: str) -> None:
        if self._store is None or await self.state.totals(key) is not None:
            return
        principal, _, run_id = key.partition("|")
        found = await asyncio.to_thread(self._store.run_totals, principal, run_id)
        if found is not None:
            await self.state.preload(key, RunTotals(**found))


def _exceeded(
    run_id: str, limit: str, limits: RunLimitsConfig, totals: RunTotals, now: float
) -> RunLimitExceeded:
    if limit == "wall_s":
        what = f"its wall time of {limits.wall_s:g} s (started {now - totals.started:.0f} s ago)"
    elif limit == "usd":
        what = (
            f"its ${limits.usd:,.4f} (spent ${totals.spent_usd:,.4f}, "
            f"${totals.reserved_usd:,.4f} held by calls in flight)"
        )
    else:
        what = f"its {getattr(limits, limit)} {limit.replace('_', ' ')}"
    return RunLimitExceeded(f"run {run_id!r} reached {what}", limit=limit)
