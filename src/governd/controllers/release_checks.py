"""A release's checks: each arm's counts judged successful, failed or inconclusive.

Every check is a test at the release's ``confidence`` (alpha = 1 - it), and
none is successful for lack of evidence:

- ``errors``: the canary's error ratio against the SLO's budget ``B``, by an
  exact binomial test against the ratio that burns at ``max_burn``
  (``p0 = max_burn * B``): failed when it is above ``p0`` with confidence,
  successful when below, inconclusive between. With no error at all it is
  successful from ``ln(alpha) / ln(1 - p0)`` events on: the events needed to
  see one error with probability 1 - alpha were the canary burning at
  ``max_burn`` (41 at 99.5% and 14.4x, 207 at 99.9%; the *floor*). The stable
  arm is judged the same way, to tell an upstream's outage (both burn) from a
  bad canary (only it does).
- ``errors_vs_stable``: the canary's error ratio above stable's by more than
  ``B`` with confidence (Fisher's exact test, one-sided): failed.
- ``latency``/``ttft``: p95 of each arm and a one-sided Mann-Whitney U test
  that the canary's are larger: failed when larger with confidence and the p95
  rose past ``critical``; successful when it rose at most ``allowed``.
- ``cost``: USD per successful call, by Welch's t-test, the same way.
- ``refusals`` (upstream 4xx: guardrails, content filters) and ``tool_risk``
  (risk events per tool call of the canary's agent runs): the canary's rate
  above stable's by more than the margin, with confidence: failed.

Comparisons need ``min_events`` on each arm; below, inconclusive.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from governd.config.releases import Analysis, Increase
from governd.ledger.releases.counts import Tally, value_of

Verdict = Literal["successful", "failed", "inconclusive"]


@dataclass(frozen=True, slots=True)
class Check:
    """One check's verdict, what it measured, and why."""

    name: str
    verdict: Verdict
    why: str
    figures: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        """Plain data, for entries, status and the API."""
        return {"check": self.name, "verdict": self.verdict, "why": self.why, **self.figures}


@dataclass(frozen=True, slots=True)
class Judgement:
    """Every check of a release's current epoch, and what they say together."""

    checks: tuple[Check, ...]
    #: The stable arm burns the SLO too: an outage is nobody's canary.
    stable_burns: bool

    @property
    def failed(self) -> list[Check]:
        """The failed checks."""
        return [c for c in self.checks if c.verdict == "failed"]

    @property
    def conclusive(self) -> bool:
        """Every check successful."""
        return all(c.verdict == "successful" for c in self.checks)


def judge(
    analysis: Analysis, budget: float, max_burn: float, canary: Tally, stable: Tally
) -> Judgement:
    """Run every configured check on the two arms' counts."""
    from scipy import stats  # ~1 s to import: only where releases run

    alpha = 1 - analysis.confidence
    tests = _Tests(stats, alpha, analysis.min_events)
    p0 = min(max_burn * budget, 0.999)
    checks = [
        tests.errors("errors", canary, p0, budget),
        tests.errors_vs_stable(canary, stable, budget),
    ]
    for name, rise in (("latency", analysis.latency), ("ttft", analysis.ttft)):
        unmeasured = stable.ok >= analysis.min_events and not getattr(stable, name)
        if rise is not None and not unmeasured:  # e.g. embeddings have no first token
            checks.append(tests.durations(name, canary, stable, rise))
    if analysis.cost is not None:
        checks.append(tests.cost(canary, stable, analysis.cost))
    if analysis.refusals is not None:
        checks.append(
            tests.rate(
                "refusals",
                (canary.refused, canary.events),
                (stable.refused, stable.events),
                analysis.refusals,
            )
        )
    if analysis.tool_risk is not None and canary.tools:
        checks.append(
            tests.rate(
                "tool_risk",
                (canary.risk, canary.tools),
                (stable.risk, stable.tools),
                analysis.tool_risk,
            )
        )
    stable_errors = tests.errors("errors", stable, p0, budget)
    return Judgement(tuple(checks), stable_errors.verdict == "failed")


