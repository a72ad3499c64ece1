"""``FakeExecutor``: runs no process; a test decides when each attempt ends and sees every stop."""

from __future__ import annotations

import asyncio

from governd.execution.executors import Launch


class FakeExecution:
    """An attempt that runs until the test ends it, or governd stops it (exit -15)."""

    pid: int | None = None

    def __init__(self, launch: Launch) -> None:
        self.launch = launch
        #: Set when governd stops the attempt (preemption, cancel, the budget's end).
        self.stopped = asyncio.Event()
        self._code: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def exit(self, code: int = 0) -> None:
        """End the attempt with ``code``, as the job's process would."""
        if not self._code.done():
            self._code.set_result(code)

    async def wait(self) -> int:
        """The exit code, once the attempt ended."""
        return await asyncio.shield(self._code)

    async def stop(self, grace_s: float) -> None:
        """What SIGTERM does to a job that obeys it."""
        self.stopped.set()
        self.exit(-15)
        await self.wait()


class FakeExecutor:
    """Hands out ``FakeExecution``s and lets a test wait for the next attempt of a job."""

    def __init__(self) -> None:
        self.attempts: dict[str, list[FakeExecution]] = {}
        self._started = asyncio.Condition()

    async def start(self, launch: Launch) -> FakeExecution:
        """Start an attempt (it runs until ``exit`` or ``stop``)."""
        execution = FakeExecution(launch)
        async with self._started:
            self.attempts.setdefault(launch.job_id, []).append(execution)
            self._started.notify_all()
        return execution

    def reap(self, job_id: str, pid: int) -> bool:
        """No process outlives a fake one."""
        return False

    async def attempt(self, job_id: str, number: int = 1) -> FakeExecution:
        """The ``number``-th attempt of a job, once it started (bound it with ``asyncio.timeout``)."""
        async with self._started:
            await self._started.wait_for(lambda: len(self.attempts.get(job_id, ())) >= number)
            return self.attempts[job_id][number - 1]
