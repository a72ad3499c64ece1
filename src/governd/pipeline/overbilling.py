"""An upstream that bills past the bound it was given: charged as reported, and never hidden.

governd sends every call a ``max_tokens`` (its own cap, or the client's);
output an upstream reports beyond that times the choices asked for is a
breach of contract, not a cost to absorb. The call is charged what the
upstream reports (the bill will say so), its entry says ``upstream_overbilled``
with the bound, the count and the overage, the deployment is tripped (no calls
until an operator clears it) and the trip is its own ledger entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from governd.actions import Action, Usage
from governd.config import Pricing
from governd.ledger import cost_usd

#: The entry's error_code of a call whose upstream billed past its bound (the call succeeded).
CODE = "upstream_overbilled"
#: The alert that fires while a deployment is tripped for it.
INCIDENT = "UpstreamOverbilled"


@dataclass(frozen=True, slots=True)
class Overbilled:
    """One call's breach: where, the bound it was given, what was reported, what it cost more."""

    deployment: str
    bound: int
    reported: int
    overage_usd: float

    @property
    def overage_tokens(self) -> int:
        """Output tokens past the bound."""
        return self.reported - self.bound

    def signals(self) -> dict[str, Any]:
        """The part of the call's entry signals that says so."""
        return {
            "overbilled": {
                "deployment": self.deployment,
                "bound": self.bound,
                "reported": self.reported,
                "overage_tokens": self.overage_tokens,
                "overage_usd": self.overage_usd,
            }
        }

    def summary(self) -> str:
        """The breach in words (the trip's entry, the alert)."""
        return (
            f"{self.deployment} reported {self.reported:,} output tokens for a bound of "
            f"{self.bound:,} ({self.overage_tokens:,} over, ${self.overage_usd:.6f})"
        )


def output_bound(action: Action, max_tokens: int | None) -> int | None:
    """The most output tokens the upstream was allowed: governd's cap or the client's, per choice."""
    body = action.body
    asked = body.get("max_completion_tokens", body.get("max_tokens"))
    per_choice = max_tokens or (asked if type(asked) is int and asked > 0 else None)
    n = body.get("n")
    return None if per_choice is None else per_choice * (n if type(n) is int and n > 0 else 1)


def overbilled(
    action: Action, max_tokens: int | None, deployment: str, pricing: Pricing, usage: Usage
) -> Overbilled | None:
    """The breach, if the upstream reported more output than the call's bound."""
    bound = output_bound(action, max_tokens)
    if bound is None or usage.source != "upstream" or usage.output_tokens <= bound:
        return None
    over = Usage(output_tokens=usage.output_tokens - bound)
    return Overbilled(deployment, bound, usage.output_tokens, cost_usd(over, pricing))
