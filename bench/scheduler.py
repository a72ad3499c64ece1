"""The job scheduler: one cycle at scale, and a synthetic trace against a FIFO baseline.

Usage: python bench/scheduler.py [--jobs 10000] [--devices 1000] [--trace 3000] [--seed 7]

Part 1 times ``schedule()`` on 10,000 pending jobs of mixed sizes and
priorities in 8 queues (two cohorts) over 1,000 devices (125 nodes of 8, two
NVLink domains each): from an empty cluster, and from a full one (where
every pending job must be ruled out, preemption tried). Target: <= 100 ms.

Part 2 replays one synthetic trace (Poisson arrivals at ~95% offered load,
sizes 1-8, 10% critical) twice in simulated time: governd's queues
(best-effort FIFO, priorities, borrowing, preemption with requeue) and a
FIFO baseline (one strict FIFO queue, no priorities, no preemption). Prints
utilisation and p50/p95 queue wait, overall and for critical jobs.
"""

from __future__ import annotations

import argparse
import heapq
import random
import statistics
import time
from dataclasses import dataclass, replace

from governd.config.compute import ComputeConfig
from governd.governance.scheduler import Job, Snapshot, inventory, schedule

SIZES = (1, 1, 1, 2, 2, 4, 8)
#: Offered load: device-time asked per unit of time, as a fraction of the devices.
LOAD = 0.95
MEAN_RUNTIME = 100.0


def cluster(devices: int, queues: dict[str, dict[str, object]]) -> ComputeConfig:
    """``devices`` H100s in nodes of 8 (NVLink domains of 4), and the given queues."""
    return ComputeConfig.model_validate(
        {
            "flavors": {"h100": {"price_per_hour": 4.0}},
            "nodes": {
                f"n{i}": {"devices": [{"flavor": "h100", "count": 8, "nvlink": 4}]}
                for i in range(devices // 8)
            },
            "cohorts": {"c0": {}, "c1": {"fair_sharing": True}},
            "queues": queues,
        }
    )


def team_queues(devices: int, teams: int = 8) -> dict[str, dict[str, object]]:
    share = devices // teams
    return {
        f"q{t}": {"cohort": f"c{t % 2}", "quotas": {"h100": {"nominal": share}}}
        for t in range(teams)
    }


def fifo_queue(devices: int) -> dict[str, dict[str, object]]:
    return {
        "fifo": {
            "strategy": "strict_fifo",
            "quotas": {"h100": {"nominal": devices}},
            "preemption": {"within_queue": "never", "reclaim_within_cohort": "never"},
        }
    }


def random_jobs(rng: random.Random, n: int, queues: list[str]) -> list[Job]:
    return [
        Job(
            f"j{i}",
            rng.choice(queues),
            rng.choice(SIZES),
            rng.choice((10, 100, 100, 1000)),
            float(i),
            "h100",
        )
        for i in range(n)
    ]


def time_cycle(cfg: ComputeConfig, admitted: tuple[Job, ...], pending: list[Job]) -> float:
    """Median milliseconds of one cycle over 5 runs."""
    units = inventory(cfg, {})
    snap = Snapshot.of(cfg, units, admitted, tuple(pending), 1e6)
    runs = []
    for _ in range(5):
        start = time.perf_counter()
        schedule(snap)
        runs.append((time.perf_counter() - start) * 1000)
    return statistics.median(runs)


def part1(args: argparse.Namespace) -> None:
    rng = random.Random(args.seed)
    cfg = cluster(args.devices, team_queues(args.devices))
    pending = random_jobs(rng, args.jobs, list(cfg.queues))
    empty_ms = time_cycle(cfg, (), pending)
    units = inventory(cfg, {})
    plan = schedule(Snapshot.of(cfg, units, (), tuple(pending), 0.0))
    by_id = {j.id: j for j in pending}
    full = tuple(
        replace(by_id[a.job], units=a.units, admitted_at=0.0, priority=1000) for a in plan.admit
    )
    used = sum(len(a.units) for a in plan.admit)
    rest = [j for j in pending if j.id not in {a.job for a in plan.admit}]
    full_ms = time_cycle(cfg, full, rest)
    print(f"one cycle, {args.jobs:,} pending jobs, {args.devices:,} devices (target <= 100 ms)\n")
    print("| cluster | admitted in cycle | cycle ms |")
    print("|---|--:|--:|")
    print(f"| empty | {len(plan.admit):,} jobs, {used:,} devices | {empty_ms:.1f} |")
    print(f"| full (none can preempt) | 0 | {full_ms:.1f} |\n")


@dataclass(frozen=True, slots=True)
class Arrival:
    job: Job
    runtime: float


def trace(rng: random.Random, n: int, devices: int, queues: list[str]) -> list[Arrival]:
    """Poisson arrivals sized so that offered load is about ``LOAD`` of ``devices``."""
    mean_size = statistics.fmean(SIZES)
    rate = LOAD * devices / (mean_size * MEAN_RUNTIME)
    t, out = 0.0, []
    for i in range(n):
        t += rng.expovariate(rate)
        critical = rng.random() < 0.1
        job = Job(
            f"t{i}", rng.choice(queues), rng.choice(SIZES), 1000 if critical else 100, t, "h100"
        )
        out.append(Arrival(job, rng.expovariate(1 / MEAN_RUNTIME)))
    return out


def simulate(cfg: ComputeConfig, arrivals: list[Arrival], critical: set[str]) -> dict[str, float]:
    """Replay arrivals; evicted jobs are requeued and start over. Returns the trace's figures."""
    units = inventory(cfg, {})
    runtime = {a.job.id: a.runtime for a in arrivals}
    events: list[tuple[float, int, str, str]] = []  # (time, seq, kind, job id)
    for seq, a in enumerate(arrivals):
        events.append((a.job.submitted, seq, "arrive", a.job.id))
    heapq.heapify(events)
    jobs = {a.job.id: a.job for a in arrivals}
    pending: dict[str, Job] = {}
    running: dict[str, Job] = {}
    finish: dict[str, float] = {}
    waits: dict[str, float] = {}
    busy = 0.0
    last = 0.0
    horizon = arrivals[-1].job.submitted  # utilisation while work arrives, not the drain after
    seq = len(arrivals)
    while events:
        now, _, kind, jid = heapq.heappop(events)
        if last < horizon:
            busy += sum(j.count for j in running.values()) * (min(now, horizon) - last)
        last = now
        if kind == "arrive":
            pending[jid] = jobs[jid]
        elif jid in running and finish.get(jid) == now:
            del running[jid]
        if events and events[0][0] == now:
            continue
        plan = schedule(
            Snapshot.of(cfg, units, tuple(running.values()), tuple(pending.values()), now)
        )
        for e in plan.evict:
            victim = running.pop(e.job)
            finish.pop(e.job)
            pending[e.job] = replace(victim, units=(), admitted_at=None)
        for a in plan.admit:
            job = pending.pop(a.job)
            running[a.job] = replace(job, units=a.units, admitted_at=now)
            waits.setdefault(a.job, now - job.submitted)
            finish[a.job] = now + runtime[a.job]
            seq += 1
            heapq.heappush(events, (finish[a.job], seq, "finish", a.job))
    capacity = len(units) * horizon
    all_waits = sorted(waits.values())
    crit = sorted(w for jid, w in waits.items() if jid in critical)
    return {
        "util": busy / capacity,
        "p50": _pct(all_waits, 0.5),
        "p95": _pct(all_waits, 0.95),
        "crit_p50": _pct(crit, 0.5),
        "crit_p95": _pct(crit, 0.95),
    }


def _pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(len(values) * q))] if values else 0.0


