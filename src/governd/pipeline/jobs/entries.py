"""A job's ledger entry: who ran what, where, how long it waited and ran, what it cost, and why it ended."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import orjson

from governd.errors import GovernError
from governd.governance.scheduler import Unit
from governd.ledger import LedgerEntry
from governd.ledger.job_record import JobEvent, JobRecord, JobStatus

#: Entry status for each way a job ends (HTTP-like, as for the other actions).
_STATUS = {"succeeded": 200, "failed": 500, "cancelled": 499}


def job_entry(
    row: JobRecord, units: Mapping[str, Unit], refused: GovernError | None
) -> LedgerEntry:
    """The entry of a finished (or refused) job.

    Signals carry what a job's record needs beyond the common fields: queue,
    units and nodes, queue wait, runtime, device-seconds, every event
    (started, preempted and why, requeued) and the exit code.
    """
    held = [units[u] for u in row.units if u in units]
    signals = {
        "queue": row.queue,
        "priority_class": row.priority_class,
        "gpus": row.gpus,
        "units": [u.id for u in held],
        "queue_wait_s": round(row.queue_wait_s, 3),
        "runtime_s": round(row.runtime_s, 3),
        "device_seconds": round(row.device_seconds, 3),
        "max_runtime_s": row.max_runtime_s,
        "reserved_usd": row.reserved_usd,
        "preemptions": row.preemptions,
        "events": [{"at": e.at, "event": e.event, "detail": e.detail} for e in row.events],
        "exit_code": row.exit_code,
    }
    status = refused.status if refused else _STATUS.get(row.status, 500)
    return LedgerEntry(
        id=row.id,
        ts=row.submitted_at if row.finished_at is None else row.finished_at,
        kind="job",
        operation="job",
        principal=row.principal,
        key_id=row.key_id,
        model=row.queue,
        served_model=row.flavor,
        deployment=",".join(sorted({u.node for u in held})) or None,
        decision="deny" if refused else "allow",
        reasons=f"{row.status}: {row.reason}",
        status=status,
        error_code=refused.code if refused else (None if status == 200 else f"job_{row.status}"),
        attempts=row.preemptions + (0 if refused else 1),
        latency_ms=round(row.runtime_s * 1000, 3),
        usage_source="measured",
        cost_usd=round(row.cost_usd, 9),
        signals=orjson.dumps(signals).decode(),
    )


def ended_as_recorded(row: JobRecord, entry: Mapping[str, Any]) -> JobRecord:
    """A job's record as its ledger entry says it ended (the process died before saving it)."""
    signals = orjson.loads(entry["signals"])
    status, _, reason = entry["reasons"].partition(": ")
    return replace(
        row,
        status=JobStatus(status),
        reason=reason,
        finished_at=entry["ts"],
        exit_code=signals["exit_code"],
        runtime_s=signals["runtime_s"],
        device_seconds=signals["device_seconds"],
        cost_usd=entry["cost_usd"],
        events=[JobEvent(e["at"], e["event"], e["detail"]) for e in signals["events"]],
        pid=None,
    )