def floor(p0: float, alpha: float) -> int:
    """Events with no error after which a ratio above ``p0`` is ruled out at 1 - alpha."""
    return math.ceil(math.log(alpha) / math.log(1 - p0))


def p95(hist: dict[int, float]) -> float:
    """The 95th percentile of a histogram of durations (bucket midpoints)."""
    total = sum(hist.values())
    seen = 0.0
    for bucket in sorted(hist):
        seen += hist[bucket]
        if seen >= 0.95 * total:
            return value_of(bucket)
    return 0.0


class _Tests:
    def __init__(self, stats: Any, alpha: float, min_events: int) -> None:
        self._stats = stats
        self._alpha = alpha
        self._min = min_events

    def errors(self, name: str, arm: Tally, p0: float, budget: float) -> Check:
        n, k = int(arm.judged), int(arm.bad)
        need = floor(p0, self._alpha)
        figures = {
            "events": n,
            "bad": k,
            "ratio": k / n if n else 0.0,
            "burn": (k / n / budget) if n else 0.0,
            "fails_above": p0,
            "floor": need,
        }
        if n == 0:
            return Check(
                name, "inconclusive", f"no events yet (needs {need} without an error)", figures
            )
        above = float(self._stats.binom.sf(k - 1, n, p0))  # P(at least k bad | burning at max_burn)
        below = float(self._stats.binom.cdf(k, n, p0))  # P(at most k bad | burning at max_burn)
        if above < self._alpha:
            why = f"{k} of {n} bad ({k / n:.2%}): burns {k / n / budget:.1f}x the budget, above {p0 / budget:.1f}x"
            return Check(name, "failed", why, figures)
        if below < self._alpha:
            return Check(
                name, "successful", f"{k} of {n} bad: below {p0 / budget:.1f}x the budget", figures
            )
        return Check(
            name,
            "inconclusive",
            f"{k} of {n} bad: not yet told from {p0 / budget:.1f}x (needs {need} events without an error)",
            figures,
        )

    def errors_vs_stable(self, canary: Tally, stable: Tally, margin: float) -> Check:
        nc, kc, ns, ks = int(canary.judged), int(canary.bad), int(stable.judged), int(stable.bad)
        rc, rs = (kc / nc if nc else 0.0), (ks / ns if ns else 0.0)
        figures = {"canary": rc, "stable": rs, "margin": margin, "events": [nc, ns]}
        if min(nc, ns) < self._min:
            return Check(
                "errors_vs_stable",
                "inconclusive",
                f"{nc} canary and {ns} stable events (needs {self._min} each)",
                figures,
            )
        p = float(
            self._stats.fisher_exact([[kc, nc - kc], [ks, ns - ks]], alternative="greater").pvalue
        )
        figures["p"] = p
        if p < self._alpha and rc - rs > margin:
            return Check(
                "errors_vs_stable",
                "failed",
                f"errors {rc:.2%} against stable's {rs:.2%} (p={p:.2g})",
                figures,
            )
        return Check(
            "errors_vs_stable", "successful", f"errors {rc:.2%} against stable's {rs:.2%}", figures
        )

    def durations(self, name: str, canary: Tally, stable: Tally, rise: Increase) -> Check:
        hc, hs = getattr(canary, name), getattr(stable, name)
        nc, ns = sum(hc.values()), sum(hs.values())
        figures: dict[str, Any] = {"events": [nc, ns]}
        if min(nc, ns) < self._min:
            return Check(
                name,
                "inconclusive",
                f"{nc:.0f} canary and {ns:.0f} stable samples (needs {self._min} each)",
                figures,
            )
        pc, ps = p95(hc), p95(hs)
        up = pc / ps - 1 if ps > 0 else 0.0
        p = rank_test(self._stats, hc, hs)
        figures.update(p95=[round(pc, 3), round(ps, 3)], increase=up, p=p)
        return self._rise(
            name, f"p95 {pc:.1f} ms against {ps:.1f} ms ({up:+.0%})", up, p, rise, figures
        )

    def cost(self, canary: Tally, stable: Tally, rise: Increase) -> Check:
        nc, ns = canary.ok, stable.ok
        figures: dict[str, Any] = {"events": [nc, ns]}
        if min(nc, ns) < self._min:
            return Check(
                "cost",
                "inconclusive",
                f"{nc:.0f} canary and {ns:.0f} stable successes (needs {self._min} each)",
                figures,
            )
        mc, ms = canary.cost / nc, stable.cost / ns
        up = mc / ms - 1 if ms > 0 else (0.0 if mc == 0 else math.inf)
        sc, ss = _std(canary.cost_sq, mc, nc), _std(stable.cost_sq, ms, ns)
        if sc == 0 and ss == 0:
            p = 0.0 if mc > ms else 1.0
        else:
            t = self._stats.ttest_ind_from_stats(
                mc, sc, nc, ms, ss, ns, equal_var=False, alternative="greater"
            )
            p = float(t.pvalue)
        figures.update(usd_per_call=[mc, ms], increase=up, p=p)
        return self._rise(
            "cost", f"${mc:.6f} a call against ${ms:.6f} ({up:+.0%})", up, p, rise, figures
        )

    def rate(
        self, name: str, canary: tuple[float, float], stable: tuple[float, float], margin: float
    ) -> Check:
        (kc, nc), (ks, ns) = canary, stable
        rc, rs = (kc / nc if nc else 0.0), (ks / ns if ns else 0.0)
        figures = {"canary": rc, "stable": rs, "margin": margin, "events": [nc, ns]}
        if min(nc, ns) < self._min:
            return Check(
                name,
                "inconclusive",
                f"{nc:.0f} canary and {ns:.0f} stable events (needs {self._min} each)",
                figures,
            )
        counts = [[int(kc), int(max(0, nc - kc))], [int(ks), int(max(0, ns - ks))]]
        p = float(self._stats.fisher_exact(counts, alternative="greater").pvalue)
        figures["p"] = p
        if p < self._alpha and rc - rs > margin:
            return Check(name, "failed", f"{rc:.2%} against stable's {rs:.2%} (p={p:.2g})", figures)
        return Check(name, "successful", f"{rc:.2%} against stable's {rs:.2%}", figures)

    def _rise(
        self, name: str, said: str, up: float, p: float, rise: Increase, figures: dict[str, Any]
    ) -> Check:
        if p < self._alpha and up > rise.critical:
            return Check(
                name,
                "failed",
                f"{said}: past the critical {rise.critical:.0%} (p={p:.2g})",
                figures,
            )
        if up <= rise.allowed:
            return Check(name, "successful", f"{said}: within {rise.allowed:.0%}", figures)
        return Check(
            name, "inconclusive", f"{said}: above {rise.allowed:.0%}, not yet told apart", figures
        )


