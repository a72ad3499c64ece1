"""The degradation ladder: what a node's budgets do to a call before the hard limit refuses it.

``ladder`` is pure: given the verdict of the policies, the priority class the
principal has and the one the request asked for, and how full each budget of
its path is, it returns the verdict and the class the call runs with. Past a
budget's ``soft`` fraction the call is served the model's ``degrade_to``;
past ``lower_priority_at`` it runs one class lower. Serving, ``governd policy
test`` and a shadow evaluation all call this same function.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from governd.actions import PRIORITIES, Decision, Priority
from governd.config import LadderConfig
from governd.governance.budgets import BudgetUse

RANK: dict[str, int] = {name: i for i, name in enumerate(PRIORITIES)}
_LOWEST = len(PRIORITIES) - 1


def ladder(
    decision: Decision,
    model: str,
    base: Priority,
    asked: Priority | None,
    uses: Sequence[BudgetUse],
    ladders: Mapping[str, LadderConfig],
    degrade_to: str | None,
) -> tuple[Decision, Priority]:
    """The verdict and priority class once the request's priority and the budgets had their say."""
    rank = RANK[base]
    reasons = list(decision.reasons)
    if asked is not None:
        if RANK[asked] < rank:
            reasons.append(f"priority:{asked} asked, {base} allowed")
        rank = max(rank, RANK[asked])
    served = decision.model or model
    effect = decision.effect
    for use in uses:
        steps = ladders.get(use.key.node)
        if steps is None:
            continue
        used, soft = use.fraction, use.limit.soft
        if (
            steps.lower_priority_at is not None
            and used >= steps.lower_priority_at
            and rank < _LOWEST
        ):
            rank += 1
            reasons.append(f"ladder:{use.key.name} at {used:.0%}: priority lowered")
        if (
            steps.degrade
            and soft is not None
            and used >= soft
            and effect == "allow"
            and degrade_to
            and degrade_to != served
        ):
            effect, served = "degrade", degrade_to
            reasons.append(f"ladder:{use.key.name} at {used:.0%} past soft {soft:.0%}: degraded")
    priority = PRIORITIES[rank]
    if priority != "standard":
        reasons.append(f"priority:{priority}")
    if effect == decision.effect and tuple(reasons) == decision.reasons:
        return decision, priority
    return Decision(effect, tuple(reasons), served, decision.max_tokens, decision.policy), priority
