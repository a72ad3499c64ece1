"""The jobs table: every accelerator job's current state, written as it changes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from governd.ledger.storage import Storage, plain_rows
from governd.ledger.tables import ACTIVE_JOBS, entries_named, in_subtree, jobs


class JobStore:
    """Reads and writes job rows (the ledger entry of a job is written when it ends)."""

    def __init__(self, storage: Storage) -> None:
        self._engine = storage.engine

    def put(self, *rows: dict[str, Any]) -> None:
        """Create or replace job rows, in one transaction."""
        if not rows:
            return
        with self._engine.begin() as conn:
            conn.execute(jobs.delete().where(jobs.c.id.in_([r["id"] for r in rows])))
            conn.execute(jobs.insert(), list(rows))

    def get(self, job_id: str) -> dict[str, Any] | None:
        """One job."""
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).mappings().first()
        return plain_rows([row])[0] if row else None

    def list(
        self, principal: str | None = None, status: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Jobs, newest first, optionally by principal subtree and status (``active``: not done)."""
        q = sa.select(jobs).order_by(jobs.c.submitted_at.desc()).limit(limit)
        if principal:
            q = q.where(in_subtree(jobs.c.principal, principal))
        if status == "active":
            q = q.where(jobs.c.status.in_(ACTIVE_JOBS))
        elif status:
            q = q.where(jobs.c.status == status)
        with self._engine.connect() as conn:
            return plain_rows(conn.execute(q).mappings().all())

    def recorded(self, job_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The ledger entries of those jobs that have one (a job's entry is its end)."""
        if not job_ids:
            return {}
        c = entries_named.c
        q = sa.select(entries_named).where(c.id.in_(job_ids), c.kind == "job")
        with self._engine.connect() as conn:
            return {r["id"]: r for r in plain_rows(conn.execute(q).mappings().all())}
