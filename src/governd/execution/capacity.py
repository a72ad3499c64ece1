"""Admission capacity of a model alias, with a priority queue in front of it.

When an alias's deployments declare ``max_in_flight``, at most their sum of
calls run at once; the rest wait, highest priority first and first come first
served within a class. A freed slot goes straight to the next waiter. A
``sheddable`` request whose predicted wait (queue depth times the recent time
a slot is held, over the capacity) exceeds ``shed_after_s`` is refused at once
with 503 and a ``Retry-After``; one that does wait gives up after that long.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools

from governd.actions import PRIORITIES
from governd.clock import Clock
from governd.errors import Overloaded

RANK: dict[str, int] = {name: i for i, name in enumerate(PRIORITIES)}
_SMOOTHING = 0.2


class CapacityGate:
    """``capacity`` slots and a priority queue of waiters."""

    def __init__(self, name: str, capacity: int, shed_after_s: float, clock: Clock) -> None:
        self.name = name
        self.capacity = capacity
        self._shed_after = shed_after_s
        self._clock = clock
        self.in_use = 0
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._hold_s = 0.0

    @property
    def waiting(self) -> int:
        """Requests queued now."""
        return sum(1 for *_, f in self._waiters if not f.done())

    async def acquire(self, priority: str) -> float:
        """Take a slot, waiting by priority; returns the seconds waited."""
        if self.in_use < self.capacity and not self.waiting:
            self.in_use += 1
            return 0.0
        shed = priority == "sheddable"
        if shed:
            predicted = (self.waiting + 1) * self._hold_s / self.capacity
            if predicted > self._shed_after:
                raise Overloaded(
                    f"model {self.name!r} is at capacity; a sheddable request would wait ~{predicted:.1f} s",
                    retry_after=predicted,
                )
        started = self._clock.monotonic()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (RANK.get(priority, 1), next(self._seq), future))
        try:
            if shed:
                await asyncio.wait_for(future, self._shed_after)
            else:
                await future
        except TimeoutError:
            raise Overloaded(
                f"model {self.name!r} stayed at capacity for {self._shed_after:.1f} s",
                retry_after=self._shed_after,
            ) from None
        except BaseException:
            if future.done() and not future.cancelled():
                self.release(0.0)  # the slot was handed over as we were cancelled
            else:
                future.cancel()
            raise
        return self._clock.monotonic() - started

    def release(self, held_s: float) -> None:
        """Free a slot held for ``held_s`` seconds: hand it to the next waiter, if any."""
        self._hold_s += _SMOOTHING * (held_s - self._hold_s) if self._hold_s else held_s
        while self._waiters:
            _, _, future = heapq.heappop(self._waiters)
            if not future.done():
                future.set_result(None)
                return
        self.in_use -= 1
