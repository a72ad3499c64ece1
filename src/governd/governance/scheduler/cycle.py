"""One scheduling cycle, in Kueue's shape: a pure function from a snapshot to a plan.

Phases:
 1. copy the snapshot's usage into a working state;
 2. line up each queue's pending jobs (priority, then submission time);
 3. nominate each queue's head: the flavor it fits in now, or the one it
    would need to preempt for;
 4. order the heads: fair share after admission (in fair-sharing cohorts),
    jobs within their nominal quota before borrowers, higher priority, older;
    the first head in that order goes next (keys are re-checked when taken,
    since each placement changes usage);
 5. admit it, or choose victims and keep the freed units for it until they
    stop, or leave it waiting with the reason;
 6. advance its queue: a best-effort queue moves past a head that waits, a
    strict one stops for this cycle. Repeat from 3 until no queue has a head.

Taking one head at a time by key (rather than one round of every queue's
head, as Kueue does per cycle) lets one cycle split borrowed capacity by
fair-sharing weight instead of evenly.
"""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass

from governd.governance.scheduler import preemption
from governd.governance.scheduler.model import Admission, Eviction, Job, Plan, Snapshot
from governd.governance.scheduler.state import State


@dataclass(slots=True)
class _Entry:
    job: Job
    flavor: str | None
    why: str


def schedule(snap: Snapshot) -> Plan:
    """Decide which pending jobs to admit and which running ones to evict, now."""
    state = State(snap)  # phase 1
    lines = _line_up(snap)  # phase 2
    plan = Plan()
    # (queue, asked flavor) -> smallest count that waited: larger ones of lower priority would too.
    failed: dict[tuple[str, str | None], int] = {}
    heads = [(_order(state, _nominate(state, line[0], failed)), q) for q, line in lines.items()]
    heapq.heapify(heads)
    while heads:
        _, queue = heapq.heappop(heads)
        line = lines[queue]
        entry = _nominate(state, line[0], failed)  # phase 3
        now_key = _order(state, entry)  # phase 4: keys go stale as others are placed
        if heads and now_key > heads[0][0]:
            heapq.heappush(heads, (now_key, queue))
            continue
        job = entry.job
        outcome = _place(state, entry, plan)  # phase 5
        if outcome == "waiting":
            plan.waiting[job.id] = entry.why
            failed[(queue, job.flavor)] = min(job.count, failed.get((queue, job.flavor), job.count))
        line.popleft()  # phase 6
        strict = snap.queues[queue].strategy == "strict_fifo"
        if line and not (strict and outcome != "admitted"):
            next_entry = _nominate(state, line[0], failed)
            heapq.heappush(heads, (_order(state, next_entry), queue))
    return plan


def _line_up(snap: Snapshot) -> dict[str, deque[Job]]:
    by_queue: dict[str, list[Job]] = {}
    for job in snap.pending:
        by_queue.setdefault(job.queue, []).append(job)
    return {
        q: deque(sorted(jobs, key=lambda j: (-j.priority, j.submitted, j.id)))
        for q, jobs in by_queue.items()
        if q in snap.queues
    }


def _nominate(state: State, job: Job, failed: dict[tuple[str, str | None], int]) -> _Entry:
    quotas = state.snap.queues[job.queue].quotas
    flavors = [job.flavor] if job.flavor is not None else list(quotas)
    if not any(f in quotas for f in flavors):
        return _Entry(job, None, f"queue {job.queue} has no quota for {job.flavor}")
    if job.count >= failed.get((job.queue, job.flavor), job.count + 1):
        return _Entry(job, None, "no room: a smaller job of this queue did not fit")
    for flavor in flavors:
        if state.fit(job.queue, flavor, job.count) is not None:
            return _Entry(job, flavor, "")
    flavor = flavors[0]
    room = state.quotas.available(job.queue, flavor)
    why = (
        f"quota: queue {job.queue} may use {room} more {flavor}, the job asks {job.count}"
        if room < job.count
        else f"capacity: no node has {job.count} free {flavor}"
    )
    return _Entry(job, flavor, why)


def _order(state: State, e: _Entry) -> tuple[bool, float, int, float, str]:
    job, quotas = e.job, state.quotas
    share = 0.0
    borrowing = False
    if e.flavor is not None:
        if quotas.fair_sharing(job.queue):
            share = quotas.share(job.queue, (e.flavor, job.count))
        else:
            used = quotas.usage[job.queue][e.flavor] + job.count
            borrowing = used > quotas.nominal(job.queue, e.flavor)
    return (borrowing, share, -job.priority, job.submitted, job.id)


def _place(state: State, e: _Entry, plan: Plan) -> str:
    """Admit the entry's job, or evict for it: ``admitted``, ``preempting`` or ``waiting``."""
    job, flavor = e.job, e.flavor
    if flavor is None:
        return "waiting"
    units = state.fit(job.queue, flavor, job.count)
    if units is not None:
        state.hold(job, flavor, units, state.snap.now)
        borrowing = state.quotas.borrowing(job.queue, flavor)
        plan.admit.append(Admission(job.id, flavor, units, borrowing))
        return "admitted"
    chosen = preemption.select(state, job, flavor, job.count)
    if chosen is None:
        return "waiting"
    victims, units = chosen
    state.reserve(job.queue, flavor, units, job.count)
    fresh = [Eviction(v.id, job.id, reason) for v, reason in victims if not v.evicting]
    plan.evict.extend(fresh)
    plan.waiting[job.id] = f"preempting: waiting for {len(victims)} job(s) to stop"
    return "preempting"
