"""The scheduler's side of jobs: each cycle's plan applied, attempts started, watched, ended.

Only the replica holding the scheduler's lease runs a ``Runner`` cycle; its
row writes are fenced by that lease, so a replica that lost it steps down
(forgets its jobs, stops their attempts) instead of writing over its
successor. Admitted jobs start on an executor with exactly their devices;
victims are stopped (SIGTERM, then SIGKILL after ``compute.grace_s``) and
requeued; a job is stopped when its runtime reaches its bound (its budget's
end). An ended job gets its ledger entry, then its hold settles to the
measured cost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from governd.clock import Clock
from governd.config.compute import ComputeConfig
from governd.errors import GovernError, LeaseLost
from governd.execution.executors import (
    Execution,
    ExecutionLost,
    Executor,
    ExecutorUnavailable,
    Launch,
)
from governd.governance.budgets import Budgets, Cost
from governd.governance.scheduler import Snapshot, Unit, schedule
from governd.ledger.job_record import JobRecord, JobStatus
from governd.ledger.job_store import JobStore
from governd.pipeline.jobs.entries import job_entry
from governd.pipeline.jobs.leadership import Leadership
from governd.pipeline.jobs.state import Live, admit, snapshot_of
from governd.pipeline.jobs.terms import JobTerms
from governd.pipeline.recorder import Recorder

log = logging.getLogger("governd.jobs")

#: Seconds before an unavailable executor is tried again.
_EXECUTOR_RETRY_S = 5.0


class Runner:
    """The jobs this replica schedules (while it leads), and their attempts."""

    def __init__(
        self,
        compute: ComputeConfig,
        terms: JobTerms,
        units: tuple[Unit, ...],
        logs: Path,
        store: JobStore,
        budgets: Budgets,
        recorder: Recorder,
        clock: Clock,
        executor: Executor,
        leadership: Leadership,
    ) -> None:
        self.cfg = compute
        self.terms = terms
        self.units = units
        self._logs = logs
        self.store = store
        self._budgets = budgets
        self._recorder = recorder
        self._clock = clock
        self._executor = executor
        self._leadership = leadership
        self.live: dict[str, Live] = {}
        self.ended: dict[str, float] = {}  # jobs this replica ended lately, and when
        self.wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._writing = asyncio.Lock()

    def log_path(self, job_id: str) -> Path:
        """Where a job's output goes."""
        return self._logs / f"{job_id}.log"

    async def stop_all(self) -> None:
        """Stop every running attempt (requeued, not charged as failed) and wait for the ends."""
        for live in self.live.values():
            if live.holds_units:
                live.stopping = ("preempted", "governd stopped")
                live.row.happened(self._clock.now(), "preempted", "governd stopped")
                self.spawn(self.stop(live))
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def schedule_forever(self) -> None:
        """Run a cycle each time something changed (a submission, an end, a cancel)."""
        while True:
            await self.wake.wait()
            self.wake.clear()
            try:
                await self._cycle()
            except Exception:
                log.exception("scheduling cycle failed")

    def snapshot(self) -> Snapshot:
        """Capacity, queues and every unfinished job now (what a cycle decides over)."""
        return snapshot_of(self.live.values(), self.units, self.cfg, self._clock.now())

    async def _cycle(self) -> None:
        if not self._leadership.leading:
            return
        snap = self.snapshot()
        now = snap.now
        plan = schedule(snap)
        changed: dict[str, JobRecord] = {}
        for ev in plan.evict:
            live = self.live[ev.job]
            if live.stopping is None:
                live.stopping = ("preempted", f"{ev.reason}: by {ev.by}")
                live.row.happened(now, "preempted", f"{ev.reason} by {ev.by}")
                changed[ev.job] = live.row
        for a in plan.admit:
            admit(self.live[a.job], a.flavor, a.units, now)
            changed[a.job] = self.live[a.job].row
        for job_id, why in plan.waiting.items():
            row = self.live[job_id].row
            if row.reason != why:
                row.reason = why
                changed[job_id] = row
        # One transaction for the whole plan, before anything it decided starts or stops.
        if not await self.save(*changed.values()):
            return
        for ev in plan.evict:
            self.spawn(self.stop(self.live[ev.job]))
        for a in plan.admit:
            self.spawn(self._start(self.live[a.job], a.units))

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
            execution = await self._executor.start(launch)
        except ExecutorUnavailable as exc:
            await self._unstarted(live, str(exc))
            return
        except OSError as exc:
            await self.finish(live, "failed", f"cannot start: {exc.strerror or exc}", None)
            return
        if self.live.get(row.id) is not live:  # stepped down while it started: not ours
            await execution.stop(0.0)
            return
        live.execution = execution
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
        self.spawn(self._watch(live, live.execution))
        if live.stopping is not None:  # cancelled or preempted while it was starting
            self.spawn(self.stop(live))
        await self.save(row)

    async def _unstarted(self, live: Live, why: str) -> None:
        """The executor could not take the job (or lost it): back to the queue, tried again
        after a pause."""
        if live.stopping is not None and live.stopping[0] == "cancelled":
            await self.finish(live, "cancelled", live.stopping[1], None)
            return
        now = self._clock.now()
        live.stopping = None
        live.not_before = now + _EXECUTOR_RETRY_S
        live.row.happened(now, "requeued", why)
        live.row.status = JobStatus.QUEUED
        live.row.reason = f"waiting for the executor: {why}"
        live.row.units = ()
        live.row.finished_at = now
        await self.save(live.row)
        asyncio.get_running_loop().call_later(_EXECUTOR_RETRY_S, self.wake.set)
        self.wake.set()

    def _out_of_budget(self, live: Live) -> None:
        if live.stopping is None and live.execution is not None:
            bound = live.row.max_runtime_s
            live.stopping = (
                "failed",
                f"stopped: reached its max runtime of {bound:g} s (its budget's end)",
            )
            self.spawn(self.stop(live))

    async def stop(self, live: Live) -> None:
        if live.execution is not None:
            await live.execution.stop(self.cfg.grace_s)

    async def _watch(self, live: Live, execution: Execution) -> None:
        lost = None
        try:
            code = await execution.wait()
        except ExecutionLost as exc:
            code, lost = -1, str(exc)
        now = self._clock.now()
        row = live.row
        if self.live.get(row.id) is not live:  # this replica stepped down: not its job now
            return
        if live.timer is not None:
            live.timer.cancel()
        self.terms.charge(row, now - live.started)  # lost or not, it held its devices until now
        live.execution = None
        if lost is not None:  # its end is unknown: run it again once the executor is back
            row.pid = None
            await self._unstarted(live, lost)
            return
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
            await self.save(row)
        else:
            await self.finish(live, status, why, code)
        self.wake.set()

    async def finish(
        self,
        live: Live,
        status: str,
        why: str,
        code: int | None,
        refused: GovernError | None = None,
    ) -> None:
        row = live.row
        # Already ending (a cancel racing its own end), or no longer this replica's to end.
        if live.ending or not row.status.active or not self._leadership.leading:
            return
        live.ending = True
        now = self._clock.now()
        ended = replace(
            row,
            status=JobStatus(status),
            reason=why,
            finished_at=now,
            exit_code=code,
            pid=None,
            events=list(row.events),
        )
        ended.happened(now, status, why)
        # The entry first, durable (strict mode), and only then does the row say the job is over
        # (another write of it meanwhile still says it runs): a crash between the two leaves a
        # row that the next scheduler closes from its entry, never an end without an entry.
        await self._recorder.store(job_entry(ended, self.terms.unit, refused))
        await self._budgets.settle(live.hold, Cost(row.cost_usd, 0, row.device_seconds / 3600))
        for name in JobRecord.__dataclass_fields__:
            setattr(row, name, getattr(ended, name))
        self.live.pop(row.id, None)
        self.ended[row.id] = now
        await self.save(row)
        self.wake.set()

    @property
    def unfinished(self) -> Iterable[Live]:
        """The jobs this process holds (queued, admitted, running, preempted)."""
        return self.live.values()

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def save(self, *rows: JobRecord, fenced: bool = True) -> bool:
        """Write rows as they are when the write runs: writes never overtake one another.

        ``fenced``: only while this replica holds the scheduler's lease; False (and this
        replica steps down) once another holds it.
        """
        async with self._writing:
            fence = self._leadership.fence() if fenced else None
            copies = [replace(r, events=list(r.events)) for r in rows]
            try:
                await asyncio.to_thread(self.store.put, *copies, fence=fence)
            except LeaseLost:
                await self.step_down()
                return False
        return True

    async def step_down(self) -> None:
        """The lease is lost: forget every job and stop what runs (the new leader requeues it)."""
        self._leadership.lost()
        log.warning("lost the job scheduler's lease: another replica schedules now")
        lost, self.live = list(self.live.values()), {}
        for live in lost:
            if live.timer is not None:
                live.timer.cancel()
            if live.execution is not None:
                self.spawn(live.execution.stop(0.0))
