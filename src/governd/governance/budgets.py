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

import logging
import math
import operator
from collections import defaultdict, deque
from collections.abc import Iterable, Mapping
from zoneinfo import ZoneInfo

from governd.actions import Principal
from governd.clock import Clock
from governd.config import LadderConfig
from governd.errors import BudgetExceeded, StateUnavailable
from governd.governance.budget_state import BudgetSource, BudgetState
from governd.governance.budget_values import (
    HOLD_LEASE_S,
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
    Unseeded,
    amount,
    nodes_of,
)
from governd.governance.periods import Period, window

__all__ = [
    "UNITS",
    "BudgetKey",
    "BudgetPath",
    "BudgetSource",
    "BudgetState",
    "BudgetUse",
    "Budgets",
    "Cells",
    "Cost",
    "Fill",
    "Hold",
    "Limit",
    "Stale",
    "Unit",
    "Unseeded",
    "amount",
    "nodes_of",
]
log = logging.getLogger("governd.budgets")
_MAX_PATHS = 100_000
#: Retry-After when held room, not spend, fills a budget: calls in flight settle within seconds.
RETRY_IN_FLIGHT_S = 1.0


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
        #: Settlements not yet taken by the state, oldest first (``settle``).
        self._owed: deque[tuple[Hold, list[float]]] = deque()
        self._paying = False

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

    async def overage(self, key: BudgetKey) -> float:
        """What upstreams billed past calls' bounds in the budget's current window (in its spend)."""
        if self._source is None:
            return 0.0
        start, _ = self.window(key)
        return await self._source.overage_since(key, start)

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

    async def reserve(
        self,
        principal: Principal,
        bound: Cost,
        lease_s: float = HOLD_LEASE_S,
        name: str | None = None,
    ) -> Hold:
        """Hold ``bound`` on every budget of the path; ``BudgetExceeded`` naming the first that cannot.

        ``lease_s``: how long the hold outlives this process if it dies holding it.
        """
        return await self.reserve_on(self.path(principal), bound, lease_s, name)

    async def reserve_on(
        self,
        path: BudgetPath,
        bound: Cost,
        lease_s: float = HOLD_LEASE_S,
        name: str | None = None,
    ) -> Hold:
        """``reserve`` on a path at hand; a ``name``d hold (a job's) the state has already is kept."""
        ticket = self.state.ticket() if name is None else name
        if self._owed:  # charges made while the state was down count before anything new
            await self._pay()
        while True:
            # Even no budgets: a path without them learns of new ones (a stale generation).
            amounts = path.amounts(bound)
            refused = await self.state.reserve(
                path.cells, amounts, path.caps, self._generation, ticket, lease_s, name is not None
            )
            if refused is None:
                return Hold(path, amounts, ticket)
            if isinstance(refused, Unseeded):
                await self._seed(path, refused.index)
            elif refused == "stale":
                await self.sync()
                path = self.path(path.principal)
            else:
                raise await self._exceeded(path, refused, amounts[refused])

    async def _seed(self, path: BudgetPath, index: int) -> None:
        """Start a window the state forgot (or never had) at what the ledger recorded in it."""
        key, start = path.keys[index], path.windows[index]
        spent = 0.0 if self._source is None else await self._source.spent_since(key, start)
        await self.state.preload(key, start, spent)

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
            refused = await self.state.reserve(
                path.cells, more, limits, self._generation, hold.ticket, HOLD_LEASE_S
            )
            if refused is None:
                hold.amounts = [a + m for a, m in zip(hold.amounts, more, strict=True)]
                return
            if isinstance(refused, Unseeded):
                await self._seed(path, refused.index)
            elif refused == "stale":
                await self.sync()
            else:
                raise await self._exceeded(path, refused, more[refused], limits[refused])

    async def settle(self, hold: Hold, actual: Cost) -> None:
        """Charge the real cost and release the rest of the hold (once).

        A settlement the state cannot take now (Redis down) is owed: it is paid,
        in order, before the next one, so no charge is lost; its hold lapses
        with its lease meanwhile. Paying one twice (the first try did reach
        Redis) charges twice: the safe side of a hard limit.
        """
        if hold.settled or not hold.amounts:
            hold.settled = True
            return
        hold.settled = True
        self._owed.append((hold, hold.path.amounts(actual)))
        await self._pay()

    async def _pay(self) -> None:
        """Settle what is owed, oldest first, until the state refuses."""
        if self._paying:  # the payer in progress pays every one queued
            return
        self._paying = True
        try:
            while self._owed:
                owed, charge = self._owed[0]
                await self.state.settle(owed.path.cells, owed.ticket, owed.amounts, charge)
                self._owed.popleft()
        except StateUnavailable as exc:
            log.warning(
                "%d budget settlement(s) owed until state is back: %s", len(self._owed), exc
            )
        finally:
            self._paying = False

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
