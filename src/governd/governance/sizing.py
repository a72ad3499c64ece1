"""How long replies turn out, per model and per principal: the size of a bet on a call's output.

A budget that affords only a few calls at their worst case (``max_tokens``,
or the model's ``default_max_tokens``) would refuse most calls that fit it
easily: real replies are a fraction of their limit. Admission then holds a
quantile of the output tokens recorded for the principal and model instead
(the model's across principals while the principal has too few), and the
stream is metered: the hold is raised in steps as the reply grows, and the
reply is cut when the budget has no room (``Admission.top_up``).

Sizes are counted in a histogram of ~4% wide buckets (16 per doubling), so a
quantile is read in one pass over at most ~300 buckets and memory per
(principal, model) is bounded; counts are halved every ``_HALVE_AT`` samples,
so the estimate follows a workload that changes.
"""

from __future__ import annotations

import math

from governd.actions import Principal

_PER_DOUBLING = 16
_BUCKETS = 20 * _PER_DOUBLING  # up to ~1M tokens
_HALVE_AT = 10_000
_MAX_KEYS = 10_000


def _bucket(n: int) -> int:
    return min(_BUCKETS - 1, int(math.log2(max(1, n)) * _PER_DOUBLING))


def _upper(bucket: int) -> int:
    """The largest size a bucket holds (a quantile errs high: a hold never too small by it)."""
    return math.ceil(2 ** ((bucket + 1) / _PER_DOUBLING))


class _Histogram:
    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * _BUCKETS
        self.total = 0

    def add(self, bucket: int) -> None:
        self.counts[bucket] += 1
        self.total += 1
        if self.total >= _HALVE_AT:
            self.counts = [c // 2 for c in self.counts]
            self.total = sum(self.counts)

    def quantile(self, q: float) -> int:
        need = q * self.total
        seen = 0
        for i, count in enumerate(self.counts):
            seen += count
            if seen >= need and count:
                return _upper(i)
        return _upper(_BUCKETS - 1)


class OutputSizes:
    """Output tokens of settled calls, by (principal, model) and by model (a key is a principal)."""

    def __init__(self, quantile: float, min_samples: int) -> None:
        self._q = quantile
        self._min = min_samples
        self._by: dict[tuple[Principal | None, str], _Histogram] = {}

    def observe(self, principal: Principal, model: str, output_tokens: int) -> None:
        """Count a settled call's output (per choice)."""
        if len(self._by) >= _MAX_KEYS:
            self._by.clear()
        bucket = _bucket(output_tokens)
        for key in ((principal, model), (None, model)):
            found = self._by.get(key)
            if found is None:
                found = self._by[key] = _Histogram()
            found.add(bucket)

    def estimate(self, principal: Principal, model: str) -> int | None:
        """The quantile of the principal's outputs on ``model`` (else the model's), if known."""
        for key in ((principal, model), (None, model)):
            found = self._by.get(key)
            if found is not None and found.total >= self._min:
                return found.quantile(self._q)
        return None
