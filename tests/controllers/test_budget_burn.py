"""Budget burn: forecasts from the recent spend, early warnings recorded once, actions undone on track.

A day budget of $100 on acme/t, spent in steps on a ``ManualClock`` through
the real ``Budgets`` (in-process state) and ``control_states`` on SQLite.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from governd.actions import Principal
from governd.clock import ManualClock
from governd.config.schema import ForecastConfig
from governd.controllers.budget_burn import BudgetForecasts, forecast
from governd.governance.budgets import BudgetKey, Budgets, Cost, Limit
from governd.governance.overrides import Overrides
from governd.governance.state.local_budgets import LocalState
from governd.ledger.control_states import ControlStates
from governd.ledger.storage import Storage

DAY = 86400.0
KEY = BudgetKey("acme/t", "usd", "day")
WHO = Principal("acme", "t")


def test_the_recent_burn_is_extrapolated_to_the_periods_end() -> None:
    samples = deque([(3600.0, 10.0), (7200.0, 20.0)])  # $10 an hour
    f = forecast(samples, 100.0, (0.0, DAY), 7200.0)
    assert f.rate == pytest.approx(10 / 3600)
    assert f.exhausts_at == pytest.approx(7200 + 8 * 3600)  # $80 left at $10/h
    assert f.early and f.at_end == pytest.approx(20 + 10 * 22)
    slow = forecast(deque([(3600.0, 1.0), (7200.0, 2.0)]), 100.0, (0.0, DAY), 7200.0)
    assert not slow.early and slow.at_end == pytest.approx(24)
    one = forecast(deque([(7200.0, 20.0)]), 100.0, (0.0, DAY), 7200.0)  # the period's average
    assert one.rate == pytest.approx(20 / 7200)
    idle = forecast(deque([(3600.0, 5.0), (7200.0, 5.0)]), 100.0, (0.0, DAY), 7200.0)
    assert idle.exhausts_at is None and not idle.early


class Recorded:
    def __init__(self) -> None:
        self.entries: list[tuple[str, str, str]] = []

    async def __call__(self, principal: str, operation: str, detail: str) -> str:
        self.entries.append((principal, operation, detail))
        return "ctl_x"


async def spend(budgets: Budgets, usd: float) -> None:
    hold = await budgets.reserve(WHO, Cost(usd, 0))
    await budgets.settle(hold, Cost(usd, 0))


async def test_replicas_warn_once_act_alike_and_undo_when_back_on_track(tmp_path: Path) -> None:
    clock = ManualClock(start=1_800_000_000.0 - 1_800_000_000.0 % DAY)  # a day starts
    budgets = Budgets(LocalState(), ZoneInfo("UTC"), clock)
    budgets.set(KEY, Limit(100.0))
    states = ControlStates(Storage(f"sqlite:///{tmp_path / 'l.db'}").engine)
    cfg = ForecastConfig(action="degrade", lookback_s=3600, min_elapsed_s=300)
    replicas = [(Overrides(), Recorded()) for _ in range(2)]
    forecasts = [BudgetForecasts(cfg, budgets, states, o, r, clock) for o, r in replicas]
    for _ in range(12):  # $5 every 10 minutes: $30/h, out of $100 in a little over 3 h
        clock.advance(600)
        await spend(budgets, 5.0)
        for f in forecasts:
            await f.refresh()
    entries = [e for _, r in replicas for e in r.entries]
    assert [(p, op) for p, op, _ in entries] == [("acme/t", "budget_forecast")]
    assert "burning $30.0000/h" in entries[0][2] and "action degrade" in entries[0][2]
    assert all(o.degraded_nodes == [("acme/t", "budget:acme/t usd/day")] for o, _ in replicas)
    assert forecasts[0].samples()[0][0] == {"principal": "acme/t", "unit": "usd", "period": "day"}

    for _ in range(12):  # the burn stops: $60 by the day's end is on track
        clock.advance(600)
        for f in forecasts:
            await f.refresh()
    entries = [e for _, r in replicas for e in r.entries]
    assert [op for _, op, _ in entries] == ["budget_forecast", "budget_on_track"]
    assert all(o.degraded_nodes == [] for o, _ in replicas)


async def test_a_restarted_replica_takes_up_an_early_budget(tmp_path: Path) -> None:
    clock = ManualClock(start=1_800_000_000.0 - 1_800_000_000.0 % DAY)
    budgets = Budgets(LocalState(), ZoneInfo("UTC"), clock)
    budgets.set(KEY, Limit(100.0))
    states = ControlStates(Storage(f"sqlite:///{tmp_path / 'l.db'}").engine)
    states.claim("budget:" + KEY.name, "", "early", True, clock.now())
    overrides = Overrides()
    cfg = ForecastConfig(action="lower_priority")
    await BudgetForecasts(cfg, budgets, states, overrides, Recorded(), clock).start()
    assert overrides.priorities == [("acme/t", "batch", "budget:acme/t usd/day")]
