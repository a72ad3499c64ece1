"""A job's record: what it asked for, where it is in its life, what it used, and what happened to it.

Typed here and turned into a row only by the job store (``job_store.py``).
``JobStatus`` values are the strings the API and the ``jobs`` table use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class JobStatus(StrEnum):
    """Where a job is: waiting, holding devices, or ended (and how)."""

    QUEUED = "queued"
    ADMITTED = "admitted"
    RUNNING = "running"
    PREEMPTED = "preempted"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    REFUSED = "refused"

    @property
    def active(self) -> bool:
        """Not ended yet."""
        return self in ACTIVE


ACTIVE = frozenset({JobStatus.QUEUED, JobStatus.ADMITTED, JobStatus.RUNNING, JobStatus.PREEMPTED})


@dataclass(frozen=True, slots=True)
class JobEvent:
    """One thing that happened to a job: started, preempted and why, requeued, approved, ..."""

    at: float
    event: str
    detail: str


@dataclass(slots=True)
class JobRecord:
    """One job, as the pipeline keeps it and the store saves it."""

    id: str
    principal: str
    key_id: str | None
    queue: str
    flavor: str | None
    gpus: int
    priority: int
    priority_class: str
    max_runtime_s: float
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    submitted_at: float
    reserved_usd: float
    reserved_device_hours: float
    status: JobStatus = JobStatus.QUEUED
    reason: str = "queued"
    admitted_at: float | None = None
    finished_at: float | None = None
    units: tuple[str, ...] = ()
    events: list[JobEvent] = field(default_factory=list)
    preemptions: int = 0
    queue_wait_s: float = 0.0
    runtime_s: float = 0.0
    device_seconds: float = 0.0
    cost_usd: float = 0.0
    exit_code: int | None = None
    pid: int | None = None

    def happened(self, at: float, what: str, detail: str) -> None:
        """Add an event to the job's history."""
        self.events.append(JobEvent(round(at, 3), what, detail))
