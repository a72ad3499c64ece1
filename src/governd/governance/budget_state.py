"""What budgets stand on: counters (in process or Redis) and a source of limits and spend."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from governd.governance.budget_values import BudgetKey, Cells, Limit, Stale, Unseeded


class BudgetState(Protocol):
    """The counters: spent and reserved per budget and window, and the budgets' generation."""

    #: Whether other processes share it (then another replica may add a budget at any time).
    shared: bool

    def cells(self, slots: Sequence[tuple[BudgetKey, float]]) -> Cells:
        """Handles of the counters of each ``(budget, window start)``, for the calls below."""
        ...

    def ticket(self) -> str:
        """A name for a new hold ('' where holds need none)."""
        ...

    async def reserve(
        self,
        cells: Cells,
        amounts: Sequence[float],
        limits: Sequence[float],
        generation: int,
        ticket: str,
        lease_s: float,
        once: bool = False,
    ) -> int | Stale | Unseeded | None:
        """Add every amount to the hold ``ticket``, or none: the index of the first that does not
        fit, ``"stale"``, or the first window never seeded. The hold is freed by itself
        ``lease_s`` after its last reservation if it is never settled. ``once``: a hold
        ``ticket`` has already is kept as it is (taken again by a replica taking over a job)."""
        ...

    async def generation(self) -> int:
        """How many times the set of budgets has changed (0 when never, or forgotten)."""
        ...

    async def bump(self) -> None:
        """Say the set of budgets changed, so that every holder of older limits reloads."""
        ...

    async def settle(
        self, cells: Cells, ticket: str, held: Sequence[float], actual: Sequence[float]
    ) -> None:
        """Release the hold (unless its lease freed it already) and charge what was used."""
        ...

    async def usage(self, key: BudgetKey, window: float) -> tuple[float, float]:
        """``(spent, reserved)`` of a budget in a window."""
        ...

    async def usages(self, cells: Cells) -> list[tuple[float, float]]:
        """``(spent, reserved)`` of each cell, read together."""
        ...

    async def preload(self, key: BudgetKey, window: float, spent: float) -> None:
        """Seed a window with ``spent`` (rebuilt from the ledger), unless it was seeded."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


class BudgetSource(Protocol):
    """Where budgets come from: the config and operators' changes, and the spend recorded."""

    async def limits(self) -> dict[BudgetKey, Limit]:
        """Every budget that exists now."""
        ...

    async def save(self, key: BudgetKey, limit: Limit) -> None:
        """Store an operator's change (it outlives restarts and config edits)."""
        ...

    async def spent_since(self, key: BudgetKey, since: float) -> float:
        """What the ledger recorded against a budget since ``since``."""
        ...

    async def overage_since(self, key: BudgetKey, since: float) -> float:
        """Of that, what upstreams billed past the bounds calls were given."""
        ...
