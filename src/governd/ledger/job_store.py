"""The jobs table: every accelerator job's current state, written as it changes.

The only place a ``JobRecord`` becomes a row and back: its command and
environment, units and events are JSON columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from governd.ledger.job_record import JobEvent, JobRecord, JobStatus
from governd.ledger.leases import Fence, held
from governd.ledger.sealing import Sealer
from governd.ledger.storage import Storage, plain_rows
from governd.ledger.tables import ACTIVE_JOBS, entries_named, in_subtree, job_requests, jobs


@dataclass(frozen=True, slots=True)
class JobRequest:
    """What a replica asked of the scheduler for a job (``cancel``), by whom, when."""

    job_id: str
    kind: str
    by: str
    at: float


class JobStore:
    """Reads and writes job rows (the ledger entry of a job is written when it ends)."""

    def __init__(self, storage: Storage, sealer: Sealer) -> None:
        self._engine = storage.engine
        self._sealer = sealer
        insert = postgresql.insert if self._engine.dialect.name == "postgresql" else sqlite.insert
        self._ask = insert(job_requests).on_conflict_do_nothing()

    def put(self, *records: JobRecord, fence: Fence | None = None) -> None:
        """Create or replace jobs, in one transaction; under ``fence``, only while its lease holds."""
        if not records:
            return
        with self._engine.begin() as conn:
            if fence is not None:
                held(conn, fence)
            conn.execute(jobs.delete().where(jobs.c.id.in_([r.id for r in records])))
            conn.execute(jobs.insert(), [row_of(r, self._sealer) for r in records])

    def get(self, job_id: str) -> JobRecord | None:
        """One job."""
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).mappings().first()
        return record_of(plain_rows([row])[0], self._sealer) if row else None

    def list(
        self, principal: str | None = None, status: str | None = None, limit: int = 100
    ) -> list[JobRecord]:
        """Jobs, newest first, optionally by principal subtree and status (``active``: not done)."""
        q = sa.select(jobs).order_by(jobs.c.submitted_at.desc()).limit(limit)
        if principal:
            q = q.where(in_subtree(jobs.c.principal, principal))
        if status == "active":
            q = q.where(jobs.c.status.in_(ACTIVE_JOBS))
        elif status:
            q = q.where(jobs.c.status == status)
        with self._engine.connect() as conn:
            rows = plain_rows(conn.execute(q).mappings().all())
        return [record_of(r, self._sealer) for r in rows]

    def active_ids(self) -> Sequence[str]:
        """The ids of every job not ended."""
        q = sa.select(jobs.c.id).where(jobs.c.status.in_(ACTIVE_JOBS))
        with self._engine.connect() as conn:
            return conn.execute(q).scalars().all()

    def many(self, job_ids: Sequence[str]) -> Sequence[JobRecord]:
        """Those jobs (ids not found are left out)."""
        q = sa.select(jobs).where(jobs.c.id.in_(job_ids))
        with self._engine.connect() as conn:
            rows = plain_rows(conn.execute(q).mappings().all())
        return [record_of(r, self._sealer) for r in rows]

    def recorded(self, job_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The ledger entries of those jobs that have one (a job's entry is its end)."""
        if not job_ids:
            return {}
        c = entries_named.c
        q = sa.select(entries_named).where(c.id.in_(job_ids), c.kind == "job")
        with self._engine.connect() as conn:
            return {r["id"]: r for r in plain_rows(conn.execute(q).mappings().all())}

    def ask(self, request: JobRequest) -> None:
        """Leave a request for the scheduler (asking again changes nothing)."""
        with self._engine.begin() as conn:
            conn.execute(self._ask, [asdict(request)])

    def requests(self) -> Sequence[JobRequest]:
        """Every request not answered yet, oldest first."""
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(job_requests).order_by(job_requests.c.at)).all()
        return [JobRequest(r.job_id, r.kind, r.by, r.at) for r in rows]

    def answered(self, request: JobRequest) -> None:
        """Forget a request the scheduler has acted on."""
        c = job_requests.c
        with self._engine.begin() as conn:
            conn.execute(
                job_requests.delete().where(c.job_id == request.job_id, c.kind == request.kind)
            )


def row_of(record: JobRecord, sealer: Sealer) -> dict[str, Any]:
    """A record as a row of the ``jobs`` table (environment values sealed)."""
    row = {f: getattr(record, f) for f in _COLUMNS}
    row["status"] = str(record.status)
    env = {name: sealer.seal(value) for name, value in record.env}
    row["command"] = orjson.dumps({"argv": record.argv, "env": env}).decode()
    row["units"] = orjson.dumps(record.units).decode()
    row["events"] = orjson.dumps(
        [{"at": e.at, "event": e.event, "detail": e.detail} for e in record.events]
    ).decode()
    return row


def record_of(row: dict[str, Any], sealer: Sealer) -> JobRecord:
    """A row of the ``jobs`` table as a record (environment values opened)."""
    command = orjson.loads(row["command"])
    events = [JobEvent(e["at"], e["event"], e["detail"]) for e in orjson.loads(row["events"])]
    return JobRecord(
        **{f: row[f] for f in _COLUMNS if f != "status"},
        status=JobStatus(row["status"]),
        argv=tuple(command["argv"]),
        env=tuple((name, sealer.open(value)) for name, value in command["env"].items()),
        units=tuple(orjson.loads(row["units"])),
        events=events,
    )


#: Columns stored as they are.
_COLUMNS = tuple(
    f for f in JobRecord.__dataclass_fields__ if f not in ("argv", "env", "units", "events")
)
