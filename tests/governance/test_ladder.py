"""The budget ladder, pure: degrade past a soft line, one class lower past ``lower_priority_at``."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from governd.actions import Decision, Principal
from governd.clock import ManualClock
from governd.config import LadderConfig
from governd.governance.budgets import BudgetKey, Budgets, BudgetUse, Limit
from governd.governance.ladder import ladder
from governd.governance.state.local_budgets import LocalState

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


_FRACTION = st.floats(0.0, 1.2)
_LADDER = st.builds(
    LadderConfig,
    degrade=st.booleans(),
    lower_priority_at=st.none() | st.floats(0.05, 1.0),
)


@settings(max_examples=300, deadline=None)
@given(
    ladders=st.tuples(_LADDER, _LADDER, _LADDER),
    softs=st.tuples(*[st.none() | st.floats(0.05, 1.0)] * 3),
    used=st.tuples(_FRACTION, _FRACTION, _FRACTION),
)
async def test_a_fill_at_no_step_is_one_the_ladder_leaves_alone(
    ladders: tuple[LadderConfig, ...], softs: tuple[float | None, ...], used: tuple[float, ...]
) -> None:
    """Admission skips the ladder when ``Fill.at_step`` is false: then the ladder changes nothing.

    Budgets on the team, the project and the key (which steps as its owner, the project).
    """
    who = Principal("acme", "t", "p", "key_1")
    nodes = ["acme/t", "acme/t/p", "acme/t/p/key_1"]
    by_node = {"acme": LadderConfig(), "acme/t": ladders[0], "acme/t/p": ladders[1]}
    budgets = Budgets(LocalState(), ZoneInfo("UTC"), ManualClock(), ladders=by_node)
    for node, soft, fraction in zip(nodes, softs, used, strict=True):
        key = BudgetKey(node, "usd", "day")
        budgets.set(key, Limit(100.0, soft))
        await budgets.state.preload(key, budgets.window(key)[0], fraction * 100.0)
    fill = await budgets.fill(budgets.path(who))
    terms_ladders = {**by_node, "acme/t/p/key_1": by_node["acme/t/p"]}
    got, priority = ladder(ALLOW, "big", "standard", None, fill.uses(), terms_ladders, "small")
    if not fill.at_step:
        assert (got, priority) == (ALLOW, "standard")
    else:
        assert (got, priority) != (ALLOW, "standard"), "at a step: the ladder acts"
