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

Replicas on one database share the jobs: any replica queues a job (its row,
its named budget hold), but only the holder of the scheduler's lease
(``leadership.py``) schedules and runs them, adopting each queued row and
answering the cancels other replicas leave. Its writes are fenced by the
lease; a successor adopts every unfinished row, killing an attempt its
predecessor left running before queueing it again, so no job runs twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Iterable
from pathlib import Path

from governd.actions import Action, Principal
from governd.clock import Clock
from governd.config import GovernConfig
from governd.errors import ApprovalDenied, GovernError, NotFound
from governd.execution.executors import Executor
from governd.governance.admission import Admission
from governd.governance.approvals import Approvals
from governd.governance.budgets import Budgets, Hold
from governd.governance.scheduler import Snapshot, Unit
from governd.ledger.job_record import JobRecord, JobStatus
from governd.ledger.job_store import JobRequest, JobStore
from governd.pipeline.jobs.entries import ended_as_recorded, job_entry
from governd.pipeline.jobs.leadership import TICK_S, Leadership
from governd.pipeline.jobs.runner import Runner
from governd.pipeline.jobs.state import (
    Live,
    awaiting_approval,
    requeue_after_restart,
    snapshot_of,
)
from governd.pipeline.jobs.terms import JobSpec, JobTerms, bound, log_dir, policy_view, principal_of
from governd.pipeline.recorder import Recorder

log = logging.getLogger("governd.jobs")

#: Seconds before an unavailable executor is tried again.
_EXECUTOR_RETRY_S = 5.0
#: A job holds its bound while queued and running, for hours maybe: its hold never lapses (it is
#: named after the job, so a restart or another replica takes that same hold again).
JOB_LEASE_S = math.inf
#: Seconds a job this replica ended is not adopted again (its row may still read active).
_ENDED_S = 60.0


