"""Whom to evict so that a job fits: pure functions over the cycle's state (Kueue's rules).

Candidates come from the job's own queue (``within_queue``: lower priority,
or also equal priority submitted later) and, in a cohort, from other queues
that borrow (``reclaim_within_cohort``), or with fair sharing from queues
whose share stays at least the preemptor's. Jobs already being evicted are
taken first (they free their units anyway, at no new cost); then jobs of
other queues (borrowers), lower priority first, most recently admitted
first. Victims are removed in that order until the job fits, then each is
put back, last first, if the job still fits without evicting it.
"""

from __future__ import annotations

from governd.governance.scheduler.model import Job
from governd.governance.scheduler.state import State

WITHIN_QUEUE = "within_queue"
RECLAIM = "reclaim_within_cohort"
FAIR_SHARING = "fair_sharing"
EVICTING = "evicting"


def _within_queue(policy: str, job: Job, other: Job) -> bool:
    if policy == "lower_priority":
        return other.priority < job.priority
    if policy == "lower_or_newer_equal_priority":
        return other.priority < job.priority or (
            other.priority == job.priority and other.submitted > job.submitted
        )
    return False


def candidates(state: State, job: Job, flavor: str, count: int) -> list[tuple[Job, str]]:
    """Running jobs that ``job`` may evict for ``count`` units of ``flavor``, in eviction order."""
    queues, quotas = state.snap.queues, state.quotas
    q = queues[job.queue]
    fair = quotas.fair_sharing(job.queue)
    reclaim = q.preemption.reclaim_within_cohort
    within_nominal = quotas.usage[job.queue][flavor] + count <= quotas.nominal(job.queue, flavor)
    out: list[tuple[Job, str]] = []
    for other in state.running.values():
        if other.id in state.fresh or state.flavor_of(other) != flavor:
            continue
        if other.evicting:
            out.append((other, EVICTING))
        elif other.queue == job.queue:
            if _within_queue(q.preemption.within_queue, job, other):
                out.append((other, WITHIN_QUEUE))
        elif q.cohort is not None and queues[other.queue].cohort == q.cohort and reclaim != "never":
            if reclaim == "lower_priority" and other.priority >= job.priority:
                continue
            if fair:
                out.append((other, FAIR_SHARING))
            elif within_nominal and quotas.borrowing(other.queue, flavor):
                out.append((other, RECLAIM))
    out.sort(
        key=lambda c: (
            c[1] != EVICTING,
            c[0].queue == job.queue,
            c[0].priority,
            -(c[0].admitted_at or 0.0),
        )
    )
    return out


def _may_take(state: State, job: Job, flavor: str, count: int, victim: Job, reason: str) -> bool:
    """Re-checked as victims go: a lender reclaims only from a queue that still borrows."""
    quotas = state.quotas
    if reason == RECLAIM:
        return quotas.borrowing(victim.queue, flavor)
    if reason == FAIR_SHARING:
        mine = quotas.share(job.queue, (flavor, count))
        theirs = quotas.share(victim.queue, (flavor, -victim.count))
        return quotas.borrowing(victim.queue, flavor) and mine <= theirs
    return True


def select(
    state: State, job: Job, flavor: str, count: int
) -> tuple[list[tuple[Job, str]], tuple[str, ...]] | None:
    """The fewest victims (in order) after which ``job`` fits, and its units; None if none suffice.

    On success the victims are released from ``state``; on failure ``state``
    is as it was.
    """
    taken: list[tuple[Job, str]] = []
    units = None
    for victim, reason in candidates(state, job, flavor, count):
        if not _may_take(state, job, flavor, count, victim, reason):
            continue
        state.release(victim)
        taken.append((victim, reason))
        units = state.fit(job.queue, flavor, count)
        if units is not None:
            break
    if units is None:
        for victim, _ in reversed(taken):
            state.restore(victim)
        return None
    kept: list[tuple[Job, str]] = []
    for victim, reason in reversed(taken[:-1]):
        state.restore(victim)
        if state.fit(job.queue, flavor, count) is None:
            state.release(victim)
            kept.append((victim, reason))
    kept.reverse()
    final = [*kept, taken[-1]]
    found = state.fit(job.queue, flavor, count)
    assert found is not None
    return final, found
