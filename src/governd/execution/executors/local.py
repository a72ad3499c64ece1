"""The local executor: each attempt is a process group on this machine, seeing only its devices.

The group (``start_new_session``) is what gets signalled, so a job's own
children stop with it. Output goes to the job's log file, appended across
attempts with a header line per attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path

from governd.execution.executors.base import Launch, log_header


class LocalExecution:
    """A running process group."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self._proc = proc
        self.pid: int | None = proc.pid

    async def wait(self) -> int:
        """The exit code (negative: the signal that ended it)."""
        return await self._proc.wait()

    async def stop(self, grace_s: float) -> None:
        """SIGTERM to the group, SIGKILL after ``grace_s`` if it still runs."""
        self._signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(self._proc.wait()), grace_s)
        except TimeoutError:
            self._signal(signal.SIGKILL)
            await self._proc.wait()

    def _signal(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._proc.pid, sig)


class LocalExecutor:
    """Starts attempts as local process groups."""

    async def start(self, launch: Launch) -> LocalExecution:
        """Spawn the job's command with its devices; ``OSError`` if it cannot start."""
        launch.log_path.parent.mkdir(parents=True, exist_ok=True)
        with launch.log_path.open("ab") as log:
            log.write(log_header("", ",".join(launch.devices)))
            log.flush()
            proc = await asyncio.create_subprocess_exec(
                *launch.argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                env=launch.environment(os.environ),
                start_new_session=True,
            )
        return LocalExecution(proc)

    def reap(self, job_id: str, pid: int) -> bool:
        """SIGKILL the group ``pid`` leads if it still runs this job (pids get reused)."""
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            return False
        if f"GOVERND_JOB_ID={job_id}".encode() not in environ:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        return True
