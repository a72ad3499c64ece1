"""Builds ``Budgets`` from config and operator overrides, resumes spend from the ledger, picks state."""

from __future__ import annotations

import asyncio
from typing import Any, Protocol, cast
from zoneinfo import ZoneInfo

from governd.clock import Clock
from governd.config import ConfigError, ConfigProblem, GovernConfig, NodeConfig
from governd.governance.budgets import BudgetKey, Budgets, BudgetState, Limit, LocalState, Unit
from governd.governance.periods import Period
from governd.governance.ratelimits import LimitState, LocalLimits
from governd.governance.runs import LocalRuns, RunState


class BudgetStore(Protocol):
    """Where operator budgets and the record of spend live (``governd.ledger.Storage``)."""

    def budget_overrides(self) -> list[dict[str, Any]]: ...
    def upsert_budget(self, row: dict[str, Any]) -> None: ...
    def spent_since(self, node: str, unit: str, since: float) -> float: ...


def config_budgets(cfg: GovernConfig) -> list[tuple[BudgetKey, Limit]]:
    """Every budget declared in the principal tree of the config."""
    org = cfg.principals.org
    nodes: list[tuple[str, NodeConfig]] = [(org, cfg.principals)]
    for tname, team in cfg.principals.teams.items():
        nodes.append((f"{org}/{tname}", team))
        nodes.extend((f"{org}/{tname}/{pname}", proj) for pname, proj in team.projects.items())
    return [
        (BudgetKey(path, b.unit, b.period), Limit(b.limit, b.soft))
        for path, node in nodes
        for b in node.budgets
    ]


def load_budgets(cfg: GovernConfig, store: BudgetStore, clock: Clock) -> Budgets:
    """Budgets from config, then operators' changes (which win), on the configured state.

    Call ``resume_spend`` once the event loop runs, so that windows start at
    what the ledger recorded in them.
    """
    state = LocalState() if cfg.state == "memory" else _redis_state(cfg.state)
    budgets = Budgets(state, ZoneInfo(cfg.governance.timezone), clock)
    for key, limit in config_budgets(cfg):
        budgets.set(key, limit)
    for row in store.budget_overrides():
        key = BudgetKey(row["node"], cast(Unit, row["unit"]), cast(Period, row["period"]))
        budgets.set(key, Limit(row["limit"], row["soft"]))
    return budgets


def limit_state(cfg: GovernConfig, clock: Clock) -> LimitState:
    """Rate-limit counters on the configured state: this process, or Redis."""
    if cfg.state == "memory":
        return LocalLimits(clock)
    try:
        from governd.governance.redis_limits import redis_limits
    except ImportError:
        raise _needs_redis() from None
    return redis_limits(cfg.state)


def run_state(cfg: GovernConfig, clock: Clock) -> RunState:
    """Run counters on the configured state: this process, or Redis."""
    if cfg.state == "memory":
        return LocalRuns(clock, cfg.runs.idle_ttl_s)
    try:
        from governd.governance.redis_runs import RedisRuns
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
        from governd.governance.redis_state import RedisState
    except ImportError:
        raise _needs_redis() from None
    return RedisState(url)


async def resume_spend(
    budgets: Budgets, store: BudgetStore, keys: list[BudgetKey] | None = None
) -> None:
    """Start each budget's current window at the spend the ledger recorded in it.

    With Redis the first replica to start initialises a window; later ones
    leave it alone (it already counts everything since).
    """
    for key in budgets.all() if keys is None else keys:
        start, _ = budgets.window(key)
        spent = await asyncio.to_thread(store.spent_since, key.node, key.unit, start)
        await budgets.state.preload(key, start, spent)


async def set_budget(
    budgets: Budgets, store: BudgetStore, key: BudgetKey, limit: Limit, now: float
) -> Limit | None:
    """An operator's change: stored (it outlives restarts and config edits) and live at once."""
    row = {
        "node": key.node,
        "unit": key.unit,
        "period": key.period,
        "limit": limit.limit,
        "soft": limit.soft,
        "updated_at": now,
    }
    await asyncio.to_thread(store.upsert_budget, row)
    before = budgets.set(key, limit)
    if before is None:
        await resume_spend(budgets, store, [key])
    return before
