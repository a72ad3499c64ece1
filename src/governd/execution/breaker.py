"""A circuit breaker per deployment: stop sending to what keeps failing, probe it later."""

from __future__ import annotations

from typing import Literal

from governd.clock import Clock

State = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    """Opens after ``failures`` consecutive failures; after ``cooldown_s`` lets one probe through."""

    def __init__(self, failures: int, cooldown_s: float, clock: Clock) -> None:
        self._threshold = failures
        self._cooldown = cooldown_s
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False

    @property
    def state(self) -> State:
        """``closed`` (normal), ``open`` (refusing) or ``half_open`` (one probe allowed)."""
        if self._opened_at is None:
            return "closed"
        if self._clock.monotonic() - self._opened_at >= self._cooldown:
            return "half_open"
        return "open"

    def available(self) -> bool:
        """Whether a call may go to this deployment now (a half-open breaker takes one probe)."""
        state = self.state
        return state == "closed" or (state == "half_open" and not self._probing)

    def begin(self) -> None:
        """A call is sent; if the breaker is half-open, it is the probe."""
        if self._opened_at is not None:
            self._probing = True

    def success(self) -> None:
        """A call succeeded: close the breaker."""
        self._failures = 0
        self._opened_at = None
        self._probing = False

    def failure(self) -> None:
        """A call failed: count it, and open (again) at the threshold or after a failed probe."""
        self._failures += 1
        if self._probing or self._failures >= self._threshold:
            self._opened_at = self._clock.monotonic()
        self._probing = False
