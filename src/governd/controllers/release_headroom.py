"""What must be left before a release takes a weight step: error budget, money, and risk.

- **Error budget**: the analysis SLO has at least ``min_error_budget`` of its
  budget left in every group, and no page fires.
- **Risk**: the most of that budget the step can spend before its canary is
  stopped, were every canary call to fail: ``weight x 1 x detection time /
  (B x window)``, where detection time is the time for the canary to see the
  events that fail its error check at 100% errors, at the alias's measured
  call rate, plus a tick. It stays under ``max_budget_per_step``.
- **Cost**: the step's projected spend -- its share of the alias's calls at
  the canary's measured cost per call (stable's while the canary has none),
  over the step's pauses (an hour when they give no duration) -- fits the
  remaining USD budgets of the principals calling the alias, each budget
  charged the share of calls made under it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from governd.actions import within
from governd.config.releases import ReleaseConfig
from governd.ledger.releases.counts import Tally

#: The seconds a step's spend is projected over when its pauses give no duration.
DEFAULT_HORIZON_S = 3600.0


@dataclass(frozen=True, slots=True)
class Room:
    """One headroom check: whether there is room, why, and the figures."""

    name: str
    holds: bool
    why: str
    figures: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        """Plain data, for entries and status."""
        return {"check": self.name, "holds": self.holds, "why": self.why, **self.figures}


@dataclass(frozen=True, slots=True)
class SloStanding:
    """Where the analysis SLO stands: its budget and window, what is left, whether it pages."""

    budget: float
    window: float
    remaining: float
    paging: bool


@dataclass(frozen=True, slots=True)
class Remaining:
    """A USD budget's room: its node and what is left of it."""

    node: str
    name: str
    left: float


def error_budget(cfg: ReleaseConfig, slo: SloStanding | None) -> Room | None:
    """The SLO's budget left, and no page (None without an SLO)."""
    if slo is None:
        return None
    need = cfg.headroom.min_error_budget
    figures = {"remaining": slo.remaining, "needs": need, "paging": slo.paging}
    if slo.paging:
        return Room("error_budget", False, "the SLO pages", figures)
    if slo.remaining < need:
        return Room(
            "error_budget",
            False,
            f"{slo.remaining:.1%} of the error budget left, needs {need:.0%}",
            figures,
        )
    return Room("error_budget", True, f"{slo.remaining:.1%} of the error budget left", figures)


def risk(
    cfg: ReleaseConfig,
    weight: float,
    rate: float,
    budget: float,
    window: float,
    p0: float,
    tick_s: float,
) -> Room:
    """The error budget a step at ``weight`` could spend before a broken canary is stopped."""
    alpha = 1 - cfg.analysis.confidence
    failing = max(1, math.ceil(math.log(alpha) / math.log(p0)))  # events that fail it at 100%
    share = weight / 100
    detect = failing / (rate * share) + tick_s if rate > 0 and share > 0 else math.inf
    spend = 0.0 if rate == 0 or share == 0 else share * detect / (budget * window)
    limit = cfg.headroom.max_budget_per_step
    figures = {
        "weight": weight,
        "calls_per_s": rate,
        "detection_s": detect,
        "spend": spend,
        "limit": limit,
    }
    why = f"a broken canary at {weight:g}% would spend {spend:.2%} of the error budget before it is stopped"
    return Room("risk", spend <= limit, f"{why} (at most {limit:.0%})", figures)


def cost(
    cfg: ReleaseConfig,
    weight: float,
    rate: float,
    canary: Tally,
    stable: Tally,
    callers: Mapping[str, int],
    remaining: Sequence[Remaining],
) -> Room | None:
    """The step's projected canary spend against the budgets of those who call the alias."""
    if not cfg.headroom.cost:
        return None
    per_call = (
        canary.cost / canary.ok if canary.ok else (stable.cost / stable.ok if stable.ok else 0.0)
    )
    projected = per_call * rate * weight / 100 * horizon(cfg, weight)
    total = sum(callers.values())
    figures: dict[str, Any] = {"usd_per_call": per_call, "projected_usd": projected}
    for budget in remaining:
        calls = sum(n for who, n in callers.items() if within(who, budget.node))
        charge = projected * calls / total if total else 0.0
        if charge > budget.left:
            figures.update(budget=budget.name, left=budget.left, charge=charge)
            why = f"the step would spend ${charge:.4f} of {budget.name}, which has ${budget.left:.4f} left"
            return Room("cost", False, why, figures)
    return Room("cost", True, f"the step's projected ${projected:.4f} fits every budget", figures)


def horizon(cfg: ReleaseConfig, weight: float) -> float:
    """The seconds the canary serves at ``weight``: the pauses after that weight's step."""
    steps = cfg.steps
    start = next((i for i, s in enumerate(steps) if s.set_weight == weight), len(steps))
    total = 0.0
    for step in steps[start + 1 :]:
        if step.set_weight is not None:
            break
        if step.pause is not None and step.pause.duration is not None:
            total += step.pause.duration
    return total or DEFAULT_HORIZON_S
