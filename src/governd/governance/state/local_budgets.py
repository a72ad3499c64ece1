"""Budget counters in this process: the default ``BudgetState`` of a single replica."""

from __future__ import annotations

from collections import defaultdict

from governd.governance.budgets import BudgetKey, Claim, Stale


class _Slot:
    """One budget window's counters."""

    __slots__ = ("reserved", "spent")

    def __init__(self, spent: float = 0.0) -> None:
        self.spent = spent
        self.reserved = 0.0


class LocalState:
    """Counters in this process. Atomic because nothing in ``reserve`` awaits."""

    shared = False

    def __init__(self) -> None:
        # A window's counters start at zero when first touched.
        self._slots: defaultdict[tuple[BudgetKey, float], _Slot] = defaultdict(_Slot)
        self._generation = 0

    async def reserve(self, claims: list[Claim], generation: int) -> Claim | Stale | None:
        if generation != self._generation:
            return "stale"
        found = self._slots
        slots = [found[c.key, c.window] for c in claims]
        for c, slot in zip(claims, slots, strict=True):
            if slot.spent + slot.reserved + c.amount > c.limit:
                return c
        for c, slot in zip(claims, slots, strict=True):
            slot.reserved += c.amount
        return None

    async def settle(self, held: list[Claim], actual: list[float]) -> None:
        found = self._slots
        for c, used in zip(held, actual, strict=True):
            slot = found[c.key, c.window]
            slot.reserved = max(0.0, slot.reserved - c.amount)
            slot.spent += used

    async def usage(self, key: BudgetKey, window: float) -> tuple[float, float]:
        slot = self._slots[key, window]
        return slot.spent, slot.reserved

    async def usages(self, slots: list[tuple[BudgetKey, float]]) -> list[tuple[float, float]]:
        found = self._slots
        return [(s.spent, s.reserved) for s in map(found.__getitem__, slots)]

    async def generation(self) -> int:
        return self._generation

    async def bump(self) -> None:
        self._generation += 1

    async def preload(self, key: BudgetKey, window: float, spent: float) -> None:
        """Start a window at ``spent`` (rebuilt from the ledger after a restart)."""
        self._slots.setdefault((key, window), _Slot(spent))

    async def aclose(self) -> None:
        """Nothing to release."""
