"""``job_record``: a job's record with defaults, for tests of the job store and pipeline."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from governd.ledger.job_record import JobRecord, JobStatus
from governd.ledger.sealing import Sealer


def job_record(
    job_id: str, principal: str, status: str = "queued", at: float = 0.0, **changes: Any
) -> JobRecord:
    """A 2-GPU job of queue ``q`` submitted at ``at``; ``changes`` set any other field."""
    base = JobRecord(
        id=job_id,
        principal=principal,
        key_id=None,
        queue="q",
        flavor="h100",
        gpus=2,
        priority=100,
        priority_class="standard",
        max_runtime_s=60.0,
        argv=("true",),
        env=(),
        submitted_at=at,
        reserved_usd=1.0,
        reserved_device_hours=0.5,
        status=JobStatus(status),
        reason=status,
    )
    return replace(base, **changes)


def fixed_sealer() -> Sealer:
    """A sealer with a fixed key, for stores in unit tests."""
    return Sealer(b"governd-test-sealing-key-32bytes")
