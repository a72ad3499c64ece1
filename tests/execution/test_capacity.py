"""The capacity gate: priority order, FIFO within a class, handoff, shedding, cancellation."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from governd.clock import ManualClock
from governd.errors import Overloaded
from governd.execution.capacity import CapacityGate


async def until(cond: Callable[[], bool]) -> None:
    """Let other tasks run until ``cond`` holds (a yield to the loop, not a timed sleep)."""
    while not cond():  # noqa: ASYNC110
        await asyncio.sleep(0)


async def test_waiters_are_served_by_priority_then_arrival() -> None:
    gate = CapacityGate("m", 1, shed_after_s=5, clock=ManualClock())
    await gate.acquire("standard")
    order: list[str] = []

    async def wait(name: str, priority: str) -> None:
        await gate.acquire(priority)
        order.append(name)
        gate.release(0.1)

    tasks = [
        asyncio.create_task(wait(n, p))
        for n, p in [
            ("b1", "batch"),
            ("s1", "standard"),
            ("c1", "critical"),
            ("s2", "standard"),
            ("c2", "critical"),
        ]
    ]
    await until(lambda: gate.waiting == 5)
    gate.release(0.1)
    await asyncio.gather(*tasks)
    assert order == ["c1", "c2", "s1", "s2", "b1"]
    assert gate.in_use == 0


async def test_capacity_is_never_exceeded() -> None:
    gate = CapacityGate("m", 3, shed_after_s=5, clock=ManualClock())
    peak = 0

    async def call() -> None:
        nonlocal peak
        await gate.acquire("standard")
        peak = max(peak, gate.in_use)
        await asyncio.sleep(0)
        gate.release(0.01)

    await asyncio.gather(*(call() for _ in range(50)))
    assert peak == 3 and gate.in_use == 0


async def test_sheddable_is_refused_when_its_predicted_wait_is_too_long() -> None:
    gate = CapacityGate("m", 1, shed_after_s=1.0, clock=ManualClock())
    await gate.acquire("standard")
    gate.release(2.0)  # slots are held ~2 s
    await gate.acquire("standard")
    with pytest.raises(Overloaded) as info:
        await gate.acquire("sheddable")
    assert info.value.retry_after == pytest.approx(2.0) and info.value.status == 503


async def test_sheddable_that_waits_too_long_gives_up_and_leaves_the_queue() -> None:
    gate = CapacityGate("m", 1, shed_after_s=0.01, clock=ManualClock())
    await gate.acquire("standard")
    with pytest.raises(Overloaded):
        await gate.acquire("sheddable")
    assert gate.waiting == 0
    gate.release(0.0)
    assert gate.in_use == 0


async def test_a_cancelled_waiter_does_not_leak_the_slot() -> None:
    gate = CapacityGate("m", 1, shed_after_s=5, clock=ManualClock())
    await gate.acquire("standard")
    waiter = asyncio.create_task(gate.acquire("standard"))
    await until(lambda: gate.waiting == 1)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    gate.release(0.0)
    assert gate.in_use == 0
    await gate.acquire("batch")
    assert gate.in_use == 1
