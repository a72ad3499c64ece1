"""Builds ``Budgets`` from config and operator overrides, resumes spend from the ledger, picks state."""

from __future__ import annotations

import asyncio
from typing import Any, Protocol, cast
from zoneinfo import ZoneInfo

from governd.clock import Clock
from governd.config import ConfigError, ConfigProblem, GovernConfig
from governd.governance.budgets import BudgetKey, Budgets, BudgetState, Limit, Unit
from governd.governance.periods import Period
from governd.governance.ratelimits import LimitState, LocalLimits
from governd.governance.runs import LocalRuns, RunState
from governd.governance.state.local_budgets import LocalState


class BudgetStore(Protocol):
    """Where operator budgets and the record of spend live (``governd.ledger.Storage``)."""

    def budget_overrides(self) -> list[dict[str, Any]]: ...
    def upsert_budget(self, row: dict[str, Any]) -> None: ...
    def spent_since(self, node: str, unit: str, since: float) -> float: ...
    def overbilled_since(self, node: str, since: float) -> list[dict[str, Any]]: ...


def config_budgets(cfg: GovernConfig) -> list[tuple[BudgetKey, Limit]]:
    """Every budget declared in the principal tree of the config."""
    return [
        (BudgetKey(node.path, b.unit, b.period), Limit(b.limit, b.soft))
        for node in cfg.principals.walk()
        for b in node.config.budgets
    ]


class StoredBudgets:
    """The budgets config declares, and operators' changes to them (which win), in the store."""

    def __init__(self, cfg: GovernConfig, store: BudgetStore, clock: Clock) -> None:
        self._declared = config_budgets(cfg)
        self._store = store
        self._clock = clock

    async def limits(self) -> dict[BudgetKey, Limit]:
        """Config's budgets, then every stored change over them."""
        out = dict(self._declared)
        for row in await asyncio.to_thread(self._store.budget_overrides):
            key = BudgetKey(row["node"], cast(Unit, row["unit"]), cast(Period, row["period"]))
            out[key] = Limit(row["limit"], row["soft"])
        return out

    async def save(self, key: BudgetKey, limit: Limit) -> None:
        """Store an operator's change."""
        row = {
            "node": key.node,
            "unit": key.unit,
            "period": key.period,
            "limit": limit.limit,
            "soft": limit.soft,
            "updated_at": self._clock.now(),
        }
        await asyncio.to_thread(self._store.upsert_budget, row)

    async def spent_since(self, key: BudgetKey, since: float) -> float:
        """What the ledger recorded against the budget since ``since``."""
        return await asyncio.to_thread(self._store.spent_since, key.node, key.unit, since)

    async def overage_since(self, key: BudgetKey, since: float) -> float:
        """USD or output tokens upstreams billed past calls' bounds (none for device-hours)."""
        if key.unit == "device_hours":
            return 0.0
        found = await asyncio.to_thread(self._store.overbilled_since, key.node, since)
        field = "overage_usd" if key.unit == "usd" else "overage_tokens"
        return float(sum(o.get(field, 0) for o in found))


def load_budgets(cfg: GovernConfig, store: BudgetStore, clock: Clock) -> Budgets:
    """Budgets on the configured state, from config and the store (empty until ``sync``).

    Call ``Budgets.sync`` once the event loop runs: it loads every budget and
    starts each window at what the ledger recorded in it.
    """
    state = LocalState() if cfg.state == "memory" else _redis_state(cfg.state)
    source = StoredBudgets(cfg, store, clock)
    ladders = {node.path: node.config.ladder for node in cfg.principals.walk()}
    return Budgets(state, ZoneInfo(cfg.governance.timezone), clock, source, ladders)


def limit_state(cfg: GovernConfig, clock: Clock) -> LimitState:
    """Rate-limit counters on the configured state: this process, or Redis."""
    if cfg.state == "memory":
        return LocalLimits(clock)
    try:
        from governd.governance.state.redis_limits import redis_limits
    except ImportError:
        raise _needs_redis() from None
    return redis_limits(cfg.state)


def run_state(cfg: GovernConfig, clock: Clock) -> RunState:
    """Run counters on the configured state: this process, or Redis."""
    if cfg.state == "memory":
        return LocalRuns(clock, cfg.runs.idle_ttl_s)
    try:
        from governd.governance.state.redis_runs import RedisRuns
    except ImportError:
        raise _needs_redis() from None
    return RedisRuns(cfg.state, cfg.runs.idle_ttl_s)


def _needs_redis() -> ConfigError:
    return ConfigError(
        "state",
        [
            ConfigProblem(
                "state", None, "redis:// needs the `redis` extra: pip install 'governd[redis]'"
            )
        ],
    )


def _redis_state(url: str) -> BudgetState:
    try:
        from governd.governance.state.redis_budgets import RedisState
    except ImportError:
        raise _needs_redis() from None
    return RedisState(url)
