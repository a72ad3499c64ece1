"""The jobs table: rows by id, by subtree and status; the migrations build what the code declares."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from governd.ledger import Storage
from governd.ledger.job_store import JobStore
from governd.ledger.tables import metadata


def row(job_id: str, principal: str, status: str, at: float) -> dict[str, Any]:
    return {
        "id": job_id,
        "principal": principal,
        "key_id": None,
        "queue": "q",
        "flavor": "h100",
        "gpus": 2,
        "priority": 100,
        "priority_class": "standard",
        "max_runtime_s": 60.0,
        "command": '{"argv": ["true"], "env": {}}',
        "status": status,
        "reason": status,
        "submitted_at": at,
        "admitted_at": None,
        "finished_at": None,
        "units": "[]",
        "events": "[]",
        "preemptions": 0,
        "queue_wait_s": 0.0,
        "runtime_s": 0.0,
        "device_seconds": 0.0,
        "cost_usd": 0.0,
        "reserved_usd": 1.0,
        "reserved_device_hours": 0.5,
        "exit_code": None,
        "pid": None,
    }


def test_rows_by_id_subtree_and_status(storage_url: str) -> None:
    storage = Storage(storage_url)
    store = JobStore(storage)
    store.put(row("j1", "acme/a", "running", 1))
    store.put(row("j2", "acme/a/p", "succeeded", 2))
    store.put(row("j3", "acme/ab", "queued", 3))
    store.put({**row("j1", "acme/a", "preempted", 1), "preemptions": 1})
    assert store.get("j1") is not None and store.get("j1")["preemptions"] == 1  # type: ignore[index]
    assert store.get("nope") is None
    assert [r["id"] for r in store.list("acme/a")] == ["j2", "j1"]
    assert [r["id"] for r in store.list(status="active")] == ["j3", "j1"]
    assert [r["id"] for r in store.list(status="succeeded")] == ["j2"]
    storage.close()


def test_the_migrations_build_the_declared_schema(storage_url: str) -> None:
    storage = Storage(storage_url)
    with storage.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    storage.close()
    assert diff == []


def test_device_hours_spent_count_finished_jobs_of_the_subtree(storage_url: str) -> None:
    storage = Storage(storage_url)
    store = JobStore(storage)
    done = {"device_seconds": 5400.0, "finished_at": 100.0}
    store.put({**row("j1", "acme/a", "succeeded", 1), **done})
    store.put({**row("j2", "acme/a/p", "failed", 2), **done, "key_id": "key_k"})
    store.put({**row("j3", "acme/a", "preempted", 3), **done})  # not ended: still held
    store.put({**row("j4", "acme/b", "succeeded", 4), **done})
    store.put({**row("j5", "acme/a", "succeeded", 5), **done, "finished_at": 10.0})
    assert storage.spent_since("acme/a", "device_hours", 50.0) == 3.0
    assert storage.spent_since("acme/a/p/key_k", "device_hours", 50.0) == 1.5
    assert storage.spent_since("acme", "device_hours", 0.0) == 6.0
    storage.close()
