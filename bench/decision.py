"""Admission's cost per call: bare, and with everything a platform team would configure.

Usage: python bench/decision.py [--iterations 20000]

Times ``Admission.admit`` then ``release`` (what governance does for one model
call: terms, policies, decide, the budget ladder, rate limits, budget holds,
settling) in process, on bench/peers.yaml (nothing to govern) and
bench/peers-full.yaml (USD and token budgets on three levels, rate limits on
two, 20 CEL policies none of which matches), and the policy evaluation alone:
the policies a request selects (``PolicySet.select``) against all 20 in one
CEL program. The *cold* rows run each admission after work that evicts the
CPU's caches, as a server's other work between two admissions does: in the
server, governance costs what the cold rows say, about twice the warm ones.
Prints a table and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from pathlib import Path

import orjson

from governd.actions import Action, Principal, Usage
from governd.clock import SystemClock
from governd.config import load_config
from governd.config.cel_env import sample_context
from governd.governance.admission import Admission
from governd.governance.principals import PrincipalTree
from governd.governance.state.setup import load_budgets

HERE = Path(__file__).parent
_FULL = "peers-full.yaml"
BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 64}


async def admissions(
    config: str, principal: Principal, iterations: int, cold: bool = False
) -> list[float]:
    cfg = load_config(HERE / config)
    clock = SystemClock()
    budgets = load_budgets(cfg, _NoStore(), clock)
    await budgets.sync()
    admission = Admission(cfg, PrincipalTree(cfg), budgets, clock)
    action = Action("r", "chat", principal, "gpt-4o-mini", BODY)
    evict = _Eviction() if cold else None
    samples = []
    for _ in range(iterations):
        if evict is not None:
            evict()
        start = time.perf_counter_ns()
        admitted = await admission.admit(action)
        await admission.release(admitted, 1e-6, Usage(input_tokens=20))
        samples.append((time.perf_counter_ns() - start) / 1000)
    return samples


class _Eviction:
    """What a server does between two admissions, roughly: other code, other data (~8 MiB)."""

    def __init__(self) -> None:
        self._rng = random.Random(7)
        self._objects = [{f"k{i}": [i, str(i), float(i)] for i in range(50)} for _ in range(3000)]
        self._memory = bytearray(8 << 20)

    def __call__(self) -> None:
        for obj in self._rng.sample(self._objects, 60):
            orjson.loads(orjson.dumps(obj))
        memory = self._memory
        for i in range(0, len(memory), 3 * 4096):
            memory[i] = (memory[i] + 1) & 255


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
    bare = Principal("bench", "bench", None, "key_1")
    full = Principal("bench", "bench", "p1", "key_1")
    rows = [
        ("admit + release, bare (peers.yaml)", asyncio.run(admissions("peers.yaml", bare, n))),
        ("admit + release, full (peers-full.yaml)", asyncio.run(admissions(_FULL, full, n))),
        (
            "admit + release, bare, cold caches",
            asyncio.run(admissions("peers.yaml", bare, n // 4, cold=True)),
        ),
        (
            "admit + release, full, cold caches",
            asyncio.run(admissions(_FULL, full, n // 4, cold=True)),
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
