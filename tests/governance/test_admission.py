"""Admission as a table: what each request is decided, what it holds, and what a refusal gives back."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

import pytest

from governd.actions import Action, Principal, Usage
from governd.clock import ManualClock
from governd.config import parse_config
from governd.errors import (
    BudgetExceeded,
    GovernError,
    InvalidRequest,
    ModelNotFound,
    PolicyDenied,
    RateLimited,
    RunLimitExceeded,
)
from governd.governance.admission import Admission
from governd.governance.budgets import BudgetKey, Budgets
from governd.governance.principals import PrincipalTree
from governd.governance.state.local_budgets import LocalState
from governd.governance.state.setup import config_budgets

CONFIG = """
principals:
  org: acme
  teams:
    t:
      budgets: [{unit: usd, period: day, limit: 1.0, soft: 0.5}]
      limits: {rpm: 1000, concurrency: 100}
      max_tokens: 300
      run_limits: {steps: 1}
    small: {models: [m]}
upstreams: {sim: {kind: sim}}
models:
  m: {deployments: [{upstream: sim, model: s}], pricing: {input: 1000, output: 1000}, degrade_to: cheap}
  cheap: {deployments: [{upstream: sim, model: s}], pricing: {input: 1, output: 1}}
  e: {kind: embedding, deployments: [{upstream: sim, model: s}]}
policies:
  - {id: no-x, when: 'request.user == "x"', effect: deny}
  - {id: cap, when: 'request.user == "capped"', effect: set, set: {max_tokens: 50}}
"""
TEAM = Principal("acme", "t")
SPEND = BudgetKey("acme/t", "usd", "day")


def admission(config: str = CONFIG) -> Admission:
    """Admission over ``config``, its declared budgets set, on a manual clock."""
    cfg = parse_config(config)
    clock = ManualClock()
    budgets = Budgets(LocalState(), ZoneInfo("UTC"), clock)
    for key, limit in config_budgets(cfg):
        budgets.set(key, limit)
    return Admission(cfg, PrincipalTree(cfg), budgets, clock)


def chat(model: str = "m", who: Principal = TEAM, run: str | None = None, **body: Any) -> Action:
    return Action(
        "r",
        "chat",
        who,
        model,
        {"messages": [{"role": "user", "content": "hi"}], **body},
        run_id=run,
    )


@pytest.mark.parametrize(
    ("action", "effect", "served", "max_tokens"),
    [
        pytest.param(chat(max_tokens=10), "allow", "m", None, id="within the cap: the client's"),
        pytest.param(chat(), "allow", "m", 300, id="no max_tokens: the node's cap"),
        pytest.param(chat(max_tokens=1000), "allow", "m", 300, id="above the cap: capped"),
        pytest.param(chat(user="capped", max_tokens=100), "allow", "m", 50, id="a policy's cap"),
        pytest.param(
            chat("cheap", Principal("acme", "small")), "deny", None, None, id="allow-list"
        ),
    ],
)
async def test_what_a_call_is_decided_and_may_produce(
    action: Action, effect: str, served: str | None, max_tokens: int | None
) -> None:
    adm = admission()
    sent = dict(action.body)
    if effect == "deny":
        with pytest.raises(PolicyDenied) as info:
            await adm.admit(action)
        assert info.value.decision is not None and info.value.decision.policy == "model_access"
        return
    admitted = await adm.admit(action)
    assert (admitted.decision.effect, admitted.served, admitted.max_tokens) == (
        effect,
        served,
        max_tokens,
    )
    assert action.body == sent, "admission decides the limit; it never rewrites the body"


@pytest.mark.parametrize(
    ("action", "error", "code"),
    [
        pytest.param(chat("nope"), ModelNotFound, "model_not_found", id="unknown model"),
        pytest.param(chat("e"), InvalidRequest, "invalid_request_error", id="wrong operation"),
        pytest.param(chat(user="x"), PolicyDenied, "policy_denied", id="policy"),
    ],
)
async def test_refusals_before_anything_is_held(
    action: Action, error: type[GovernError], code: str
) -> None:
    with pytest.raises(error) as info:
        await admission().admit(action)
    assert info.value.code == code


async def _held(adm: Admission) -> tuple[float, int]:
    """What the team holds now: reserved USD, requests in flight."""
    _, reserved = await adm.budgets.state.usage(SPEND, adm.budgets.window(SPEND)[0])
    in_flight = sum(adm.limits.state._nodes[n].in_flight for n in adm.limits.state._nodes)  # type: ignore[attr-defined]
    return reserved, in_flight


async def test_a_budget_refusal_gives_back_the_rate_limit_it_took() -> None:
    adm = admission()
    with pytest.raises(BudgetExceeded) as info:
        await adm.admit(chat(max_tokens=300, n=10))  # 3,000 output tokens at $1,000/M: $3 > $1
    assert info.value.budget == "acme/t usd/day" and info.value.decision is not None
    assert info.value.decision.reasons == ("budget:acme/t usd/day",)
    assert await _held(adm) == (0.0, 0)


async def test_a_run_limit_refusal_gives_back_the_budget_and_the_rate_limit() -> None:
    adm = admission()
    first = await adm.admit(chat(run="r", max_tokens=10))
    with pytest.raises(RunLimitExceeded) as info:
        await adm.admit(chat(run="r", max_tokens=10))  # the run's one step is taken
    assert info.value.limit == "steps"
    await adm.release(first, 0.0, Usage())
    assert await _held(adm) == (0.0, 0)


async def test_past_the_soft_line_the_call_is_degraded_and_held_at_the_cheaper_price() -> None:
    adm = admission()
    hold = await adm.admit(chat(max_tokens=300))  # $0.3 + the prompt
    await adm.release(
        hold, 0.6, Usage(input_tokens=100)
    )  # spent $0.6 of $1: past the soft line of 0.5
    admitted = await adm.admit(chat(max_tokens=10))
    assert (admitted.decision.effect, admitted.served) == ("degrade", "cheap")


async def test_a_rate_limit_refusal_holds_nothing() -> None:
    cfg = CONFIG.replace("rpm: 1000", "rpm: 1")
    adm = Admission(
        parse_config(cfg),
        PrincipalTree(parse_config(cfg)),
        Budgets(LocalState(), ZoneInfo("UTC"), ManualClock()),
        ManualClock(),
    )
    await adm.admit(chat(max_tokens=10))
    with pytest.raises(RateLimited) as info:
        await adm.admit(chat(max_tokens=10))
    assert info.value.decision is not None and info.value.decision.effect == "deny"
