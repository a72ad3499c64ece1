"""What SLO evaluation costs: per appended entry with 10 SLOs, per tick, and memory per SLO.

Usage: python bench/slo.py [--entries 200000]

Ten SLOs as a platform team would write them (availability, latency, TTFT,
cost and refusals on model calls, two per-model ones grouped by deployment,
two on tool calls, one on jobs) see a stream of model-call entries over four
deployments and two models, one entry per millisecond. Prints a table and
exits 0: ``observe`` per entry (the hot path, target <= 2 us), ``tick`` per
SLO group, and the memory one group's windows hold (tracemalloc).
"""

from __future__ import annotations

import argparse
import statistics
import time
import tracemalloc

from governd.config.slos import SloConfig
from governd.ledger.entries import LedgerEntry
from governd.ledger.slos.evaluator import SloEvaluator

SLOS = [
    {"name": "availability", "objective": 99.9, "sli": "availability"},
    {"name": "latency", "objective": 99, "sli": "latency", "threshold": 800},
    {"name": "ttft", "objective": 99, "sli": "ttft", "threshold": 300},
    {"name": "cost", "objective": 99, "sli": "cost", "threshold": 0.05},
    {"name": "refusals", "objective": 95, "sli": "refusals"},
    {
        "name": "mini-availability",
        "objective": 99.95,
        "sli": "availability",
        "filter": 'entry.model == "gpt-4o-mini"',
        "group_by": ["deployment"],
    },
    {
        "name": "big-latency",
        "objective": 99,
        "sli": "latency",
        "threshold": 2000,
        "filter": 'entry.model == "gpt-4o" && entry.stream',
        "group_by": ["deployment"],
    },
    {"name": "tools", "objective": 99.5, "kind": "tool_call", "sli": "availability"},
    {"name": "tool-refusals", "objective": 99, "kind": "tool_call", "sli": "refusals"},
    {"name": "jobs", "objective": 99, "kind": "job", "sli": "availability"},
]


def entries(n: int) -> list[LedgerEntry]:
    """Model calls one a millisecond: 2 models, 4 deployments, 1% failures, 2% slow."""
    return [
        LedgerEntry(
            id=f"e{i}",
            ts=1_800_000_000 + i / 1000,
            kind="model_call",
            operation="chat",
            principal="acme/team",
            model="gpt-4o-mini" if i % 3 else "gpt-4o",
            deployment=f"dep-{i % 4}",
            stream=bool(i % 2),
            status=500 if i % 100 == 0 else 200,
            latency_ms=900.0 if i % 50 == 0 else 120.0,
            ttft_ms=80.0,
            cost_usd=0.001,
        )
        for i in range(n)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=200_000)
    n = parser.parse_args().entries
    slos = [SloConfig.model_validate(s) for s in SLOS]
    stream = entries(n)
    runs = []
    for _ in range(5):
        evaluator = SloEvaluator(slos, stream[0].ts)
        start = time.perf_counter_ns()
        for entry in stream:
            evaluator.observe(entry)
        runs.append((time.perf_counter_ns() - start) / n / 1000)
    groups = sum(len(evaluator.status(name)) for name in evaluator.names)
    ticks = []
    now = stream[-1].ts
    for i in range(200):
        start = time.perf_counter_ns()
        evaluator.tick(now + 5 * (i + 1))
        ticks.append((time.perf_counter_ns() - start) / groups / 1000)
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    one = SloEvaluator(slos[:1], 0)
    one.add("availability", 1.0, 1, 0)
    one.tick(2.0)
    after = tracemalloc.take_snapshot()
    memory = sum(s.size_diff for s in after.compare_to(before, "filename"))
    tracemalloc.stop()
    print(f"| what ({n:,} model-call entries, 10 SLOs, {groups} groups) | value |")
    print("|---|--:|")
    print(
        f"| observe per entry, median of 5 runs (target <= 2 us) | {statistics.median(runs):.2f} us |"
    )
    print(f"| tick per SLO group, median | {statistics.median(ticks):.2f} us |")
    print(f"| memory of one SLO with one group (default windows) | {memory / 1024:.1f} KiB |")


if __name__ == "__main__":
    main()
