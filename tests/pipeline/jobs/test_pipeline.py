"""The job pipeline on a fake executor: preemption, restart, approval and a budget's end, no processes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from governd.actions import Principal
from governd.clock import SystemClock
from governd.config import parse_config
from governd.governance.admission import Admission
from governd.governance.approvals import Approvals
from governd.governance.principals import PrincipalTree
from governd.governance.scheduler import inventory
from governd.governance.state.setup import load_budgets
from governd.ledger import LedgerWriter, Storage
from governd.ledger.job_record import JobRecord
from governd.ledger.job_store import JobStore
from governd.ledger.leases import Leases
from governd.observe.metrics import Metrics
from governd.pipeline.jobs.leadership import Leadership
from governd.pipeline.jobs.pipeline import Jobs
from governd.pipeline.jobs.terms import JobSpec
from governd.pipeline.recorder import Recorder
from governd.testing.executors import FakeExecutor
from governd.testing.jobs import fixed_sealer

CONFIG = """
principals: {org: acme, teams: {research: {budgets: [{unit: usd, period: day, limit: 1000}]}}}
compute:
  flavors: {h100: {price_per_hour: 3600}}
  nodes: {box: {devices: [{flavor: h100, count: 8}]}}
  queues: {research: {quotas: {h100: {nominal: 8}}}}
  default_max_runtime_s: 60
policies:
  - {id: big-jobs-need-a-human, when: 'job.gpus > 6', effect: require_approval}
"""
WHO = Principal("acme", "research")


@asynccontextmanager
async def pipeline(
    tmp: Path, executor: FakeExecutor
) -> AsyncIterator[tuple[Jobs, Storage, Approvals]]:
    """A job pipeline on a real SQLite ledger and the fake executor; closed on exit."""
    cfg = parse_config(CONFIG).model_copy(update={"storage": f"sqlite:///{tmp / 'ledger.db'}"})
    clock = SystemClock()
    storage = Storage(cfg.storage)
    writer = LedgerWriter(storage, flush_ms=5)
    writer.start()
    budgets = load_budgets(cfg, storage, clock)
    await budgets.sync()
    tree = PrincipalTree(cfg)
    approvals = Approvals(storage, clock, 60)
    admission = Admission(cfg, tree, budgets, clock)
    jobs = Jobs(
        cfg,
        JobStore(storage, fixed_sealer()),
        admission,
        approvals,
        budgets,
        Recorder(writer, [Metrics().observe], clock, admission.runs),
        clock,
        executor,
        inventory(cfg.compute, {}),
        Leadership(Leases(storage.engine), clock),
    )
    await jobs.start()
    try:
        yield jobs, storage, approvals
    finally:
        await jobs.aclose()
        writer.close()
        storage.close()


def spec(gpus: int, priority: str = "standard", max_runtime_s: float | None = None) -> JobSpec:
    return JobSpec("research", gpus, ("train",), None, max_runtime_s, priority)


def stored(jobs: Jobs, job_id: str) -> JobRecord:
    """A job's record as saved (after the pipeline closed: every task of it has ended)."""
    row = jobs.store.get(job_id)
    assert row is not None
    return row


async def test_a_critical_job_preempts_and_the_victim_runs_again(tmp_path: Path) -> None:
    executor = FakeExecutor()
    async with asyncio.timeout(30), pipeline(tmp_path, executor) as (jobs, _, _):
        batch = (await jobs.submit(WHO, spec(6, "batch"))).id
        first = await executor.attempt(batch)
        urgent = (await jobs.submit(WHO, spec(4, "critical"))).id
        await first.stopped.wait()  # the batch job makes room for the critical one
        (await executor.attempt(urgent)).exit(0)
        (await executor.attempt(batch, 2)).exit(0)
    row = stored(jobs, batch)
    assert (row.status, row.preemptions) == ("succeeded", 1)
    assert stored(jobs, urgent).status == "succeeded"


async def test_a_graceful_restart_requeues_and_runs_the_job_again(tmp_path: Path) -> None:
    executor, again = FakeExecutor(), FakeExecutor()
    async with asyncio.timeout(30):
        async with pipeline(tmp_path, executor) as (jobs, _, _):
            job = (await jobs.submit(WHO, spec(2))).id
            first = await executor.attempt(job)
        assert first.stopped.is_set() and stored(jobs, job).status == "preempted"
        async with pipeline(tmp_path, again) as (jobs, storage, _):
            (await again.attempt(job)).exit(0)
    assert stored(jobs, job).status == "succeeded"
    assert [e["id"] for e in storage.query(entry_id=job)] == [job], "one entry, after its end"


async def test_a_job_a_policy_holds_starts_once_approved(tmp_path: Path) -> None:
    executor = FakeExecutor()
    async with asyncio.timeout(30), pipeline(tmp_path, executor) as (jobs, _, approvals):
        job = await jobs.submit(WHO, spec(8))
        assert job.status == "queued" and "awaiting approval" in job.reason
        assert job.id not in executor.attempts
        approval = job.reason.split()[2]  # "awaiting approval apr_... (policy ...)"
        await approvals.decide(approval, True, "alice")
        (await executor.attempt(job.id)).exit(0)
    assert stored(jobs, job.id).status == "succeeded"


async def test_a_job_is_stopped_at_its_budgets_end(tmp_path: Path) -> None:
    executor = FakeExecutor()
    async with asyncio.timeout(30), pipeline(tmp_path, executor) as (jobs, _, _):
        job = (await jobs.submit(WHO, spec(1, max_runtime_s=0.05))).id
        await (await executor.attempt(job)).stopped.wait()
    row = stored(jobs, job)
    assert row.status == "failed" and "its budget's end" in row.reason
