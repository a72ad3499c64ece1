"""The budget ladder, pure: degrade past a soft line, one class lower past ``lower_priority_at``."""

from __future__ import annotations

import pytest

from governd.actions import Decision
from governd.config import LadderConfig
from governd.governance.budgets import BudgetKey, BudgetUse, Limit
from governd.governance.ladder import ladder

TEAM = BudgetKey("acme/t", "usd", "day")
ORG = BudgetKey("acme", "tokens", "hour")
ALLOW = Decision("allow", (), "big")


def use(key: BudgetKey, fraction: float, soft: float | None = 0.8) -> BudgetUse:
    return BudgetUse.of(key, Limit(100.0, soft), fraction * 100.0, 0.0)


STEPS = {"acme/t": LadderConfig(lower_priority_at=0.9), "acme": LadderConfig()}


@pytest.mark.parametrize(
    ("decision", "asked", "uses", "effect", "model", "priority"),
    [
        pytest.param(ALLOW, None, [], "allow", "big", "standard", id="no budgets"),
        pytest.param(ALLOW, None, [use(TEAM, 0.5)], "allow", "big", "standard", id="below soft"),
        pytest.param(
            ALLOW, None, [use(TEAM, 0.85)], "degrade", "small", "standard", id="past soft"
        ),
        pytest.param(ALLOW, None, [use(TEAM, 0.95)], "degrade", "small", "batch", id="past both"),
        pytest.param(
            ALLOW, None, [use(ORG, 0.95)], "degrade", "small", "standard", id="org: no lowering"
        ),
        pytest.param(
            ALLOW, None, [use(TEAM, 0.85, soft=None)], "allow", "big", "standard", id="no soft"
        ),
        pytest.param(ALLOW, "sheddable", [], "allow", "big", "sheddable", id="asked lower"),
        pytest.param(ALLOW, "critical", [], "allow", "big", "standard", id="asked higher: refused"),
        pytest.param(
            ALLOW,
            "sheddable",
            [use(TEAM, 0.95)],
            "degrade",
            "small",
            "sheddable",
            id="lowest stays",
        ),
        pytest.param(
            Decision("degrade", ("policy:p",), "small"),
            None,
            [use(TEAM, 0.85)],
            "degrade",
            "small",
            "standard",
            id="already degraded",
        ),
    ],
)
def test_ladder(
    decision: Decision,
    asked: str | None,
    uses: list[BudgetUse],
    effect: str,
    model: str,
    priority: str,
) -> None:
    got, got_priority = ladder(decision, "big", "standard", asked, uses, STEPS, "small")  # type: ignore[arg-type]
    assert (got.effect, got.model, got_priority) == (effect, model, priority)
    if (effect, priority) == (decision.effect, "standard") and not asked:
        assert got is decision, "nothing changed: the same decision"


def test_the_reasons_name_the_budget_and_the_step() -> None:
    got, _ = ladder(ALLOW, "big", "standard", None, [use(TEAM, 0.95)], STEPS, "small")
    assert got.reasons == (
        "ladder:acme/t usd/day at 95%: priority lowered",
        "ladder:acme/t usd/day at 95% past soft 80%: degraded",
        "priority:batch",
    )


@pytest.mark.parametrize("uses", [[], [use(TEAM, 0.5)]], ids=["no budgets", "below every step"])
def test_a_class_below_standard_is_said_even_when_no_step_applies(uses: list[BudgetUse]) -> None:
    got, priority = ladder(ALLOW, "big", "batch", None, uses, STEPS, "small")
    assert (got.effect, priority, got.reasons) == ("allow", "batch", ("priority:batch",))
