"""A release's checks: successful, failed or inconclusive, never successful without evidence."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from governd.config.releases import Analysis
from governd.controllers.release_checks import floor, judge, p95, rank_test
from governd.ledger.releases.counts import Tally, bucket_of, value_of

B = 0.005  # a 99.5% SLO
BURN = 14.4


def arm(
    events: int, bad: int = 0, ms: float = 100.0, usd: float = 0.001, refused: int = 0
) -> Tally:
    ok = events - bad - refused
    return Tally(
        events=events,
        refused=refused,
        judged=events - refused,
        bad=bad,
        ok=ok,
        cost=usd * ok,
        cost_sq=usd * usd * ok,
        latency={bucket_of(ms): ok} if ok else {},
    )


def verdicts(canary: Tally, stable: Tally, **analysis: object) -> dict[str, str]:
    found = judge(Analysis(**analysis), B, BURN, canary, stable)  # type: ignore[arg-type]
    return {c.name: c.verdict for c in found.checks}


@pytest.mark.parametrize(
    ("budget", "confidence", "events"),
    [(0.01, 0.95, 20), (0.005, 0.95, 41), (0.001, 0.95, 207), (0.005, 0.99, 62)],
)
def test_the_floor_is_the_events_that_would_show_one_error_at_the_burn(
    budget: float, confidence: float, events: int
) -> None:
    assert floor(BURN * budget, 1 - confidence) == events


def test_below_the_floor_a_clean_canary_is_inconclusive_and_at_it_successful() -> None:
    assert verdicts(arm(40), arm(1000))["errors"] == "inconclusive"
    assert verdicts(arm(41), arm(1000))["errors"] == "successful"


@pytest.mark.parametrize(
    ("events", "bad", "verdict"),
    [
        (41, 0, "successful"),
        (60, 2, "inconclusive"),  # 3.3% against 7.2%: not yet told apart at 60 events
        (400, 4, "successful"),
        (30, 10, "failed"),  # a third of its calls fail
        (1000, 100, "failed"),
    ],
)
def test_errors_against_the_slo(events: int, bad: int, verdict: str) -> None:
    assert verdicts(arm(events, bad), arm(1000))["errors"] == verdict


def test_a_stable_arm_burning_too_is_told_apart() -> None:
    both = judge(Analysis(), B, BURN, arm(200, 60), arm(2000, 600))
    alone = judge(Analysis(), B, BURN, arm(200, 60), arm(2000, 0))
    assert both.stable_burns and not alone.stable_burns
    assert {c.name for c in alone.failed} == {"errors", "errors_vs_stable"}
    assert [c.name for c in both.failed] == ["errors"], "no worse than stable: not its fault"


@pytest.mark.parametrize(
    ("canary_ms", "verdict"),
    [(100.0, "successful"), (109.0, "successful"), (130.0, "inconclusive"), (400.0, "failed")],
)
def test_latency_rises_allowed_and_critical(canary_ms: float, verdict: str) -> None:
    found = verdicts(arm(200, ms=canary_ms), arm(200, ms=100.0))
    assert found["latency"] == verdict


def test_a_duration_no_arm_measures_is_not_checked() -> None:
    assert "ttft" not in verdicts(arm(200), arm(200))
    stable = arm(200)
    stable.ttft = {bucket_of(50.0): 200.0}
    assert verdicts(arm(200), stable)["ttft"] == "inconclusive", "the canary has none yet"


def test_comparisons_wait_for_events_on_both_arms() -> None:
    found = verdicts(arm(10, ms=900.0, usd=1.0), arm(1000))
    assert found["latency"] == found["cost"] == "inconclusive"


def test_a_costlier_canary_fails_its_cost_check() -> None:
    assert verdicts(arm(200, usd=0.002), arm(200, usd=0.001))["cost"] == "failed"
    assert verdicts(arm(200, usd=0.00105), arm(200, usd=0.001))["cost"] == "successful"


def test_more_refusals_than_stable_fail() -> None:
    assert verdicts(arm(300, refused=60), arm(3000, refused=30))["refusals"] == "failed"
    assert verdicts(arm(300, refused=3), arm(3000, refused=30))["refusals"] == "successful"


def test_only_when_every_check_is_successful_is_the_judgement_conclusive() -> None:
    found = judge(Analysis(), B, BURN, arm(500), arm(500))
    assert found.conclusive
    orjson.dumps([c.as_dict() for c in found.checks])  # recorded in entries: plain numbers
    assert not judge(Analysis(), B, BURN, arm(30), arm(500)).conclusive


def test_p95_of_a_histogram() -> None:
    hist = {bucket_of(10.0): 95.0, bucket_of(1000.0): 5.0}
    assert p95(hist) == pytest.approx(value_of(bucket_of(10.0)))
    assert value_of(bucket_of(250.0)) == pytest.approx(250.0, rel=0.03)


_HIST = st.dictionaries(st.integers(0, 200), st.integers(1, 30), min_size=1, max_size=12)


@settings(max_examples=100, deadline=None)
@given(first=_HIST, second=_HIST)
def test_the_rank_test_on_histograms_is_scipys_on_their_samples(
    first: dict[int, int], second: dict[int, int]
) -> None:
    def samples(hist: dict[int, int]) -> list[float]:
        return [value_of(b) for b, n in hist.items() for _ in range(n)]

    a, b = samples(first), samples(second)
    if len(set(a + b)) == 1:
        return  # all tied: SciPy returns nan, the histogram test 1.0
    want = stats.mannwhitneyu(a, b, alternative="greater", method="asymptotic").pvalue
    got = rank_test(
        stats, {k: float(v) for k, v in first.items()}, {k: float(v) for k, v in second.items()}
    )
    assert got == pytest.approx(want, rel=1e-6, abs=1e-9)
