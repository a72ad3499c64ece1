"""Burn rates and the multiwindow, multi-burn-rate alert rules, as pure functions.

With error budget B (1 - objective), a window's burn rate is its share of bad
events divided by B: 1 spends the budget exactly over the SLO's window. A rule
(SRE Workbook, ch. 5) fires while both its long and its short window burn
faster than its factor; a severity fires while any of its rules does. The
short window makes an alert resolve soon after the burn stops.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from governd.config.slos import BurnPair, SloConfig

_EPSILON = 1e-9
#: ``(good, bad)`` over a window, by the window's length in seconds.
WindowCounts = Callable[[float], tuple[int, int]]


@dataclass(frozen=True, slots=True)
class Rule:
    """One alert rule: fires while both windows burn faster than ``factor``."""

    severity: str
    long: float
    short: float
    factor: float


@dataclass(frozen=True, slots=True)
class WindowBurn:
    """A window's counts and burn rate: the figures an alert transition records."""

    window: float
    good: int
    bad: int
    burn: float

    def as_dict(self) -> dict[str, float]:
        """Plain data, for entries, webhooks and the admin API."""
        return {
            "window_s": self.window,
            "good": self.good,
            "bad": self.bad,
            "burn": round(self.burn, 6),
        }


def rules(slo: SloConfig) -> list[Rule]:
    """The SLO's alert rules, each factor derived from its budget share and the SLO's window."""
    return [_rule(pair, slo.window) for pair in slo.alerts]


def _rule(pair: BurnPair, window: float) -> Rule:
    return Rule(pair.severity, pair.long, pair.short_s, pair.factor(window))


def burn(good: int, bad: int, budget: float) -> float:
    """The burn rate of a window's counts (0 when it counted nothing)."""
    total = good + bad
    return bad / total / budget if total else 0.0


def window_burn(counts: WindowCounts, window: float, budget: float) -> WindowBurn:
    """A window's counts and burn rate."""
    good, bad = counts(window)
    return WindowBurn(window, good, bad, burn(good, bad, budget))


def fires(rule: Rule, counts: WindowCounts, budget: float) -> bool:
    """Whether the rule holds: both its windows burn faster than its factor.

    A burn within a relative 1e-9 of the factor is not above it: 30 bad calls in
    100 against a 0.1 budget burn at exactly 3, whatever floating point says.
    """
    above = rule.factor * (1 + _EPSILON)
    long_good, long_bad = counts(rule.long)
    if burn(long_good, long_bad, budget) <= above:
        return False
    short_good, short_bad = counts(rule.short)
    return burn(short_good, short_bad, budget) > above


def remaining(counts: WindowCounts, window: float, budget: float) -> float:
    """The share of the error budget left over the SLO's window (negative once overspent)."""
    good, bad = counts(window)
    return 1.0 - burn(good, bad, budget)