def rank_test(stats: Any, first: dict[int, float], second: dict[int, float]) -> float:
    """One-sided Mann-Whitney U p-value that ``first``'s durations are larger than ``second``'s.

    Computed on the histograms themselves (every sample of a bucket shares its
    midrank), with the tie correction and continuity correction of SciPy's
    asymptotic method, in one pass over the buckets however many calls they
    count.
    """
    n1, n2 = sum(first.values()), sum(second.values())
    big_n = n1 + n2
    below = rank_sum = ties = 0.0
    for bucket in sorted(set(first) | set(second)):
        here = first.get(bucket, 0.0) + second.get(bucket, 0.0)
        rank_sum += first.get(bucket, 0.0) * (below + (here + 1) / 2)
        ties += here**3 - here
        below += here
    u = rank_sum - n1 * (n1 + 1) / 2
    variance = n1 * n2 / 12 * ((big_n + 1) - ties / (big_n * (big_n - 1)))
    if variance <= 0:
        return 1.0
    z = (u - n1 * n2 / 2 - 0.5) / math.sqrt(variance)
    return float(stats.norm.sf(z))


def _std(sum_sq: float, mean: float, n: float) -> float:
    if n < 2:
        return 0.0
    return math.sqrt(max(0.0, (sum_sq - n * mean * mean) / (n - 1)))
