"""Bets: the hold of a call sized from recorded outcomes, raised as its reply grows, capped at the end.

Where a budget on the path affords fewer than ``tight_calls`` calls at their
worst case, a chat or completion call holds the ``quantile`` of the output
tokens recorded for its principal and model (``sizing.OutputSizes``) rather
than its output limit, and is *metered*: streamed from the upstream and
counted as it flows, its hold raised in ``step_tokens`` steps (``top_up``);
what no budget has room for is not forwarded and the reply ends there.
When even the bet does not fit, the call's output limit is *capped* to what
the budgets' room affords, rather than refused, if that is at least a step.
The guarantee stays: nothing is forwarded that is not held.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

from governd.actions import Action, Principal, Usage
from governd.config.schema import SizingConfig
from governd.errors import BudgetExceeded
from governd.governance.bounds import CostBounds
from governd.governance.budgets import BudgetPath, Budgets, Cost, Hold
from governd.governance.sizing import OutputSizes

#: (principal, served model, choices): where a call's output size is counted.
Sized = tuple[Principal, str, int]


@dataclass(slots=True)
class Metered:
    """A metered call's bet: the output tokens its hold covers, and how it may grow."""

    #: Output tokens (all choices) the hold covers now.
    held: int
    #: The most it may grow to: the call's output limit times its choices.
    ceiling: int
    step: int
    usd_per_token: float


class Bet(NamedTuple):
    """What a call holds, whether it is metered, and the output limit sent upstream."""

    bound: Cost
    metered: Metered | None
    max_tokens: int | None
    #: The tokens its worst case may use: what rate limits take (a bet may grow to it).
    worst_tokens: int


class Bets:
    """Sizes bets from recorded outcomes and keeps metered calls' holds growing."""

    def __init__(self, cfg: SizingConfig, bounds: CostBounds, budgets: Budgets) -> None:
        self._cfg = cfg
        self._bounds = bounds
        self._budgets = budgets
        #: Output tokens of settled calls: the size of a metered call's first hold.
        self.sizes = OutputSizes(cfg.quantile, cfg.min_samples)

    def sized(self, action: Action, served: str) -> Sized | None:
        """Where a call's output size is counted (chat and completions, when sizing is on)."""
        if not self._cfg.enabled or action.operation not in ("chat", "completion"):
            return None
        n = action.body.get("n", 1)
        return (action.principal, served, n if type(n) is int and n > 0 else 1)

    def observe(self, sized: Sized | None, usage: Usage) -> None:
        """Count a settled call's output size."""
        if sized is not None and usage.output_tokens:
            principal, model, choices = sized
            self.sizes.observe(principal, model, usage.output_tokens // choices)

    def place(
        self, action: Action, served: str, limit: int | None, sized: Sized, path: BudgetPath
    ) -> Bet:
        """The call's hold on ``path``: its worst case, or a metered bet where a budget is tight."""
        bound = self._bounds.bound(action, served, limit)
        if not path.tight(bound, self._cfg.tight_calls):
            return Bet(bound, None, limit, bound.tokens)
        choices = sized[2]
        estimate = self.sizes.estimate(action.principal, served)
        ceiling = self._bounds.output_limit(action, served, limit) * choices
        if estimate is None or estimate * choices >= ceiling:
            return Bet(bound, None, limit, bound.tokens)
        metered = Metered(
            estimate * choices, ceiling, self._cfg.step_tokens * choices, self._price(served)
        )
        return Bet(self._bounds.bound(action, served, estimate), metered, limit, bound.tokens)

    async def capped(self, action: Action, served: str, choices: int) -> Bet | None:
        """Near a budget's end: the output the budgets' room affords (None: not even a step)."""
        price = self._price(served)
        fixed = self._bounds.bound(action, served, 1)  # the input, and one output token
        room = math.inf
        for use in await self._budgets.usage(action.principal):
            left = use.limit.limit - use.spent - use.reserved
            if use.key.unit == "usd" and price > 0:
                room = min(room, (left - fixed.usd + price) / price)
            elif use.key.unit == "tokens":
                room = min(room, left - fixed.tokens + 1)
        # Within a millionth of a token of a whole one is that one (the room is a float sum).
        per_choice = math.floor(room / choices + 1e-6) if math.isfinite(room) else 0
        if per_choice < self._cfg.step_tokens:
            return None
        metered = Metered(per_choice * choices, per_choice * choices, self._cfg.step_tokens, price)
        bound = self._bounds.bound(action, served, per_choice)
        return Bet(bound, metered, per_choice, bound.tokens)

    async def top_up(self, metered: Metered, hold: Hold, output_tokens: int) -> bool:
        """Raise a metered call's hold to cover ``output_tokens``; False when a budget is full.

        It grows in steps, never past the call's output limit.
        """
        if output_tokens > metered.ceiling:
            return False
        while metered.held < output_tokens:
            step = min(metered.step, metered.ceiling - metered.held)
            try:
                await self._budgets.top_up(hold, Cost(step * metered.usd_per_token, step))
            except BudgetExceeded:
                return False
            metered.held += step
        return True

    def _price(self, served: str) -> float:
        return self._bounds.output_price(served)
