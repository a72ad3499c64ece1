"""The scheduler's working copy of a snapshot: quotas, free units and running jobs, changed as a cycle decides."""

from __future__ import annotations

from dataclasses import replace

from governd.governance.scheduler.model import Job, Snapshot
from governd.governance.scheduler.placement import FreeUnits
from governd.governance.scheduler.quota import Quotas


class State:
    """Usage as the cycle has decided it so far (admissions and evictions applied)."""

    def __init__(self, snap: Snapshot) -> None:
        self.snap = snap
        self.quotas = Quotas(snap.queues, snap.cohorts)
        self.running: dict[str, Job] = {}
        #: Jobs admitted in this cycle: never evicted by the same cycle.
        self.fresh: set[str] = set()
        held: set[str] = set()
        for job in snap.admitted:
            held.update(job.units)
        self.free = FreeUnits(snap.units, held)
        for job in snap.admitted:
            if job.queue in snap.queues and job.units:
                self.running[job.id] = job
                self.quotas.add(job.queue, self.flavor_of(job), job.count)

    def flavor_of(self, job: Job) -> str:
        """The flavor of the units a running job holds."""
        return self.free.unit[job.units[0]].flavor

    def fit(self, queue: str, flavor: str, count: int) -> tuple[str, ...] | None:
        """Units for ``count`` of ``flavor`` in ``queue``, within quota and on one node; or None."""
        if self.quotas.available(queue, flavor) < count:
            return None
        return self.free.find(flavor, count)

    def hold(self, job: Job, flavor: str, units: tuple[str, ...], now: float) -> Job:
        """Charge ``job`` on ``units``; the job as admitted."""
        self.free.take(units)
        self.quotas.add(job.queue, flavor, job.count)
        held = replace(job, flavor=flavor, units=units, admitted_at=now)
        self.running[job.id] = held
        self.fresh.add(job.id)
        return held

    def reserve(self, queue: str, flavor: str, units: tuple[str, ...], count: int) -> None:
        """Keep units and quota for a job that waits for its victims to stop."""
        self.free.take(units)
        self.quotas.add(queue, flavor, count)

    def release(self, job: Job) -> None:
        """Give back a running job's units and quota."""
        del self.running[job.id]
        self.quotas.add(job.queue, self.flavor_of(job), -job.count)
        self.free.give(job.units)

    def restore(self, job: Job) -> None:
        """Undo ``release`` (a victim found not to be needed after all)."""
        self.free.take(job.units)
        self.quotas.add(job.queue, self.flavor_of(job), job.count)
        self.running[job.id] = job
