"""decide() latency: 20 CEL policies on a 4-level principal tree (org > team > project > key).

Usage: python bench/decision.py [--iterations 20000]

Measures the admission decision alone (policy context, one CEL evaluation of
all 20 policies, the verdict), and the policy-free path for comparison.
Prints a table and exits 0. Target: p50 <= 20 µs.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from governd.actions import Action, Principal
from governd.clock import SystemClock
from governd.config import parse_config
from governd.governance.admission import Admission
from governd.governance.budgets import Budgets, LocalState
from governd.governance.decide import decide
from governd.governance.principals import PrincipalTree
from governd.governance.state.setup import config_budgets

CONDITIONS = [
    'request.model == "gpt-4o" && (time.hour < 7 || time.hour >= 20)',
    'principal.team == "support" && request.max_tokens > 1024',
    "request.n > 4",
    "run.steps > 200",
    'request.operation == "embedding" && request.messages > 0',
    'principal.path.startsWith("acme/research/") && request.stream',
    "request.tools > 64",
    'request.user == "blocked"',
    'time.weekday >= 5 && request.model.startsWith("gpt-4o")',
    'principal.key == "key_revoked_soon"',
]


def config(policies: int) -> str:
    lines = [
        "upstreams: {s: {kind: sim}}",
        "models:",
        "  gpt-4o: {deployments: [{upstream: s, model: x}], degrade_to: gpt-4o-mini}",
        "  gpt-4o-mini: {deployments: [{upstream: s, model: y}]}",
        "principals: {org: acme, teams: {research: {projects: {agents: {}}}, support: {}}}",
        "policies:" if policies else "policies: []",
    ]
    for i in range(policies):
        effect = ["deny", "degrade", "set"][i % 3]
        extra = ", set: {max_tokens: 512}" if effect == "set" else ""
        lines.append(
            f"  - {{id: p{i}, when: '{CONDITIONS[i % len(CONDITIONS)]}', effect: {effect}{extra}}}"
        )
    return "\n".join(lines) + "\n"


async def measure(policies: int, iterations: int) -> list[float]:
    cfg = parse_config(config(policies))
    clock = SystemClock()
    budgets = Budgets(LocalState(), __import__("zoneinfo").ZoneInfo("UTC"), clock)
    for key, limit in config_budgets(cfg):
        budgets.set(key, limit)
    admission = Admission(cfg, PrincipalTree(cfg), budgets, clock)
    tree = PrincipalTree(cfg)
    who = Principal("acme", "research", "agents", "key_1")
    body = {
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 256,
        "stream": True,
    }
    action = Action("r", "chat", who, "gpt-4o", body, stream=True, run_id="run-1")
    allowed = tree.models_for(who)
    samples = []
    for _ in range(iterations):
        start = time.perf_counter_ns()
        matches = admission.policies.evaluate(await admission._context(action))
        decide(action, action.model in allowed, matches, "allow", "gpt-4o-mini")
        samples.append((time.perf_counter_ns() - start) / 1000)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=20_000)
    args = parser.parse_args()
    print("| policies | p50 µs | p99 µs | mean µs |")
    print("|--:|--:|--:|--:|")
    for n in (0, 1, 20):
        s = sorted(asyncio.run(measure(n, args.iterations)))
        p50, p99 = s[len(s) // 2], s[int(len(s) * 0.99)]
        print(f"| {n} | {p50:.1f} | {p99:.1f} | {statistics.fmean(s):.1f} |")


if __name__ == "__main__":
    main()
