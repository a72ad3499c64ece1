"""The values budgets are made of: which budget, its limit, a claim on it, a cost, a hold."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, NamedTuple

from governd.config import BudgetUnit
from governd.governance.periods import Period

Unit = BudgetUnit


@dataclass(frozen=True, slots=True)
class BudgetKey:
    """Which budget: a node of the tree (``acme/team`` or ``acme/team/key_x``), a unit and a period."""

    node: str
    unit: Unit
    period: Period
    # Hashed on every reservation and settlement of every budget of a path: once is enough.
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash((self.node, self.unit, self.period)))

    def __hash__(self) -> int:
        return self._hash

    @property
    def name(self) -> str:
        """How errors and the CLI name the budget."""
        return f"{self.node} {self.unit}/{self.period}"


@dataclass(frozen=True, slots=True)
class Limit:
    """A budget's hard limit and optional soft threshold (a fraction of the limit)."""

    limit: float
    soft: float | None = None


class BudgetUse(NamedTuple):
    """How full one budget is now: its limit, what was spent and what is held in its window.

    ``fraction`` is spent and held as a share of the limit (1.0 for a zero
    limit): the ladder and the policies read it for every budget of a path.
    """

    key: BudgetKey
    limit: Limit
    spent: float
    reserved: float
    fraction: float

    @classmethod
    def of(cls, key: BudgetKey, limit: Limit, spent: float, reserved: float) -> BudgetUse:
        """A budget's use, its fraction computed."""
        fraction = (spent + reserved) / limit.limit if limit.limit else 1.0
        return cls(key, limit, spent, reserved, fraction)


class Claim(NamedTuple):
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

    def amounts(self) -> tuple[float, float, float]:
        """The amount in each of ``UNITS``, in their order."""
        return (self.usd, float(self.tokens), self.device_hours)


#: The units of a ``Cost``, in the order of ``Cost.amounts``.
UNITS: tuple[Unit, ...] = ("usd", "tokens", "device_hours")


#: What ``BudgetState.reserve`` says when the limits it was given are older than the state's.
Stale = Literal["stale"]


@dataclass(slots=True)
class Hold:
    """A reservation: what was claimed, to be settled exactly once.

    ``units`` says which of ``Cost.amounts`` each claim is charged in.
    """

    claims: list[Claim]
    units: tuple[int, ...]
    settled: bool = False
