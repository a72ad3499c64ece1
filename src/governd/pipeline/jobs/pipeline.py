"""The path of a job: submit (decide, hold budget) -> queue -> schedule -> execute -> settle -> record.

``Jobs`` keeps every unfinished job in memory (and its row in the jobs
table), runs a scheduling cycle whenever something changed (a submission, an
attempt ending, a cancel), and applies the cycle's plan: admitted jobs start
on an executor with exactly their devices; victims are stopped (SIGTERM, then
SIGKILL after ``compute.grace_s``) and requeued. A job holds devices x
max runtime x price on every USD budget of its principal's path from
submission, and is stopped when its runtime reaches that bound (its budget's
end); the hold settles to the measured cost. A finished job (or a refused
one) gets one ledger entry with its queue wait, device-seconds, cost and
preemptions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Coroutine, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from governd.actions import Action, Principal
from governd.clock import Clock
from governd.config import GovernConfig
from governd.errors import ApprovalDenied, GovernError, NotFound
from governd.execution.executors import Execution, Executor, ExecutorUnavailable, Launch
from governd.governance.admission import Admission
from governd.governance.approvals import Approvals
from governd.governance.budgets import Budgets, Cost, Hold
from governd.governance.scheduler import Snapshot, Unit, schedule
from governd.ledger.job_record import JobRecord, JobStatus
from governd.ledger.job_store import JobStore
from governd.pipeline.jobs.entries import ended_as_recorded, job_entry
from governd.pipeline.jobs.state import (
    Live,
    admit,
    awaiting_approval,
    requeue_after_restart,
    snapshot_of,
)
from governd.pipeline.jobs.terms import JobSpec, JobTerms, bound, log_dir, policy_view, principal_of
from governd.pipeline.recorder import Recorder

log = logging.getLogger("governd.jobs")

#: Seconds before an unavailable executor is tried again.
_EXECUTOR_RETRY_S = 5.0
#: A job holds its bound while queued and running, for hours maybe: its hold never lapses (a
#: restart takes it again, for every job still active).
JOB_LEASE_S = math.inf


class Jobs:
    """Every job of this governd: submission, the scheduling loop, execution and settlement."""

    def __init__(
        self,
        cfg: GovernConfig,
        store: JobStore,
        admission: Admission,
        approvals: Approvals,
        budgets: Budgets,
        recorder: Recorder,
        clock: Clock,
        executor: Executor,
        units: tuple[Unit, ...],
    ) -> None:
        self.cfg = cfg.compute
        self.store = store
        self._admission = admission
        self._approvals = approvals
        self._budgets = budgets
        self._recorder = recorder
        self._clock = clock
        self._executor = executor
        self.units = units
        self.terms = JobTerms(cfg.compute, units)
        self._log_dir = log_dir(cfg.compute, cfg.storage)
        self._live: dict[str, Live] = {}
        self._wake = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writing = asyncio.Lock()

    # lifecycle

    async def start(self) -> None:
        """Requeue what a previous process left unfinished, then start scheduling."""
        rows = await asyncio.to_thread(self.store.list, None, "active", 100_000)
        ended = await asyncio.to_thread(self.store.recorded, [r.id for r in rows])
        for row in rows:
            if row.id in ended:  # its entry was written, its row not yet: it is over
                await self._save(ended_as_recorded(row, ended[row.id]))
                continue
            if row.status in (JobStatus.ADMITTED, JobStatus.RUNNING):
                # governd died under it (kill -9): its process may outlive governd, so kill it
                # first, and charge nothing for that attempt (its end was never seen).
                if row.pid is not None and self._executor.reap(row.id, row.pid):
                    log.warning("job %s: killed the attempt left running (pid %s)", row.id, row.pid)
                requeue_after_restart(row, self._clock.now())
            path = self._budgets.path(principal_of(row))
            try:
                hold = await self._budgets.reserve_on(path, bound(row), JOB_LEASE_S)
            except GovernError as exc:
                held = Hold(path, [])  # nothing: settling it charges nothing
                await self._finish(Live(row, held), "failed", f"at restart: {exc.message}", None)
                continue
            live = self._live[row.id] = Live(row, hold)
            awaiting = awaiting_approval(row)
            if awaiting is not None:  # still waiting for a human: keep waiting
                live.approval, policy = awaiting
                self._spawn(self._await_approval(live, live.approval, policy))
            await self._save(row)
        self._loop = asyncio.create_task(self._schedule_forever(), name="governd-jobs")
        self._wake.set()

    async def aclose(self) -> None:
        """Stop scheduling and every running attempt (they are requeued on the next start)."""
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
        for live in self._live.values():
            if live.holds_units:
                live.stopping = ("preempted", "governd stopped")
                live.row.happened(self._clock.now(), "preempted", "governd stopped")
                self._spawn(self._stop(live))
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # intent

    async def submit(self, principal: Principal, spec: JobSpec) -> JobRecord:
        """Queue a job, holding its budget bound; refusals are recorded, then raised."""
        now = self._clock.now()
        row = self.terms.new_record(principal, spec, now)
        view = policy_view(row)
        action = Action(row.id, "job", principal, spec.queue, view, kind="job")
        try:
            self.terms.check(principal, spec)
            decision = await self._admission.admit_job(action, view)
            hold = await self._budgets.reserve(principal, bound(row), JOB_LEASE_S)
        except GovernError as exc:
            row.status = JobStatus.REFUSED
            row.reason = exc.message
            row.finished_at = now
            await self._recorder.store(job_entry(row, self.terms.unit, exc))
            raise
        live = Live(row, hold)
        if decision.effect == "require_approval":
            policy = decision.policy or ""
            live.approval = await self._approvals.request(action, "job", policy)
            row.reason = f"awaiting approval {live.approval} (policy {policy})"
            row.happened(now, "awaiting_approval", f"{live.approval} {policy}")
            self._spawn(self._await_approval(live, live.approval, policy))
        self._live[row.id] = live
        await self._save(row)
        self._wake.set()
        return row

    async def _await_approval(self, live: Live, approval_id: str, policy: str) -> None:
        """Schedule the job once a human approves it; end it if they deny it or never answer."""
        verdict = await self._approvals.wait(approval_id)
        if live.row.id not in self._live:  # cancelled meanwhile
            return
        now = self._clock.now()
        if verdict.status == "approved":
            live.approval = None
            live.row.reason = f"approved by {verdict.by}"
            live.row.happened(now, "approved", f"{approval_id} by {verdict.by}")
            await self._save(live.row)
            self._wake.set()
            return
        denied = (
            f"denied by {verdict.by} (approval {approval_id}, asked by policy {policy})"
            if verdict.status == "denied"
            else f"approval {approval_id} was not given in time (policy {policy})"
        )
        await self._finish(live, "cancelled", denied, None, ApprovalDenied(denied, policy=policy))

    async def cancel(self, job_id: str, by: str) -> JobRecord:
        """Cancel a job: a queued one ends now, a running one is stopped first."""
        live = self._live.get(job_id)
        if live is None:
            row = await asyncio.to_thread(self.store.get, job_id)
            if row is None:
                raise NotFound(f"no job {job_id}")
            return row
        if not live.holds_units:
            await self._finish(live, "cancelled", f"cancelled by {by}", None)
        elif live.stopping is None:
            live.stopping = ("cancelled", f"cancelled by {by}")
            self._spawn(self._stop(live))
        if live.approval is not None:  # nobody need decide on it any more (after it ended)
            with contextlib.suppress(GovernError):
                await self._approvals.decide(live.approval, False, by)
        return live.row

    def get(self, job_id: str) -> JobRecord | None:
        """A live job's row (finished ones are in the store)."""
        live = self._live.get(job_id)
        return live.row if live else None

    def log_path(self, job_id: str) -> Path:
        """Where a job's output goes."""
        return self._log_dir / f"{job_id}.log"

    # scheduling

    async def _schedule_forever(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self._cycle()
            except Exception:
                log.exception("scheduling cycle failed")

    def snapshot(self) -> Snapshot:
        """Capacity, queues and every unfinished job now (what a cycle decides over)."""
        return snapshot_of(self._live.values(), self.units, self.cfg, self._clock.now())

    async def _cycle(self) -> None:
        snap = self.snapshot()
        now = snap.now
        plan = schedule(snap)
        changed: dict[str, JobRecord] = {}
        for ev in plan.evict:
            live = self._live[ev.job]
            if live.stopping is None:
                live.stopping = ("preempted", f"{ev.reason}: by {ev.by}")
                live.row.happened(now, "preempted", f"{ev.reason} by {ev.by}")
                changed[ev.job] = live.row
        for a in plan.admit:
            admit(self._live[a.job], a.flavor, a.units, now)
            changed[a.job] = self._live[a.job].row
        for job_id, why in plan.waiting.items():
            row = self._live[job_id].row
            if row.reason != why:
                row.reason = why
                changed[job_id] = row
        # One transaction for the whole plan, before anything it decided starts or stops.
        await self._save(*changed.values())
        for ev in plan.evict:
            self._spawn(self._stop(self._live[ev.job]))
        for a in plan.admit:
            self._spawn(self._start(self._live[a.job], a.units))

    # executing

    async def _start(self, live: Live, units: tuple[str, ...]) -> None:
        row = live.row
        launch = Launch(
            row.id,
            row.argv,
            self.terms.visible(units),
            units,
            self.log_path(row.id),
            row.env,
            tuple(self.cfg.pass_env),
        )
        try:
            live.execution = await self._executor.start(launch)
        except ExecutorUnavailable as exc:
            await self._unstarted(live, str(exc))
            return
        except OSError as exc:
            await self._finish(live, "failed", f"cannot start: {exc.strerror or exc}", None)
            return
        now = self._clock.now()
        live.started = now
        row.status = JobStatus.RUNNING
        row.reason = f"running on {', '.join(units)}"
        row.pid = live.execution.pid
        row.happened(now, "started", ",".join(units))
        left = row.max_runtime_s - row.runtime_s
        live.timer = asyncio.get_running_loop().call_later(
            max(0.0, left), self._out_of_budget, live
        )
        self._spawn(self._watch(live, live.execution))
        if live.stopping is not None:  # cancelled or preempted while it was starting
            self._spawn(self._stop(live))
        await self._save(row)

    async def _unstarted(self, live: Live, why: str) -> None:
        """The executor could not take the job: back to the queue, tried again after a pause."""
        if live.stopping is not None and live.stopping[0] == "cancelled":
            await self._finish(live, "cancelled", live.stopping[1], None)
            return
        now = self._clock.now()
        live.stopping = None
        live.not_before = now + _EXECUTOR_RETRY_S
        live.row.happened(now, "requeued", why)
        live.row.status = JobStatus.QUEUED
        live.row.reason = f"waiting for the executor: {why}"
        live.row.units = ()
        live.row.finished_at = now
        await self._save(live.row)
        asyncio.get_running_loop().call_later(_EXECUTOR_RETRY_S, self._wake.set)
        self._wake.set()

    def _out_of_budget(self, live: Live) -> None:
        if live.stopping is None and live.execution is not None:
            bound = live.row.max_runtime_s
            live.stopping = (
                "failed",
                f"stopped: reached its max runtime of {bound:g} s (its budget's end)",
            )
            self._spawn(self._stop(live))

    async def _stop(self, live: Live) -> None:
        if live.execution is not None:
            await live.execution.stop(self.cfg.grace_s)

    async def _watch(self, live: Live, execution: Execution) -> None:
        code = await execution.wait()
        now = self._clock.now()
        row = live.row
        if live.timer is not None:
            live.timer.cancel()
        self.terms.charge(row, now - live.started)
        live.execution = None
        status, why = live.stopping or (
            ("succeeded", "exited 0") if code == 0 else ("failed", f"exited {code}")
        )
        live.stopping = None
        if status == "preempted":
            row.status = JobStatus.PREEMPTED
            row.reason = f"requeued after preemption ({why})"
            row.units = ()
            row.pid = None
            row.finished_at = now
            row.preemptions = row.preemptions + 1
            await self._save(row)
        else:
            await self._finish(live, status, why, code)
        self._wake.set()

    async def _finish(
        self,
        live: Live,
        status: str,
        why: str,
        code: int | None,
        refused: GovernError | None = None,
    ) -> None:
        row = live.row
        if not row.status.active:  # already ending (a cancel racing its own end)
            return
        row.status = JobStatus(status)
        row.reason = why
        row.finished_at = self._clock.now()
        row.exit_code = code
        row.pid = None
        row.happened(row.finished_at, status, why)
        # The entry first, durable (strict mode) before the row says the job is over: a crash
        # between the two leaves a row that the next start closes from its entry.
        await self._recorder.store(job_entry(row, self.terms.unit, refused))
        await self._budgets.settle(live.hold, Cost(row.cost_usd, 0, row.device_seconds / 3600))
        self._live.pop(row.id, None)
        await self._save(row)
        self._wake.set()

    @property
    def unfinished(self) -> Iterable[Live]:
        """The jobs this process holds (queued, admitted, running, preempted)."""
        return self._live.values()

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _save(self, *rows: JobRecord) -> None:
        """Write rows as they are when the write runs: writes never overtake one another."""
        async with self._writing:
            await asyncio.to_thread(
                self.store.put, *(replace(r, events=list(r.events)) for r in rows)
            )
