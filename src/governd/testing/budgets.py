"""A ``BudgetSource`` in memory: what the config and the store give replicas, for unit tests."""

from __future__ import annotations

from dataclasses import dataclass, field

from governd.governance.budgets import BudgetKey, Limit


@dataclass
class MemoryBudgetSource:
    """Budgets and recorded spend held in a dict, shared by every ``Budgets`` given it."""

    saved: dict[BudgetKey, Limit] = field(default_factory=dict)
    spent: dict[BudgetKey, float] = field(default_factory=dict)

    async def limits(self) -> dict[BudgetKey, Limit]:
        """Every budget saved so far."""
        return dict(self.saved)

    async def save(self, key: BudgetKey, limit: Limit) -> None:
        """Save a change."""
        self.saved[key] = limit

    async def spent_since(self, key: BudgetKey, since: float) -> float:
        """The spend recorded for ``key`` (whatever ``since``)."""
        return self.spent.get(key, 0.0)

    async def overage_since(self, key: BudgetKey, since: float) -> float:
        """Upstreams here never overbill."""
        return 0.0
