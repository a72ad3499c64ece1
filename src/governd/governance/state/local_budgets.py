"""Budget counters in this process: the default ``BudgetState`` of a single replica."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from governd.governance.budgets import BudgetKey, Stale, Unseeded


class _Slot:
    """One budget window's counters."""

    __slots__ = ("reserved", "spent")

    def __init__(self, spent: float = 0.0) -> None:
        self.spent = spent
        self.reserved = 0.0


class LocalState:
    """Counters in this process. Atomic because nothing in ``reserve`` awaits.

    A cell is the window's ``_Slot`` itself: a call's path holds its slots.
    """

    shared = False

    def __init__(self) -> None:
        # A window's counters start at zero when first touched.
        self._slots: defaultdict[tuple[BudgetKey, float], _Slot] = defaultdict(_Slot)
        self._generation = 0
        self._preloaded: set[tuple[BudgetKey, float]] = set()
        self._named: set[str] = set()  # holds given a name (a job's): taken once

    def ticket(self) -> str:
        """Holds need no name: they die with the process that holds them."""
        return ""

    def cells(self, slots: Sequence[tuple[BudgetKey, float]]) -> list[_Slot]:
        found = self._slots
        return [found[slot] for slot in slots]

    async def reserve(
        self,
        cells: Sequence[_Slot],
        amounts: Sequence[float],
        limits: Sequence[float],
        generation: int,
        ticket: str = "",
        lease_s: float = 0.0,
        once: bool = False,
    ) -> int | Stale | Unseeded | None:
        if generation != self._generation:
            return "stale"
        if once and ticket in self._named:
            return None
        for slot, amount, limit in zip(cells, amounts, limits, strict=True):
            if slot.spent + slot.reserved + amount > limit:
                return list(cells).index(slot)
        for slot, amount in zip(cells, amounts, strict=True):
            slot.reserved += amount
        if ticket:
            self._named.add(ticket)
        return None

    async def settle(
        self, cells: Sequence[_Slot], ticket: str, held: Sequence[float], actual: Sequence[float]
    ) -> None:
        self._named.discard(ticket)
        for slot, amount, used in zip(cells, held, actual, strict=True):
            left = slot.reserved - amount
            slot.reserved = left if left > 0.0 else 0.0  # float sums may dip below zero
            slot.spent += used

    async def usage(self, key: BudgetKey, window: float) -> tuple[float, float]:
        slot = self._slots[key, window]
        return slot.spent, slot.reserved

    async def usages(self, cells: Sequence[_Slot]) -> list[tuple[float, float]]:
        return [(s.spent, s.reserved) for s in cells]

    async def generation(self) -> int:
        return self._generation

    async def bump(self) -> None:
        self._generation += 1

    async def preload(self, key: BudgetKey, window: float, spent: float) -> None:
        """Add ``spent`` (rebuilt from the ledger after a restart) to a window, once.

        Calls may have touched the window already (a path is built before its
        budgets are resumed): what they settled meanwhile may be counted twice,
        which errs on the safe side of a hard limit, never under it.
        """
        if (key, window) not in self._preloaded:
            self._preloaded.add((key, window))
            self._slots[key, window].spent += spent

    async def aclose(self) -> None:
        """Nothing to release."""
