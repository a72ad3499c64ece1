"""Hard budgets on every node of the principal tree, kept by reservation.

Before a call runs, ``Budgets.reserve`` claims an upper bound of its cost on
every budget on the principal's path (org, team, project, key), all or none;
afterwards ``Budgets.settle`` charges the real cost and releases the rest. A
budget is exceeded only if a call's real cost exceeds its bound, so spend stays
within the limit at any concurrency. The counters live behind ``BudgetState``:
in process by default (``state.local_budgets``), Redis when replicas share
budgets (``state.redis_budgets``).

A principal's budgets in their current windows are a ``BudgetPath``, built
once per period and change: with it come the state's handles of their
counters (``BudgetState.cells``), so a call reads, holds and settles them
without looking a budget up.

Which budgets exist is shared too: an operator's change is saved to the store,
then bumps a generation counter in the state. Every reservation names the
generation its limits come from, and one made with older limits is refused as
stale (atomically, in Redis's script), so a replica reloads from its
``BudgetSource`` and tries again: once ``Budgets.change`` returns, every
replica enforces the new limit.
"""

from __future__ import annotations

import math
import operator
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol
from zoneinfo import ZoneInfo

from governd.actions import Principal
from governd.clock import Clock
from governd.config import LadderConfig
from governd.errors import BudgetExceeded
from governd.governance.budget_values import (
    UNITS,
    BudgetKey,
    BudgetPath,
    BudgetUse,
    Cells,
    Cost,
    Fill,
    Hold,
    Limit,
    Stale,
    Unit,
)
from governd.governance.periods import Period, window

__all__ = [
    "UNITS",
    "BudgetKey",
    "BudgetPath",
    "BudgetUse",
    "Budgets",
    "Cells",
    "Cost",
    "Fill",
    "Hold",
    "Limit",
    "Stale",
    "Unit",
]
_MAX_PATHS = 100_000
#: Retry-After when held room, not spend, fills a budget: calls in flight settle within seconds.
RETRY_IN_FLIGHT_S = 1.0


class BudgetState(Protocol):
    """The counters: spent and reserved per budget and window, and the budgets' generation."""

    #: Whether other processes share it (then another replica may add a budget at any time).
    shared: bool

    def cells(self, slots: Sequence[tuple[BudgetKey, float]]) -> Cells:
        """Handles of the counters of each ``(budget, window start)``, for the calls below."""
        ...

    async def reserve(
        self, cells: Cells, amounts: Sequence[float], limits: Sequence[float], generation: int
    ) -> int | Stale | None:
        """Hold every amount, or none: the index of the first that does not fit, or ``"stale"``."""
        ...

    async def generation(self) -> int:
        """How many times the set of budgets has changed (0 when never, or forgotten)."""
        ...

    async def bump(self) -> None:
        """Say the set of budgets changed, so that every holder of older limits reloads."""
        ...

    async def settle(self, cells: Cells, held: Sequence[float], actual: Sequence[float]) -> None:
        """Release what was held and charge what was used, cell by cell."""
        ...

    async def usage(self, key: BudgetKey, window: float) -> tuple[float, float]:
        """``(spent, reserved)`` of a budget in a window."""
        ...

    async def usages(self, cells: Cells) -> list[tuple[float, float]]:
        """``(spent, reserved)`` of each cell, read together."""
        ...

    async def preload(self, key: BudgetKey, window: float, spent: float) -> None:
        """Start a window at ``spent`` (rebuilt from the ledger), unless it already has a value."""
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


