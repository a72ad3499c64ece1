"""The jobs table: rows by id, by subtree and status; the migrations build what the code declares."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from governd.errors import GovernError
from governd.ledger import Storage
from governd.ledger.job_record import JobEvent, JobStatus
from governd.ledger.job_store import JobStore
from governd.ledger.sealing import Sealer
from governd.ledger.tables import jobs, metadata
from governd.testing.jobs import fixed_sealer, job_record


def test_rows_by_id_subtree_and_status(storage_url: str) -> None:
    storage = Storage(storage_url)
    store = JobStore(storage, fixed_sealer())
    store.put(job_record("j1", "acme/a", "running", 1))
    store.put(job_record("j2", "acme/a/p", "succeeded", 2))
    store.put(job_record("j3", "acme/ab", "queued", 3))
    store.put(job_record("j1", "acme/a", "preempted", 1, preemptions=1))
    found = store.get("j1")
    assert found is not None and (found.status, found.preemptions) == (JobStatus.PREEMPTED, 1)
    assert store.get("nope") is None
    assert [r.id for r in store.list("acme/a")] == ["j2", "j1"]
    assert [r.id for r in store.list(status="active")] == ["j3", "j1"]
    assert [r.id for r in store.list(status="succeeded")] == ["j2"]


def test_a_record_comes_back_as_it_was_saved(storage_url: str) -> None:
    """Command, environment, units and events are typed in the record, JSON only in the table."""
    storage = Storage(storage_url)
    store = JobStore(storage, fixed_sealer())
    saved = job_record(
        "j1",
        "acme/a",
        "running",
        1,
        argv=("python", "train.py", "--lr", "0.1"),
        env=(("HF_HOME", "/data"), ("SEED", "7")),
        units=("box:0", "box:1"),
        events=[JobEvent(1.5, "started", "box:0,box:1"), JobEvent(2.0, "preempted", "x by y")],
        pid=4242,
    )
    store.put(saved)
    assert store.get("j1") == saved
    storage.close()


def test_environment_values_are_sealed_at_rest(storage_url: str) -> None:
    storage = Storage(storage_url)
    store = JobStore(storage, fixed_sealer())
    secret = "sk-a-credential-the-job-needs"
    store.put(job_record("j1", "acme/a", "queued", 1, env=(("TOKEN", secret),)))
    with storage.engine.connect() as conn:
        (stored,) = conn.execute(sa.select(jobs.c.command)).scalars().all()
    assert secret not in stored and "TOKEN" in stored, "names in clear, values sealed"
    assert store.get("j1").env == (("TOKEN", secret),)  # type: ignore[union-attr]
    other = JobStore(storage, Sealer(b"another-key-of-exactly-32-bytes!"))
    with pytest.raises(GovernError, match="signing key changed"):
        other.get("j1")
    storage.close()


def test_the_migrations_build_the_declared_schema(storage_url: str) -> None:
    storage = Storage(storage_url)
    with storage.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    storage.close()
    assert diff == []


def test_device_hours_spent_count_finished_jobs_of_the_subtree(storage_url: str) -> None:
    storage = Storage(storage_url)
    store = JobStore(storage, fixed_sealer())
    done: dict[str, Any] = {"device_seconds": 5400.0, "finished_at": 100.0}
    store.put(job_record("j1", "acme/a", "succeeded", 1, **done))
    store.put(job_record("j2", "acme/a/p", "failed", 2, **done, key_id="key_k"))
    store.put(job_record("j3", "acme/a", "preempted", 3, **done))  # not ended: still held
    store.put(job_record("j4", "acme/b", "succeeded", 4, **done))
    store.put(job_record("j5", "acme/a", "succeeded", 5, **{**done, "finished_at": 10.0}))
    assert storage.spent_since("acme/a", "device_hours", 50.0) == 3.0
    assert storage.spent_since("acme/a/p/key_k", "device_hours", 50.0) == 1.5
    assert storage.spent_since("acme", "device_hours", 0.0) == 6.0
    storage.close()
