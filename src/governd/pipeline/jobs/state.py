"""An unfinished job as this process holds it: its record, its scheduler view."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, replace

from governd.config.compute import ComputeConfig
from governd.execution.executors import Execution
from governd.governance.budgets import Hold
from governd.governance.scheduler import Job, Snapshot, Unit
from governd.ledger.job_record import JobRecord, JobStatus


@dataclass(slots=True)
class Live:
    """An unfinished job: its record, and what this process holds for it."""

    row: JobRecord
    hold: Hold
    execution: Execution | None = None
    started: float = 0.0
    stopping: tuple[str, str] | None = None  # (status it ends in, why)
    timer: asyncio.TimerHandle | None = None
    not_before: float = 0.0  # when the executor may be tried again
    approval: str | None = None  # the approval it waits for before it may be scheduled
    ending: bool = False  # its entry is being recorded: it is over, whatever its row says yet

    @property
    def holds_units(self) -> bool:
        """Admitted (starting) or running: its units are taken."""
        return self.execution is not None or self.row.status is JobStatus.ADMITTED


def awaiting_approval(row: JobRecord) -> tuple[str, str] | None:
    """(approval id, policy) of a job asked to wait for approval and not yet approved, else None."""
    asked = None
    for happened in row.events:
        if happened.event == "awaiting_approval":
            approval_id, _, policy = happened.detail.partition(" ")
            asked = (approval_id, policy)
        elif happened.event == "approved":
            asked = None
    return asked


def job_of(live: Live) -> Job:
    """The job as the scheduler sees it."""
    row = live.row
    return Job(
        row.id,
        row.queue,
        row.gpus,
        row.priority,
        row.submitted_at,
        row.flavor,
        row.units,
        row.admitted_at,
    )


def admit(live: Live, flavor: str, units: tuple[str, ...], now: float) -> None:
    """Mark the job admitted on ``units`` (it starts once the plan is saved)."""
    row = live.row
    waited_since = max(row.submitted_at, row.finished_at or 0.0)
    row.status = JobStatus.ADMITTED
    row.reason = f"starting on {', '.join(units)}"
    row.flavor = flavor
    row.units = units
    row.admitted_at = now
    row.finished_at = None
    row.queue_wait_s = row.queue_wait_s + (now - waited_since)


def requeue_after_restart(row: JobRecord, now: float) -> None:
    """Queue again a job governd died under (that attempt's end was never seen: no charge)."""
    row.happened(now, "requeued", "governd restarted")
    row.status = JobStatus.QUEUED
    row.units = ()
    row.pid = None
    row.reason = "requeued: governd restarted"


def snapshot_of(
    jobs: Iterable[Live], units: tuple[Unit, ...], compute: ComputeConfig, now: float
) -> Snapshot:
    """What a scheduling cycle decides over: capacity, queues, and every unfinished job now."""
    admitted, pending = [], []
    for live in jobs:
        job = job_of(live)
        if live.holds_units:
            admitted.append(replace(job, evicting=live.stopping is not None))
        elif (
            live.row.status in (JobStatus.QUEUED, JobStatus.PREEMPTED)
            and live.not_before <= now
            and live.approval is None
            and not live.ending
        ):
            pending.append(job)
    return Snapshot(units, compute.queues, compute.cohorts, tuple(admitted), tuple(pending), now)
