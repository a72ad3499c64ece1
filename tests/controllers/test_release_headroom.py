"""Headroom before a weight step: the SLO's budget left, the risk of a broken canary, the money."""

from __future__ import annotations

import pytest

from governd.config.releases import ReleaseConfig
from governd.controllers.release_headroom import (
    DEFAULT_HORIZON_S,
    Remaining,
    SloStanding,
    cost,
    error_budget,
    horizon,
    risk,
)
from governd.ledger.releases.counts import Tally


def release(**spec: object) -> ReleaseConfig:
    steps = [
        {"set_weight": 10},
        {"pause": {"duration": 600}},
        {"pause": {"min_events": 5}},
        {"set_weight": 50},
    ]
    return ReleaseConfig.model_validate(
        {"name": "r", "model": "chat", "canary": {"deployment": "b/b"}, "steps": steps, **spec}
    )


@pytest.mark.parametrize(
    ("standing", "holds"),
    [
        (SloStanding(0.001, 2592000, 0.8, False), True),
        (SloStanding(0.001, 2592000, 0.1, False), False),
        (SloStanding(0.001, 2592000, 0.8, True), False),
    ],
)
def test_the_error_budget_left_and_no_page(standing: SloStanding, holds: bool) -> None:
    room = error_budget(release(), standing)
    assert room is not None and room.holds is holds
    assert error_budget(release(), None) is None, "no SLO: nothing to check"


def test_the_risk_of_a_step_is_its_broken_canarys_spend_before_it_is_stopped() -> None:
    # 99.9% over 30 days at 10 calls/s: 2,592 bad calls are the budget. A broken canary fails its
    # check at its first error (0.0144 < 0.05), after 1 / (10 x 0.5) s, plus a 1 s tick.
    room = risk(release(), 50, rate=10, budget=0.001, window=2592000, p0=0.0144, tick_s=1.0)
    assert room.figures["detection_s"] == pytest.approx(1.2)
    assert room.figures["spend"] == pytest.approx(0.5 * 1.2 / 2592)
    assert room.holds
    sparse = risk(release(), 50, rate=0.001, budget=0.001, window=2592000, p0=0.0144, tick_s=1.0)
    assert not sparse.holds, "at one call in 1,000 s, one bad call is 39% of the month's budget"
    assert risk(release(), 50, rate=0, budget=0.001, window=2592000, p0=0.0144, tick_s=1.0).holds


def test_a_steps_horizon_is_its_pauses_with_a_duration() -> None:
    cfg = release()
    assert horizon(cfg, 10) == 600
    assert horizon(cfg, 50) == DEFAULT_HORIZON_S


def test_the_projected_spend_is_charged_to_each_budget_by_its_share_of_the_calls() -> None:
    canary = Tally(ok=100, cost=0.2)  # $0.002 a call
    callers = {"acme/a": 75, "acme/b/key_1": 25}
    # 10 calls/s x 10% x 600 s x $0.002 = $1.20, 75% of it from acme/a, 25% from acme/b.
    fits = cost(
        release(),
        10,
        10.0,
        canary,
        Tally(),
        callers,
        [Remaining("acme/a", "acme/a usd/day", 1.0), Remaining("acme", "acme usd/day", 2.0)],
    )
    assert fits is not None and fits.holds and fits.figures["projected_usd"] == pytest.approx(1.2)
    short = cost(
        release(), 10, 10.0, canary, Tally(), callers, [Remaining("acme/b", "acme/b usd/day", 0.2)]
    )
    assert short is not None and not short.holds
    assert (
        short.figures["charge"] == pytest.approx(0.3)
        and short.figures["budget"] == "acme/b usd/day"
    )
    assert cost(release(headroom={"cost": False}), 10, 10.0, canary, Tally(), callers, []) is None
