"""Admission's cost per call: bare, and with everything a platform team would configure.

Usage: python bench/decision.py [--iterations 20000]

Times ``Admission.admit`` then ``release`` (what governance does for one model
call: terms, policies, decide, the budget ladder, rate limits, budget holds,
settling) in process, on bench/peers.yaml (nothing to govern) and
bench/peers-full.yaml (USD and token budgets on three levels, rate limits on
two, 20 CEL policies none of which matches), and the policy evaluation alone:
the policies a request selects (``PolicySet.select``) against all 20 in one
CEL program. Prints a table and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from pathlib import Path

from governd.actions import Action, Principal, Usage
from governd.clock import SystemClock
from governd.config import load_config
from governd.config.cel_env import sample_context
from governd.governance.admission import Admission
from governd.governance.principals import PrincipalTree
from governd.governance.state.setup import load_budgets

HERE = Path(__file__).parent
BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 64}


async def admissions(config: str, principal: Principal, iterations: int) -> list[float]:
    cfg = load_config(HERE / config)
    clock = SystemClock()
    budgets = load_budgets(cfg, _NoStore(), clock)
    await budgets.sync()
    admission = Admission(cfg, PrincipalTree(cfg), budgets, clock)
    action = Action("r", "chat", principal, "gpt-4o-mini", BODY)
    samples = []
    for _ in range(iterations):
        start = time.perf_counter_ns()
        admitted = await admission.admit(action)
        await admission.release(admitted, 1e-6, Usage(input_tokens=20))
        samples.append((time.perf_counter_ns() - start) / 1000)
    return samples


def policies(iterations: int, indexed: bool) -> list[float]:
    cfg = load_config(HERE / "peers-full.yaml")
    admission = Admission(
        cfg, PrincipalTree(cfg), load_budgets(cfg, _NoStore(), SystemClock()), SystemClock()
    )
    context = sample_context()
    values = {
        "request.model": "gpt-4o-mini",
        "request.operation": "chat",
        "principal.team": "bench",
    }
    chosen = admission.policies.select(values) if indexed else admission.policies.all
    samples = []
    for _ in range(iterations):
        start = time.perf_counter_ns()
        chosen.evaluate(context)
        samples.append((time.perf_counter_ns() - start) / 1000)
    return samples


class _NoStore:
    def budget_overrides(self) -> list[dict[str, object]]:
        return []

    def upsert_budget(self, row: dict[str, object]) -> None:
        pass

    def spent_since(self, node: str, unit: str, since: float) -> float:
        return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=20_000)
    args = parser.parse_args()
    n = args.iterations
    rows = [
        (
            "admit + release, bare (peers.yaml)",
            asyncio.run(admissions("peers.yaml", Principal("bench", "bench", None, "key_1"), n)),
        ),
        (
            "admit + release, full (peers-full.yaml)",
            asyncio.run(
                admissions("peers-full.yaml", Principal("bench", "bench", "p1", "key_1"), n)
            ),
        ),
        ("all 20 policies (no index)", policies(n, indexed=False)),
        ("the policies the request selects", policies(n, indexed=True)),
    ]
    print("| what | p50 µs | p99 µs | mean µs |")
    print("|---|--:|--:|--:|")
    for name, samples in rows:
        s = sorted(samples)
        p50, p99 = s[len(s) // 2], s[int(len(s) * 0.99)]
        print(f"| {name} | {p50:.1f} | {p99:.1f} | {statistics.fmean(s):.1f} |")


if __name__ == "__main__":
    main()