class Budgets:
    """The budgets that exist, and reservations against them."""

    def __init__(
        self,
        state: BudgetState,
        tz: ZoneInfo,
        clock: Clock,
        source: BudgetSource | None = None,
        ladders: Mapping[str, LadderConfig] | None = None,
    ) -> None:
        self.state = state
        self._tz = tz
        self._clock = clock
        self._source = source
        self._ladders = ladders
        self._limits: dict[BudgetKey, Limit] = {}
        self._by_node: defaultdict[str, list[BudgetKey]] = defaultdict(list)
        self._generation = 0 if source is None else -1  # -1: never loaded from the source
        self._paths: dict[Principal, list[BudgetKey]] = {}
        self._plans: dict[Principal, BudgetPath] = {}
        # The current window of each period: recomputed when time leaves it, not per request.
        self._windows: dict[Period, tuple[float, float]] = {}

    def set(self, key: BudgetKey, limit: Limit) -> Limit | None:
        """Create or change a budget here only; returns the previous limit."""
        before = self._limits.get(key)
        if before is None:
            self._by_node[key.node].append(key)
            self._paths.clear()
        self._limits[key] = limit
        self._plans.clear()
        return before

    async def sync(self) -> None:
        """Reload from the source if another replica (or this one) changed the budgets."""
        if self._source is None:
            return
        generation = await self.state.generation()
        if generation == self._generation:
            return
        limits = await self._source.limits()
        new = [key for key in limits if key not in self._limits]
        self._limits = {}
        self._by_node.clear()
        for key, limit in limits.items():  # each is new: ``set`` clears the cached paths
            self.set(key, limit)
        await self.resume(new)
        self._generation = generation

    async def resume(self, keys: Iterable[BudgetKey]) -> None:
        """Start each budget's current window at the spend the ledger recorded in it.

        With Redis the first replica to start a window initialises it; later
        ones leave it alone (it already counts everything since).
        """
        if self._source is None:
            return
        for key in keys:
            start, _ = self.window(key)
            await self.state.preload(key, start, await self._source.spent_since(key, start))

    async def change(self, key: BudgetKey, limit: Limit) -> Limit | None:
        """An operator's change: saved, then live on every replica; returns the previous limit."""
        assert self._source is not None, "changes need a source to save them"
        await self.sync()
        before = self._limits.get(key)
        await self._source.save(key, limit)
        await self.state.bump()
        await self.sync()
        return before

    def limit(self, key: BudgetKey) -> Limit | None:
        """The limit of a budget, if it exists."""
        return self._limits.get(key)

    def all(self) -> list[BudgetKey]:
        """Every budget."""
        return list(self._limits)

    def on_path(self, principal: Principal) -> list[BudgetKey]:
        """Budgets on the principal's path, from the org down to its key."""
        found = self._paths.get(principal)
        if found is None:
            if len(self._paths) >= _MAX_PATHS:
                self._paths.clear()
            found = [k for node in nodes_of(principal) for k in self._by_node.get(node, ())]
            self._paths[principal] = found
        return found

    def window(self, key: BudgetKey, ts: float | None = None) -> tuple[float, float]:
        """The ``[start, end)`` of a budget's period at ``ts`` (default: now)."""
        if ts is not None:
            return window(key.period, ts, self._tz)
        return self._window(key.period, self._clock.now())

    def _window(self, period: Period, now: float) -> tuple[float, float]:
        found = self._windows.get(period)
        if found is None or not found[0] <= now < found[1]:
            found = self._windows[period] = window(period, now, self._tz)
        return found

    def path(self, principal: Principal, now: float | None = None) -> BudgetPath:
        """The principal's budgets in their windows current at ``now`` (default: now)."""
        now = self._clock.now() if now is None else now
        found = self._plans.get(principal)
        if found is None or not found.since <= now < found.until:
            if len(self._plans) >= _MAX_PATHS:
                self._plans.clear()
            found = self._plans[principal] = self._path_of(principal, now)
        return found

    def _path_of(self, principal: Principal, now: float) -> BudgetPath:
        keys = tuple(self.on_path(principal))
        spans = [self._window(key.period, now) for key in keys]
        limits = tuple(self._limits[key] for key in keys)
        windows = tuple(start for start, _ in spans)
        steps = tuple(self._step(principal, k, lim) for k, lim in zip(keys, limits, strict=True))
        return BudgetPath(
            principal=principal,
            keys=keys,
            limits=limits,
            windows=windows,
            units=tuple(UNITS.index(key.unit) for key in keys),
            cells=self.state.cells(list(zip(keys, windows, strict=True))),
            since=max(windows, default=float("-inf")),
            until=min((end for _, end in spans), default=float("inf")),
            caps=[limit.limit for limit in limits],
            softs=tuple(math.inf if lim.soft is None else lim.soft for lim in limits),
            steps=steps,
            stepped=any(step != math.inf for step in steps),
            smallest=tuple(  # type: ignore[arg-type]
                min(
                    (lim.limit for k, lim in zip(keys, limits, strict=True) if k.unit == u),
                    default=math.inf,
                )
                for u in UNITS
            ),
        )

    def _step(self, principal: Principal, key: BudgetKey, limit: Limit) -> float:
        """The share of a budget at which its node's ladder first acts (0 when not told: always)."""
        if self._ladders is None:
            return 0.0
        ladder = self._ladders.get(key.node)
        if (
            ladder is None
            and principal.key_id
            and key.node == f"{principal.path}/{principal.key_id}"
        ):
            ladder = self._ladders.get(principal.path)  # a key's budgets step as its owner's
        if ladder is None:
            return math.inf
        lower = math.inf if ladder.lower_priority_at is None else ladder.lower_priority_at
        soft = limit.soft if ladder.degrade and limit.soft is not None else math.inf
        return min(lower, soft)

    async def usage(self, principal: Principal) -> list[BudgetUse]:
        """How full each budget on the principal's path is in its current window (read in one go)."""
        return (await self.fill(self.path(principal))).uses()

    async def fill(self, path: BudgetPath) -> Fill:
        """How full each budget of ``path`` is (read in one go)."""
        if not path.keys:
            return Fill(path, [], [], 0.0, False, False)
        counts = await self.state.usages(path.cells)
        caps = path.caps
        fractions = [(s + r) / c if c else 1.0 for (s, r), c in zip(counts, caps, strict=True)]
        return Fill(
            path,
            counts,
            fractions,
            max(fractions),
            any(map(operator.ge, fractions, path.softs)),
            any(map(operator.ge, fractions, path.steps)),
        )

    async def reserve(self, principal: Principal, bound: Cost) -> Hold:
        """Hold ``bound`` on every budget of the path; ``BudgetExceeded`` naming the first that cannot."""
        return await self.reserve_on(self.path(principal), bound)

    async def reserve_on(self, path: BudgetPath, bound: Cost) -> Hold:
        """``reserve`` on a path already at hand."""
        while True:
            # Even no budgets: a path without them learns of new ones (a stale generation).
            amounts = path.amounts(bound)
            refused = await self.state.reserve(path.cells, amounts, path.caps, self._generation)
            if refused is None:
                return Hold(path, amounts)
            if refused != "stale":
                raise await self._exceeded(path, refused, amounts[refused])
            await self.sync()
            path = self.path(path.principal)

    async def top_up(self, hold: Hold, extra: Cost) -> None:
        """Raise a live hold by ``extra`` on each of its budgets; ``BudgetExceeded`` if one is full.

        A hold is the handle of a reservation until it is settled: it grows here,
        against the budgets' limits as they are now.
        """
        path = hold.path
        more = path.amounts(extra)
        while True:
            limits = [
                self._limits[key].limit if key in self._limits else limit.limit
                for key, limit in zip(path.keys, path.limits, strict=True)
            ]
            refused = await self.state.reserve(path.cells, more, limits, self._generation)
            if refused is None:
                hold.amounts = [a + m for a, m in zip(hold.amounts, more, strict=True)]
                return
            if refused != "stale":
                raise await self._exceeded(path, refused, more[refused], limits[refused])
            await self.sync()

    async def settle(self, hold: Hold, actual: Cost) -> None:
        """Charge the real cost and release the rest of the hold (once)."""
        if hold.settled or not hold.amounts:
            hold.settled = True
            return
        hold.settled = True
        await self.state.settle(hold.path.cells, hold.amounts, hold.path.amounts(actual))

    async def _exceeded(
        self, path: BudgetPath, index: int, held: float, limit: float | None = None
    ) -> BudgetExceeded:
        key, start = path.keys[index], path.windows[index]
        limit = path.limits[index].limit if limit is None else limit
        spent, reserved = await self.state.usage(key, start)
        now = self._clock.now()
        _, end = self._window(key.period, now)
        unit = key.unit
        # Calls in flight give back what they hold unused within seconds: room may come then.
        frees = spent + held <= limit + 1e-9 and reserved > 0
        retry = RETRY_IN_FLIGHT_S if frees else max(1.0, end - now)
        if not path.principal.contains(key.node):  # a budget above the caller: not its figures
            return BudgetExceeded(
                f"budget {key.name} (shared above {path.principal.path}) is exhausted; this "
                f"request may cost up to {amount(unit, held)}",
                retry_after=retry,
                budget=key.name,
            )
        return BudgetExceeded(
            f"budget {key.name} exceeded: limit {amount(unit, limit)}, spent "
            f"{amount(unit, spent)}, reserved {amount(unit, reserved)}; this request may cost up "
            f"to {amount(unit, held)}",
            retry_after=retry,
            budget=key.name,
        )


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