def hold_name(job_id: str) -> str:
    """The budget hold of a job: one per job, whichever replica takes it."""
    return f"job:{job_id}"


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
        leadership: Leadership,
    ) -> None:
        self.store = store
        self._admission = admission
        self._approvals = approvals
        self._budgets = budgets
        self._recorder = recorder
        self._clock = clock
        self._executor = executor
        self.terms = JobTerms(cfg.compute, units)
        self._runner = Runner(
            cfg.compute,
            self.terms,
            units,
            log_dir(cfg.compute, cfg.storage),
            store,
            budgets,
            recorder,
            clock,
            executor,
            leadership,
        )
        self._leadership = leadership
        self._loop: asyncio.Task[None] | None = None
        self._ticker: asyncio.Task[None] | None = None

    # lifecycle

    async def start(self) -> None:
        """Take the scheduler's lease if it is free (adopting what is unfinished), then tick."""
        await self._tick()
        self._loop = asyncio.create_task(self._runner.schedule_forever(), name="governd-jobs")
        self._ticker = asyncio.create_task(self._tick_forever(), name="governd-jobs-lease")

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            try:
                await self._tick()
            except Exception:
                log.exception("job scheduler tick failed")

    async def _tick(self) -> None:
        """Renew the lease; as the leader, adopt what others queued and answer their requests."""
        was = bool(self._runner.live) or self._leadership.leading
        if not await self._leadership.renew():
            if was:
                await self._runner.step_down()
            return
        await self._adopt()
        await self._answer()

    async def _adopt(self) -> None:
        """Take on every unfinished job this replica does not hold yet (queued elsewhere, or
        left by a scheduler that stopped): kill an attempt left running, requeue it, hold its
        budget again (the same named hold), and schedule it."""
        now = self._clock.now()
        self._runner.ended = {k: at for k, at in self._runner.ended.items() if now - at < _ENDED_S}
        ids = await asyncio.to_thread(self.store.active_ids)
        new = [i for i in ids if i not in self._runner.live and i not in self._runner.ended]
        if not new:
            return
        rows = await asyncio.to_thread(self.store.many, new)
        ended = await asyncio.to_thread(self.store.recorded, new)
        for row in rows:
            if row.id in self._runner.live or not row.status.active:
                continue
            if row.id in ended:  # its entry was written, its row not yet: it is over
                await self._runner.save(ended_as_recorded(row, ended[row.id]))
                continue
            if row.status in (JobStatus.ADMITTED, JobStatus.RUNNING):
                # Its scheduler died under it (kill -9): the process may outlive it, so kill it
                # first, and charge nothing for that attempt (its end was never seen).
                if row.pid is not None and self._executor.reap(row.id, row.pid):
                    log.warning("job %s: killed the attempt left running (pid %s)", row.id, row.pid)
                requeue_after_restart(row, now)
            path = self._budgets.path(principal_of(row))
            try:
                hold = await self._budgets.reserve_on(
                    path, bound(row), JOB_LEASE_S, hold_name(row.id)
                )
            except GovernError as exc:
                held = Hold(path, [])  # nothing: settling it charges nothing
                await self._runner.finish(
                    Live(row, held), "failed", f"at adoption: {exc.message}", None
                )
                continue
            live = self._runner.live[row.id] = Live(row, hold)
            awaiting = awaiting_approval(row)
            if awaiting is not None:  # still waiting for a human: keep waiting
                live.approval, policy = awaiting
                self._runner.spawn(self._await_approval(live, live.approval, policy))
            await self._runner.save(row)
        self._runner.wake.set()

    async def _answer(self) -> None:
        """Act on the requests other replicas left (a cancel of a job this replica runs)."""
        for request in await asyncio.to_thread(self.store.requests):
            if request.job_id in self._runner.live:
                await self.cancel(request.job_id, request.by)
            elif request.job_id not in self._runner.ended:
                row = await asyncio.to_thread(self.store.get, request.job_id)
                if row is not None and row.status.active:
                    continue  # not adopted yet: the next tick
            await asyncio.to_thread(self.store.answered, request)

    async def aclose(self) -> None:
        """Stop scheduling and every running attempt (requeued by the next scheduler)."""
        for task in (self._ticker, self._loop):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self._runner.stop_all()
        await self._leadership.give_up()

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
            hold = await self._budgets.reserve(
                principal, bound(row), JOB_LEASE_S, hold_name(row.id)
            )
        except GovernError as exc:
            row.status = JobStatus.REFUSED
            row.reason = exc.message
            row.finished_at = now
            await self._recorder.store(job_entry(row, self.terms.unit, exc))
            raise
        live = Live(row, hold)
        leading = self._leadership.leading  # else the scheduler adopts it from its row
        if decision.effect == "require_approval":
            policy = decision.policy or ""
            live.approval = await self._approvals.request(action, "job", policy)
            row.reason = f"awaiting approval {live.approval} (policy {policy})"
            row.happened(now, "awaiting_approval", f"{live.approval} {policy}")
            if leading:
                self._runner.spawn(self._await_approval(live, live.approval, policy))
        if leading:
            self._runner.live[row.id] = live
        await self._runner.save(row, fenced=False)
        self._runner.wake.set()
        return row

    async def _await_approval(self, live: Live, approval_id: str, policy: str) -> None:
        """Schedule the job once a human approves it; end it if they deny it or never answer."""
        verdict = await self._approvals.wait(approval_id)
        if live.row.id not in self._runner.live:  # cancelled meanwhile
            return
        now = self._clock.now()
        if verdict.status == "approved":
            live.approval = None
            live.row.reason = f"approved by {verdict.by}"
            live.row.happened(now, "approved", f"{approval_id} by {verdict.by}")
            await self._runner.save(live.row)
            self._runner.wake.set()
            return
        denied = (
            f"denied by {verdict.by} (approval {approval_id}, asked by policy {policy})"
            if verdict.status == "denied"
            else f"approval {approval_id} was not given in time (policy {policy})"
        )
        await self._runner.finish(
            live, "cancelled", denied, None, ApprovalDenied(denied, policy=policy)
        )

    async def cancel(self, job_id: str, by: str) -> JobRecord:
        """Cancel a job: a queued one ends now, a running one is stopped first (by the
        scheduler: another replica's is asked to, within a tick)."""
        live = self._runner.live.get(job_id)
        if live is None:
            row = await asyncio.to_thread(self.store.get, job_id)
            if row is None:
                raise NotFound(f"no job {job_id}")
            if row.status.active:
                request = JobRequest(job_id, "cancel", by, self._clock.now())
                await asyncio.to_thread(self.store.ask, request)
            return row
        if not live.holds_units:
            await self._runner.finish(live, "cancelled", f"cancelled by {by}", None)
        elif live.stopping is None:
            live.stopping = ("cancelled", f"cancelled by {by}")
            self._runner.spawn(self._runner.stop(live))
        if live.approval is not None:  # nobody need decide on it any more (after it ended)
            with contextlib.suppress(GovernError):
                await self._approvals.decide(live.approval, False, by)
        return live.row

    def get(self, job_id: str) -> JobRecord | None:
        """A live job's row (finished ones are in the store)."""
        live = self._runner.live.get(job_id)
        return live.row if live else None

    @property
    def leading(self) -> bool:
        """Whether this replica is the one scheduling jobs now."""
        return self._leadership.leading

    @property
    def replica(self) -> str:
        """This replica's name on the scheduler's lease."""
        return self._leadership.me

    @property
    def unfinished(self) -> Iterable[Live]:
        """The jobs this replica schedules (queued, admitted, running, preempted)."""
        return self._runner.live.values()

    def log_path(self, job_id: str) -> Path:
        """Where a job's output goes."""
        return self._runner.log_path(job_id)

    async def shown(self) -> Snapshot:
        """``snapshot`` as any replica sees it: a replica that does not schedule reads the rows."""
        if self._leadership.leading:
            return self._runner.snapshot()
        rows = await asyncio.to_thread(self.store.list, None, "active", 100_000)
        held = [Live(row, Hold(self._budgets.path(principal_of(row)), [])) for row in rows]
        return snapshot_of(held, self._runner.units, self._runner.cfg, self._clock.now())
