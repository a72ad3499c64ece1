"""Run limits and risk levels, on both run states: in process and a real Redis."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from typing import Any

import pytest

from governd.actions import Action, Principal
from governd.clock import ManualClock
from governd.config import parse_config
from governd.errors import RunLimitExceeded
from governd.governance.principals import PrincipalTree
from governd.governance.runs import LocalRuns, Runs, RunState, RunTotals
from governd.governance.state.redis_runs import RedisRuns

CONFIG = """
principals:
  org: acme
  run_limits: {steps: 100}
  teams:
    t:
      run_limits: {steps: 5, tool_calls: 2}
      projects:
        p: {run_limits: {steps: 50, usd: 1.0, wall_s: 60}}
runs:
  limits: {tool_calls: 3}
  risk:
    levels:
      - {at: 3, name: guarded, tiers: {write: require_approval, destructive: deny}}
      - {at: 8, name: stopped, stop: true}
"""
_RUNS = itertools.count()


@pytest.fixture(params=["memory", "redis"])
async def state(request: pytest.FixtureRequest, redis_url: str) -> AsyncIterator[RunState]:
    found: RunState = (
        LocalRuns(ManualClock(), 3600) if request.param == "memory" else RedisRuns(redis_url, 3600)
    )
    yield found
    await found.aclose()


class Ledger:
    """A stand-in for the ledger's record of runs (the storage has its own tests)."""

    def __init__(self, found: dict[str, Any] | None) -> None:
        self.found = found
        self.asked: list[tuple[str, str]] = []

    def run_totals(self, principal: str, run_id: str) -> dict[str, Any] | None:
        self.asked.append((principal, run_id))
        return self.found


def make(state: RunState, store: Ledger | None = None) -> tuple[Runs, ManualClock]:
    cfg = parse_config(CONFIG)
    clock = ManualClock()
    return Runs(cfg, PrincipalTree(cfg), state, clock, store), clock


def action(principal: Principal, run: str, kind: str = "model_call") -> Action:
    return Action("a", "chat", principal, "m", {}, run_id=run, kind=kind)  # type: ignore[arg-type]


TEAM = Principal("acme", "t")
PROJECT = Principal("acme", "t", "p")


def test_the_tightest_limit_on_the_path_wins() -> None:
    runs, _ = make(LocalRuns(ManualClock(), 60))
    team, project = runs.limits_for(TEAM), runs.limits_for(PROJECT)
    assert (team.steps, team.tool_calls, team.usd, team.wall_s) == (5, 2, None, None)
    assert (project.steps, project.tool_calls, project.usd, project.wall_s) == (5, 2, 1.0, 60)
    assert runs.limits_for(Principal("acme")).steps == 100


async def test_steps_and_tool_calls_are_counted_and_limited(state: RunState) -> None:
    runs, _ = make(state)
    run = f"r{next(_RUNS)}"
    for kind in ("tool_call", "model_call", "tool_call"):
        assert await runs.hold(action(TEAM, run, kind), 0.0) is not None
    with pytest.raises(RunLimitExceeded) as tools:
        await runs.hold(action(TEAM, run, "tool_call"), 0.0)
    assert tools.value.limit == "tool_calls"
    await runs.hold(action(TEAM, run), 0.0)
    await runs.hold(action(TEAM, run), 0.0)
    with pytest.raises(RunLimitExceeded) as steps:
        await runs.hold(action(TEAM, run), 0.0)
    assert steps.value.limit == "steps" and "its 5 steps" in steps.value.message
    totals = await runs.totals(TEAM, run)
    assert totals is not None and (totals.steps, totals.tool_calls) == (5, 2)


async def test_a_run_is_per_principal(state: RunState) -> None:
    runs, _ = make(state)
    run = f"r{next(_RUNS)}"
    for _ in range(5):
        await runs.hold(action(TEAM, run), 0.0)
    assert await runs.hold(action(Principal("acme"), run), 0.0) is not None


