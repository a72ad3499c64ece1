"""The circuit breaker, on a manual clock."""

from __future__ import annotations

from governd.clock import ManualClock
from governd.execution.breaker import CircuitBreaker


def test_opens_after_threshold_then_probes_once_then_closes() -> None:
    clock = ManualClock()
    b = CircuitBreaker(failures=3, cooldown_s=10, clock=clock)
    for _ in range(2):
        b.failure()
    assert b.state == "closed" and b.available()
    b.failure()
    assert b.state == "open" and not b.available()
    clock.advance(10)
    assert b.state == "half_open" and b.available()
    b.begin()
    assert not b.available()  # only one probe at a time
    b.success()
    assert b.state == "closed" and b.available()


def test_failed_probe_reopens_for_a_full_cooldown() -> None:
    clock = ManualClock()
    b = CircuitBreaker(failures=1, cooldown_s=5, clock=clock)
    b.failure()
    clock.advance(5)
    b.begin()
    b.failure()
    assert b.state == "open"
    clock.advance(4.9)
    assert b.state == "open"
    clock.advance(0.1)
    assert b.state == "half_open"


def test_success_resets_the_count() -> None:
    b = CircuitBreaker(failures=2, cooldown_s=5, clock=ManualClock())
    b.failure()
    b.success()
    b.failure()
    assert b.state == "closed"
