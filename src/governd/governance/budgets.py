"""Hard budgets on every node of the principal tree, kept by reservation.

Before a call runs, ``Budgets.reserve`` claims an upper bound of its cost on
every budget on the principal's path (org, team, project, key), all or none;
afterwards ``Budgets.settle`` charges the real cost and releases the rest. A
budget is exceeded only if a call's real cost exceeds its bound, so spend stays
within the limit at any concurrency. The counters live behind ``BudgetState``:
in process by default, Redis when replicas share budgets.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Protocol
from zoneinfo import ZoneInfo

from governd.actions import Principal
from governd.clock import Clock
from governd.config import BudgetUnit
from governd.errors import BudgetExceeded
from governd.governance.periods import Period, window

Unit = BudgetUnit


@dataclass(frozen=True, slots=True)
class BudgetKey:
    """Which budget: a node of the tree (``acme/team`` or ``acme/team/key_x``), a unit and a period."""

    node: str
    unit: Unit
    period: Period

    @property
    def name(self) -> str:
        """How errors and the CLI name the budget."""
        return f"{self.node} {self.unit}/{self.period}"


@dataclass(frozen=True, slots=True)
class Limit:
    """A budget's hard limit and optional soft threshold (a fraction of the limit)."""

    limit: float
    soft: float | None = None


@dataclass(frozen=True, slots=True)
class Claim:
    """An amount held (or charged) against one budget in one period window."""

    key: BudgetKey
    window: float
    amount: float
    limit: float


@dataclass(frozen=True, slots=True)
class Cost:
    """An amount in every unit: a bound before the action, the real cost after."""

    usd: float
    tokens: int
    device_hours: float = 0.0

    def of(self, unit: Unit) -> float:
        """The amount in ``unit``."""
        if unit == "usd":
            return self.usd
        return float(self.tokens) if unit == "tokens" else self.device_hours


class BudgetState(Protocol):
    """The counters: spent and reserved per budget and window."""

    async def reserve(self, claims: list[Claim]) -> Claim | None:
        """Hold every claim, or none: return the first claim that does not fit."""
        ...

    async def settle(self, held: list[Claim], actual: list[float]) -> None:
        """Release what was held and charge what was used, claim by claim."""
        ...

    async def usage(self, key: BudgetKey, window: float) -> tuple[float, float]:
        """``(spent, reserved)`` of a budget in a window."""
        ...

    async def preload(self, key: BudgetKey, window: float, spent: float) -> None:
        """Start a window at ``spent`` (rebuilt from the ledger), unless it already has a value."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


class LocalState:
    """Counters in this process. Atomic because nothing in ``reserve`` awaits."""

    def __init__(self) -> None:
        self._spent: defaultdict[tuple[BudgetKey, float], float] = defaultdict(float)
        self._reserved: defaultdict[tuple[BudgetKey, float], float] = defaultdict(float)

    async def reserve(self, claims: list[Claim]) -> Claim | None:
        for c in claims:
            slot = (c.key, c.window)
            if self._spent[slot] + self._reserved[slot] + c.amount > c.limit:
                return c
        for c in claims:
            self._reserved[(c.key, c.window)] += c.amount
        return None

    async def settle(self, held: list[Claim], actual: list[float]) -> None:
        for c, used in zip(held, actual, strict=True):
            slot = (c.key, c.window)
            self._reserved[slot] = max(0.0, self._reserved[slot] - c.amount)
            self._spent[slot] += used

    async def usage(self, key: BudgetKey, window: float) -> tuple[float, float]:
        return self._spent[(key, window)], self._reserved[(key, window)]

    async def preload(self, key: BudgetKey, window: float, spent: float) -> None:
        """Start a window at ``spent`` (rebuilt from the ledger after a restart)."""
        self._spent.setdefault((key, window), spent)

    async def aclose(self) -> None:
        """Nothing to release."""


@dataclass(slots=True)
class Hold:
    """A reservation: what was claimed, to be settled exactly once."""

    claims: list[Claim]
    settled: bool = False


class Budgets:
    """The budgets that exist, and reservations against them."""

    def __init__(self, state: BudgetState, tz: ZoneInfo, clock: Clock) -> None:
        self.state = state
        self._tz = tz
        self._clock = clock
        self._limits: dict[BudgetKey, Limit] = {}
        self._by_node: defaultdict[str, list[BudgetKey]] = defaultdict(list)

    def set(self, key: BudgetKey, limit: Limit) -> Limit | None:
        """Create or change a budget; returns the previous limit."""
        before = self._limits.get(key)
        if before is None:
            self._by_node[key.node].append(key)
        self._limits[key] = limit
        return before

    def limit(self, key: BudgetKey) -> Limit | None:
        """The limit of a budget, if it exists."""
        return self._limits.get(key)

    def all(self) -> list[BudgetKey]:
        """Every budget."""
        return list(self._limits)

    def on_path(self, principal: Principal) -> list[BudgetKey]:
        """Budgets on the principal's path, from the org down to its key."""
        return [k for node in nodes_of(principal) for k in self._by_node.get(node, ())]

    def window(self, key: BudgetKey, ts: float | None = None) -> tuple[float, float]:
        """The current ``[start, end)`` of a budget's period."""
        return window(key.period, self._clock.now() if ts is None else ts, self._tz)

    async def reserve(self, principal: Principal, bound: Cost) -> Hold:
        """Hold ``bound`` on every budget of the path; ``BudgetExceeded`` naming the first that cannot."""
        keys = self.on_path(principal)
        if not keys:
            return Hold([])
        now = self._clock.now()
        claims = []
        for key in keys:
            start, _ = window(key.period, now, self._tz)
            claims.append(Claim(key, start, bound.of(key.unit), self._limits[key].limit))
        refused = await self.state.reserve(claims)
        if refused is not None:
            raise await self._exceeded(refused, now)
        return Hold(claims)

    async def settle(self, hold: Hold, actual: Cost) -> None:
        """Charge the real cost and release the rest of the hold (once)."""
        if hold.settled or not hold.claims:
            hold.settled = True
            return
        hold.settled = True
        await self.state.settle(hold.claims, [actual.of(c.key.unit) for c in hold.claims])

    async def _exceeded(self, claim: Claim, now: float) -> BudgetExceeded:
        spent, reserved = await self.state.usage(claim.key, claim.window)
        _, end = window(claim.key.period, now, self._tz)
        unit = claim.key.unit
        err = BudgetExceeded(
            f"budget {claim.key.name} exceeded: limit {amount(unit, claim.limit)}, spent "
            f"{amount(unit, spent)}, reserved {amount(unit, reserved)}; this request may cost up "
            f"to {amount(unit, claim.amount)}",
            retry_after=max(1.0, end - now),
        )
        err.budget = claim.key.name
        return err


def nodes_of(principal: Principal) -> list[str]:
    """The node paths from the org down to the principal's key, each a budget holder."""
    parts = [p for p in (principal.org, principal.team, principal.project) if p]
    out = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    if principal.key_id:
        out.append(f"{out[-1]}/{principal.key_id}")
    return out


def amount(unit: Unit, value: float) -> str:
    """``$1.2345``, ``1,234 tokens`` or ``1.25 device-hours``."""
    if unit == "usd":
        return f"${value:,.4f}"
    return f"{value:,.0f} tokens" if unit == "tokens" else f"{value:,.4f} device-hours"
