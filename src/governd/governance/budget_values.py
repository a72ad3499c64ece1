"""The values budgets are made of: which budget, its limit, how full it is, a cost."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from governd.actions import Principal
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


class Cost(NamedTuple):
    """An amount in every unit: a bound before the action, the real cost after.

    A tuple: two are built for every governed call, and a frozen dataclass
    costs a call per field to build.
    """

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

#: How long a call's hold outlives a replica that died holding it (then it is freed).
HOLD_LEASE_S = 900.0


@dataclass(frozen=True, slots=True)
class Unseeded:
    """What ``BudgetState.reserve`` says of a window whose spend was never loaded from the ledger.

    A shared state that lost its counters (Redis restarted without persistence)
    forgets every window: each is seeded from the ledger again before it holds.
    """

    index: int


#: A state's handles of some budgets' counters in their windows (``BudgetState.cells``): opaque
#: to all but the state that made them, so that a call finds its counters without a lookup.
Cells = Sequence[Any]


@dataclass(frozen=True, slots=True)
class BudgetPath:
    """A principal's budgets in their windows current from ``since`` to ``until``.

    Built once per period and budget change (``Budgets.path``), with the
    state's handles of the budgets' counters, so that a call reads, holds and
    settles them without looking a budget up.
    """

    principal: Principal
    keys: tuple[BudgetKey, ...]
    limits: tuple[Limit, ...]
    #: Each budget's window start: what the state keys its counters by.
    windows: tuple[float, ...]
    #: Which of ``Cost.amounts`` each budget is counted in.
    units: tuple[int, ...]
    cells: Cells
    since: float
    until: float
    #: Each budget's limit, as a reservation checks it.
    caps: list[float]
    #: Each budget's soft threshold (inf: none).
    softs: tuple[float, ...]
    #: The share of each budget at which its node's ladder first acts (inf: never).
    steps: tuple[float, ...]
    #: Whether the ladder may act on one of them (then a call reads them).
    stepped: bool
    #: The smallest limit on the path in each of ``UNITS`` (inf: none): what ``tight`` reads.
    smallest: tuple[float, float, float]

    def amounts(self, cost: Cost) -> list[float]:
        """``cost`` in each budget's unit, in the order of ``keys``."""
        return list(map(cost.amounts().__getitem__, self.units))

    def tight(self, bound: Cost, calls: int) -> bool:
        """Whether a budget on the path affords fewer than ``calls`` calls of ``bound``."""
        usd, tokens, hours = self.smallest
        return (
            bound.usd * calls > usd
            or bound.tokens * calls > tokens
            or bound.device_hours * calls > hours
        )


class Fill(NamedTuple):
    """How full each budget of a path is, read once for a call.

    ``used`` is the fullest budget's share (0 without budgets) and
    ``over_soft`` whether one is past its soft threshold: what policies see as
    ``budget``; ``at_step`` whether one is where its node's ladder acts.
    ``uses`` spells each budget out, for the ladder.
    """

    path: BudgetPath
    counts: list[tuple[float, float]]
    fractions: list[float]
    used: float
    over_soft: bool
    at_step: bool

    def uses(self) -> list[BudgetUse]:
        """Each budget's use."""
        return [
            BudgetUse(key, limit, spent, reserved, fraction)
            for key, limit, (spent, reserved), fraction in zip(
                self.path.keys, self.path.limits, self.counts, self.fractions, strict=True
            )
        ]


@dataclass(slots=True)
class Hold:
    """A reservation: what is held on each budget of a path, to be settled exactly once."""

    path: BudgetPath
    amounts: list[float]
    #: The state's name for it (a shared state frees it by name when its lease runs out).
    ticket: str = ""
    settled: bool = False


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
