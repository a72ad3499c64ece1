"""Budget burn: forecast each USD and token budget's exhaustion, and act before it runs out.

Every ``every_s`` it samples what each budget has spent in its period and
extrapolates the burn of the last ``lookback_s`` (or of the period so far, when
that is shorter) to the period's end. A budget that would run out before its
period ends is *early*: the change is a ledger entry (once across replicas,
through ``control_states``) naming the spend, the burn rate and when it would
run out, and, by ``governance.forecast.action``, its node's calls are served by
their models' ``degrade_to`` or run at batch priority until the forecast is
back under 90% of the limit (hysteresis: no flapping around the line).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from governd.clock import Clock
from governd.config.schema import ForecastConfig
from governd.governance.budgets import BudgetKey, Budgets, amount
from governd.governance.overrides import Override, Overrides
from governd.ledger.control_states import ControlStates

log = logging.getLogger("governd.budgets")
#: Records a control entry: (principal, operation, detail) -> entry id.
Record = Callable[[str, str, str], Awaitable[str]]
SCOPE = "budget:"
#: Back on track once the forecast is under this share of the limit.
_CLEAR = 0.9


@dataclass(frozen=True, slots=True)
class Forecast:
    """Where a budget is heading, as of ``at``: spent, burn per second, when it would run out."""

    at: float
    spent: float
    limit: float
    rate: float
    period_end: float

    @property
    def exhausts_at(self) -> float | None:
        """When it would run out at this burn (None: it is not burning)."""
        if self.rate <= 0:
            return None
        return self.at + max(0.0, self.limit - self.spent) / self.rate

    @property
    def at_end(self) -> float:
        """What it would have spent by the period's end."""
        return self.spent + self.rate * max(0.0, self.period_end - self.at)

    @property
    def early(self) -> bool:
        """Whether it runs out before its period ends."""
        exhausts = self.exhausts_at
        return exhausts is not None and exhausts < self.period_end


def forecast(
    samples: deque[tuple[float, float]], limit: float, window: tuple[float, float], now: float
) -> Forecast:
    """Extrapolate the burn between the oldest and newest samples (``(ts, spent)``, this period).

    With one sample, the burn is the period's average so far.
    """
    start, end = window
    spent = samples[-1][1]
    then, before = samples[0] if len(samples) > 1 else (start, 0.0)
    rate = max(0.0, (spent - before) / (now - then)) if now > then else 0.0
    return Forecast(now, spent, limit, rate, end)


class BudgetForecasts:
    """Samples every budget, keeps its forecast, and acts on the ones that run out early."""

    def __init__(
        self,
        cfg: ForecastConfig,
        budgets: Budgets,
        states: ControlStates,
        overrides: Overrides,
        record: Record,
        clock: Clock,
    ) -> None:
        self._cfg = cfg
        self._budgets = budgets
        self._states = states
        self._overrides = overrides
        self._record = record
        self._clock = clock
        self._samples: dict[BudgetKey, deque[tuple[float, float]]] = {}
        #: The latest forecast of each budget far enough into its period.
        self.forecasts: dict[BudgetKey, Forecast] = {}
        self.early: set[BudgetKey] = set()

    async def start(self) -> None:
        """Put back the actions of budgets already early (a restarted replica)."""
        on = await asyncio.to_thread(self._states.all, SCOPE)
        names = {key.name: key for key in self._budgets.all()}
        for state in on:
            key = names.get(state.scope.removeprefix(SCOPE))
            if state.active and key is not None:
                self._act(key, True)

    async def refresh(self) -> list[tuple[BudgetKey, Forecast, bool]]:
        """Sample and forecast every budget; returns the changes this replica recorded."""
        now = self._clock.now()
        recorded = []
        for key in self._budgets.all():
            limit = self._budgets.limit(key)
            if limit is None or key.unit == "device_hours":
                continue
            window = self._budgets.window(key)
            spent, _ = await self._budgets.state.usage(key, window[0])
            found = self._sample(key, window, now, spent)
            if found is None:
                continue
            self.forecasts[key] = found
            was = key in self.early
            now_early = found.early or (was and found.at_end > _CLEAR * limit.limit)
            if now_early != was and await self._flip(key, found, now_early, now):
                recorded.append((key, found, now_early))
        return recorded

    def _sample(
        self, key: BudgetKey, window: tuple[float, float], now: float, spent: float
    ) -> Forecast | None:
        samples = self._samples.setdefault(key, deque())
        while samples and (samples[0][0] < window[0] or samples[0][0] < now - self._cfg.lookback_s):
            samples.popleft()
        samples.append((now, spent))
        if now - window[0] < self._cfg.min_elapsed_s:
            return None
        return forecast(samples, self._budgets.limit(key).limit, window, now)  # type: ignore[union-attr]

    async def _flip(self, key: BudgetKey, found: Forecast, early: bool, now: float) -> bool:
        self._act(key, early)
        if not await asyncio.to_thread(
            self._states.claim, SCOPE + key.name, "", "early", early, now
        ):
            return False
        operation = "budget_forecast" if early else "budget_on_track"
        await self._record(
            key.node, operation, describe(key, found, self._cfg.action if early else "none")
        )
        return True

    def _act(self, key: BudgetKey, early: bool) -> None:
        if early:
            self.early.add(key)
        else:
            self.early.discard(key)
        action = self._cfg.action
        if action == "warn":
            return
        override_key = f"{SCOPE}{key.name}"
        if not early:
            self._overrides.remove(override_key)
            return
        source = f"budget:{key.name}"
        if action == "degrade":
            self._overrides.put(override_key, Override("degrade_node", key.node, "", source))
        else:
            self._overrides.put(override_key, Override("lower_priority", key.node, "batch", source))

    def samples(self) -> list[tuple[dict[str, str], float]]:
        """``governd_budget_exhaustion_seconds``: how long each burning budget lasts at its burn."""
        now = self._clock.now()
        out = []
        for key, f in self.forecasts.items():
            exhausts = f.exhausts_at
            if exhausts is not None:
                labels = {"principal": key.node, "unit": key.unit, "period": key.period}
                out.append((labels, max(0.0, exhausts - now)))
        return out

    async def run(self) -> None:
        """Refresh every ``every_s`` until cancelled."""
        while True:
            try:
                await self.refresh()
            except Exception:
                log.warning("budget forecasts not refreshed", exc_info=True)
            await asyncio.sleep(self._cfg.every_s)


def describe(key: BudgetKey, f: Forecast, action: str) -> str:
    """The forecast in words, for its ledger entry."""
    hour = f.rate * 3600
    head = f"budget {key.name}: {amount(key.unit, f.spent)} of {amount(key.unit, f.limit)} spent"
    if f.exhausts_at is None:
        return f"{head}, not burning; action {action}"
    when = datetime.fromtimestamp(f.exhausts_at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    ahead = f.period_end - f.exhausts_at
    return (
        f"{head}, burning {amount(key.unit, hour)}/h: runs out at {when}"
        + (
            f", {ahead / 3600:.1f} h before its period ends"
            if ahead > 0
            else ", after its period ends"
        )
        + f"; action {action}"
    )
