"""Output sizes: quantiles of recorded replies, per principal and model, bounded and adaptive."""

from __future__ import annotations

import pytest

from governd.actions import Principal
from governd.governance.sizing import OutputSizes

T, A, B_ = Principal("acme", "t"), Principal("acme", "a"), Principal("acme", "b")


def test_a_quantile_errs_high_by_at_most_one_bucket() -> None:
    sizes = OutputSizes(0.5, min_samples=10)
    for n in range(1, 101):  # 1..100: the median is 50
        sizes.observe(T, "m", n)
    found = sizes.estimate(T, "m")
    assert found is not None and 50 <= found <= 50 * 1.05


@pytest.mark.parametrize(("q", "low", "high"), [(0.9, 90, 95), (0.99, 99, 104)])
def test_high_quantiles(q: float, low: int, high: int) -> None:
    sizes = OutputSizes(q, min_samples=10)
    for n in range(1, 101):
        sizes.observe(T, "m", n)
    assert low <= (sizes.estimate(T, "m") or 0) <= high


def test_too_few_samples_fall_back_to_the_models_then_to_nothing() -> None:
    sizes = OutputSizes(0.5, min_samples=20)
    for _ in range(19):
        sizes.observe(A, "m", 40)
    assert sizes.estimate(A, "m") is None
    sizes.observe(B_, "m", 40)  # the model has 20 now; acme/b only one
    assert sizes.estimate(B_, "m") == sizes.estimate(A, "m") is not None
    assert sizes.estimate(A, "other") is None


def test_the_estimate_follows_a_workload_that_changes() -> None:
    sizes = OutputSizes(0.5, min_samples=10)
    for _ in range(10_000):
        sizes.observe(T, "m", 20)
    for _ in range(30_000):
        sizes.observe(T, "m", 400)
    assert (sizes.estimate(T, "m") or 0) >= 400  # old counts were halved away