def part2(args: argparse.Namespace) -> None:
    devices = args.devices // 4
    teams = cluster(devices, team_queues(devices))
    arrivals = trace(random.Random(args.seed), args.trace, devices, list(teams.queues))
    fifo = cluster(devices, fifo_queue(devices))
    fifo_arrivals = [
        Arrival(replace(a.job, queue="fifo", priority=100), a.runtime) for a in arrivals
    ]
    critical = {a.job.id for a in arrivals if a.job.priority == 1000}
    rows = [
        ("FIFO baseline", simulate(fifo, fifo_arrivals, critical)),
        ("governd", simulate(teams, arrivals, critical)),
    ]
    print(
        f"synthetic trace: {args.trace:,} jobs, {devices} devices, ~{LOAD:.0%} offered load; "
        f"waits in simulated time, mean runtime {MEAN_RUNTIME:g}\n"
    )
    print("| scheduler | utilisation | wait p50 | wait p95 | critical p50 | critical p95 |")
    print("|---|--:|--:|--:|--:|--:|")
    for name, r in rows:
        print(
            f"| {name} | {r['util']:.1%} | {r['p50']:.1f} | {r['p95']:.1f} | "
            f"{r['crit_p50']:.1f} | {r['crit_p95']:.1f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--devices", type=int, default=1_000)
    parser.add_argument("--trace", type=int, default=3_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    part1(args)
    part2(args)


if __name__ == "__main__":
    main()
