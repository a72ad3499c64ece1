"""Whom to evict so that a job fits: pure functions over the cycle's state (Kueue's rules).

Candidates come from the job's own queue (``within_queue``: lower priority,
or also equal priority submitted later) and, in a cohort, from other queues
that borrow (``reclaim_within_cohort``), or with fair sharing from queues
whose share stays at least the preemptor's. Jobs already being evicted are
taken first (they free their units anyway, at no new cost); then jobs of
other queues (borrowers), lower priority first, most recently admitted
first. Victims are removed in that order until the job fits, then each is
put back, last first, if the job still fits without evicting it.

Without fair sharing, which candidates an attempt may use follows Kueue's
classical preemption: a queue under its nominal quota first tries every
candidate, on the condition that the job then fits within that nominal quota
(its own victims counted as they go); a job that would have to borrow after
preempting may evict only its own queue's jobs (and ones already leaving).
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


def candidates(state: State, job: Job, flavor: str) -> list[tuple[Job, str]]:
    """Running jobs of ``flavor`` that ``job`` may evict, in eviction order."""
    queues, quotas = state.snap.queues, state.quotas
    q = queues[job.queue]
    fair = quotas.fair_sharing(job.queue)
    reclaim = q.preemption.reclaim_within_cohort
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
            elif quotas.borrowing(other.queue, flavor):
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


Chosen = tuple[list[tuple[Job, str]], tuple[str, ...]]


def select(state: State, job: Job, flavor: str, count: int) -> Chosen | None:
    """The fewest victims (in order) after which ``job`` fits, and its units; None if none suffice.

    On success the victims are released from ``state``; on failure ``state``
    is as it was.
    """
    found = candidates(state, job, flavor)
    own = [(v, why) for v, why in found if why in (WITHIN_QUEUE, EVICTING)]
    if state.quotas.fair_sharing(job.queue) or len(own) == len(found):
        return _fewest(state, job, flavor, count, found, borrow=True)
    quotas = state.quotas
    if quotas.usage[job.queue][flavor] < quotas.nominal(job.queue, flavor):
        chosen = _fewest(state, job, flavor, count, found, borrow=False)
        if chosen is not None:
            return chosen
    return _fewest(state, job, flavor, count, own, borrow=True)


def _fits(state: State, job: Job, flavor: str, count: int, borrow: bool) -> tuple[str, ...] | None:
    """Units for the job now; without ``borrow``, only if it then stays within nominal quota."""
    quotas = state.quotas
    if not borrow and quotas.usage[job.queue][flavor] + count > quotas.nominal(job.queue, flavor):
        return None
    return state.fit(job.queue, flavor, count)


def _fewest(
    state: State,
    job: Job,
    flavor: str,
    count: int,
    found: list[tuple[Job, str]],
    borrow: bool,
) -> Chosen | None:
    taken: list[tuple[Job, str]] = []
    units = None
    for victim, reason in found:
        if not _may_take(state, job, flavor, count, victim, reason):
            continue
        state.release(victim)
        taken.append((victim, reason))
        units = _fits(state, job, flavor, count, borrow)
        if units is not None:
            break
    if units is None:
        for victim, _ in reversed(taken):
            state.restore(victim)
        return None
    kept: list[tuple[Job, str]] = []
    for victim, reason in reversed(taken[:-1]):
        state.restore(victim)
        if _fits(state, job, flavor, count, borrow) is None:
            state.release(victim)
            kept.append((victim, reason))
    kept.reverse()
    final = [*kept, taken[-1]]
    placed = _fits(state, job, flavor, count, borrow)
    assert placed is not None
    return final, placed
