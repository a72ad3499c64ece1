"""Builds ``Budgets`` from config and operator overrides, and resumes spend from the ledger."""

from __future__ import annotations

from typing import Any, Protocol, cast
from zoneinfo import ZoneInfo

from governd.clock import Clock
from governd.config import GovernConfig, NodeConfig
from governd.governance.budgets import BudgetKey, Budgets, BudgetState, Limit, LocalState, Unit
from governd.governance.periods import Period


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


def load_budgets(
    cfg: GovernConfig, store: BudgetStore, clock: Clock, state: BudgetState | None = None
) -> Budgets:
    """Budgets from config, then operators' changes (which win), with spent so far resumed.

    With the in-process state, the current window of every budget starts at
    what the ledger recorded in it, so a restart does not reset spend.
    """
    local = state is None
    budgets = Budgets(state or LocalState(), ZoneInfo(cfg.governance.timezone), clock)
    for key, limit in config_budgets(cfg):
        budgets.set(key, limit)
    for row in store.budget_overrides():
        key = BudgetKey(row["node"], cast(Unit, row["unit"]), cast(Period, row["period"]))
        budgets.set(key, Limit(row["limit"], row["soft"]))
    if local:
        resume_spend(budgets, store)
    return budgets


def resume_spend(budgets: Budgets, store: BudgetStore, keys: list[BudgetKey] | None = None) -> None:
    """Start each budget's current window at the spend the ledger recorded in it."""
    assert isinstance(budgets.state, LocalState)
    for key in budgets.all() if keys is None else keys:
        start, _ = budgets.window(key)
        budgets.state.preload(key, start, store.spent_since(key.node, key.unit, start))


def set_budget(
    budgets: Budgets, store: BudgetStore, key: BudgetKey, limit: Limit, now: float
) -> Limit | None:
    """An operator's change: stored (it outlives restarts and config edits) and live at once."""
    store.upsert_budget(
        {
            "node": key.node,
            "unit": key.unit,
            "period": key.period,
            "limit": limit.limit,
            "soft": limit.soft,
            "updated_at": now,
        }
    )
    before = budgets.set(key, limit)
    if before is None and isinstance(budgets.state, LocalState):
        resume_spend(budgets, store, [key])
    return before