async def test_usd_is_held_then_settled(state: RunState) -> None:
    runs, _ = make(state)
    run = f"r{next(_RUNS)}"
    first = await runs.hold(action(PROJECT, run), 0.6)
    assert first is not None
    with pytest.raises(RunLimitExceeded) as held:
        await runs.hold(action(PROJECT, run), 0.6)
    assert held.value.limit == "usd"
    await runs.settle(first, 0.1)
    await runs.settle(first, 0.1)  # once only
    assert await runs.hold(action(PROJECT, run), 0.6) is not None
    totals = await runs.totals(PROJECT, run)
    assert totals is not None
    assert (totals.spent_usd, totals.reserved_usd) == (pytest.approx(0.1), pytest.approx(0.6))


async def test_wall_time_counts_from_the_first_action(state: RunState) -> None:
    runs, clock = make(state)
    run = f"r{next(_RUNS)}"
    await runs.hold(action(PROJECT, run), 0.0)
    clock.advance(59)
    await runs.hold(action(PROJECT, run), 0.0)
    clock.advance(2)
    with pytest.raises(RunLimitExceeded) as late:
        await runs.hold(action(PROJECT, run), 0.0)
    assert late.value.limit == "wall_s"


async def test_concurrent_steps_never_pass_the_limit(state: RunState) -> None:
    """Two ``Runs`` on one state (two replicas) race for a run's 5 steps."""
    a, _ = make(state)
    b, _ = make(state)
    run = f"r{next(_RUNS)}"

    async def one(runs: Runs) -> bool:
        try:
            await runs.hold(action(TEAM, run), 0.0)
            return True
        except RunLimitExceeded:
            return False

    taken = await asyncio.gather(*(one(a if i % 2 else b) for i in range(60)))
    assert sum(taken) == 5


async def test_risk_accumulates_into_levels(state: RunState) -> None:
    runs, _ = make(state)
    act = action(TEAM, f"r{next(_RUNS)}")
    assert await runs.level(act) is None
    assert await runs.add_risk(act, 2.0) == (0.0, 2.0)
    assert await runs.level(act) is None
    assert await runs.add_risk(act, 1.5) == (2.0, 3.5)
    level = await runs.level(act)
    assert level is not None and level.name == "guarded"
    await runs.add_risk(act, 10)
    stopped = await runs.level(act)
    assert stopped is not None and stopped.stop


async def test_a_run_resumes_from_the_ledger_once(state: RunState) -> None:
    run = f"r{next(_RUNS)}"
    ledger = Ledger({"started": 1_799_999_990.0, "steps": 4, "tool_calls": 1, "risk": 3.0})
    runs, _ = make(state, ledger)
    await runs.hold(action(TEAM, run), 0.0)
    with pytest.raises(RunLimitExceeded):
        await runs.hold(action(TEAM, run), 0.0)
    totals = await runs.totals(TEAM, run)
    assert totals == RunTotals(1_799_999_990.0, 5, 1, 0.0, 0.0, 3.0)
    assert ledger.asked == [("acme/t", run)]
    level = await runs.level(action(TEAM, run))
    assert level is not None and level.name == "guarded"


async def test_a_run_held_in_state_is_not_reloaded(state: RunState) -> None:
    run = f"r{next(_RUNS)}"
    first, _ = make(state)
    await first.hold(action(TEAM, run), 0.0)
    ledger = Ledger({"started": 0.0, "steps": 99})
    second, _ = make(state, ledger)
    await second.hold(action(TEAM, run), 0.0)
    totals = await second.totals(TEAM, run)
    assert totals is not None and totals.steps == 2


def test_local_runs_forget_idle_runs() -> None:
    clock = ManualClock()
    state = LocalRuns(clock, idle_ttl_s=10)
    runs = Runs(parse_config(CONFIG), PrincipalTree(parse_config(CONFIG)), state, clock)

    async def scenario() -> tuple[RunTotals | None, RunTotals | None]:
        await runs.hold(action(TEAM, "old"), 0.0)
        clock.advance(11)
        await runs.hold(action(TEAM, "new"), 0.0)
        return await state.totals("acme/t|old"), await state.totals("acme/t|new")

    old, new = asyncio.run(scenario())
    assert old is None and new is not None
