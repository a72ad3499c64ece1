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
