"""Bets sized from outcomes: a stream on a tight budget holds a recorded quantile, then tops up.

The model costs $1 per 1,000 output tokens and nothing for input; its worst
case is its default_max_tokens, 1,000 tokens ($1). The team's $3 a day affords
three worst cases: tight (under ``tight_calls``, 100).
"""

from __future__ import annotations

from typing import Any

import pytest

from governd.actions import Action, Principal, Usage
from governd.errors import BudgetExceeded
from governd.governance.admission import Admission
from governd.governance.budgets import BudgetKey, Cost
from tests.governance.test_admission import admission as admission_for

CONFIG = """
principals:
  org: acme
  teams:
    tight: {budgets: [{unit: usd, period: day, limit: 3.0}]}
    roomy: {budgets: [{unit: usd, period: day, limit: 100000.0}]}
upstreams: {sim: {kind: sim}}
models:
  m: {deployments: [{upstream: sim, model: s}], pricing: {input: 0, output: 1000}, default_max_tokens: 1000}
governance: {sizing: {min_samples: 5, step_tokens: 10}}
"""
TIGHT = Principal("acme", "tight")
KEY = BudgetKey("acme/tight", "usd", "day")


def admission() -> Admission:
    return admission_for(CONFIG)


def call(who: Principal = TIGHT, stream: bool = True, **body: Any) -> Action:
    return Action(
        "r",
        "chat",
        who,
        "m",
        {"messages": [{"role": "user", "content": "hi"}], **body},
        stream=stream,
    )


async def held(adm: Admission) -> float:
    return (await adm.budgets.state.usage(KEY, adm.budgets.window(KEY)[0]))[1]


async def learned(adm: Admission, tokens: int = 100) -> None:
    for _ in range(5):
        done = await adm.admit(call(Principal("acme", "roomy")))
        await adm.release(done, 0.0, Usage(output_tokens=tokens))


async def test_without_history_a_stream_holds_its_worst_case() -> None:
    adm = admission()
    admitted = await adm.admit(call())
    assert admitted.metered is None and await held(adm) == pytest.approx(1.0)


@pytest.mark.parametrize("stream", [True, False])
async def test_with_history_a_call_on_a_tight_budget_holds_the_quantile(stream: bool) -> None:
    adm = admission()
    await learned(adm, 100)
    admitted = await adm.admit(call(stream=stream))
    assert admitted.metered is not None
    assert 100 <= admitted.metered.held <= 105 and admitted.metered.ceiling == 1000
    assert await held(adm) == pytest.approx(admitted.metered.held / 1000)


@pytest.mark.parametrize(
    ("action", "why"),
    [
        (call(Principal("acme", "roomy")), "a budget with room for 100 worst cases is not tight"),
        (call(max_tokens=50), "an output limit below the quantile is the bet already"),
    ],
)
async def test_what_is_not_metered(action: Action, why: str) -> None:
    adm = admission()
    await learned(adm, 100)
    assert (await adm.admit(action)).metered is None, why


async def test_a_top_up_raises_the_hold_in_steps_until_the_budget_is_full() -> None:
    adm = admission()
    await learned(adm, 100)
    admitted = await adm.admit(call())
    start = admitted.metered.held if admitted.metered else 0
    assert await adm.top_up(admitted, start + 25)  # three steps of 10
    assert admitted.metered is not None and admitted.metered.held == start + 30
    assert await held(adm) == pytest.approx((start + 30) / 1000)
    # Another call grows to hold the rest of the $3: nothing is left to grow into.
    other = await adm.admit(call())
    assert other.hold is not None and other.metered is not None
    rest = 3000 - (start + 30) - other.metered.held
    await adm.budgets.top_up(other.hold, Cost(rest / 1000, rest))
    assert await held(adm) == pytest.approx(3.0)
    assert not await adm.top_up(admitted, start + 31)
    assert admitted.metered.held == start + 30
    assert not await adm.top_up(admitted, 1001), "never past the call's own output limit"
    await adm.release(admitted, (start + 30) / 1000, Usage(output_tokens=start + 30))
    assert await held(adm) == pytest.approx((3000 - start - 30) / 1000)  # the other's hold


@pytest.mark.parametrize(("left", "capped"), [(50, 50), (10, 10), (9, None)])
async def test_near_the_end_a_bet_that_does_not_fit_is_capped_not_refused(
    left: int, capped: int | None
) -> None:
    adm = admission()
    await learned(adm, 100)
    filler = await adm.admit(call())
    assert filler.hold is not None and filler.metered is not None
    rest = 3000 - left - filler.metered.held
    await adm.budgets.top_up(filler.hold, Cost(rest / 1000, rest))
    if capped is None:  # less than a step of room: refused as before
        with pytest.raises(BudgetExceeded):
            await adm.admit(call())
        return
    admitted = await adm.admit(call())
    assert admitted.max_tokens == capped and admitted.metered is not None
    assert admitted.metered.ceiling == capped
    assert admitted.decision.reasons[-1].endswith(
        f"max_tokens capped to {capped}, what the budget affords"
    )
    assert await held(adm) == pytest.approx(3.0)
