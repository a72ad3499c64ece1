"""The executor contract: start a job on given devices, wait for it, stop it with a grace period."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


class ExecutorUnavailable(Exception):
    """The executor cannot take work now (a Ray cluster down, no room for the placement): retry later."""


@dataclass(frozen=True, slots=True)
class Launch:
    """One attempt at running a job: its command, its devices, where its output goes.

    ``devices`` are the indices (or MIG/GPU UUIDs when known) the job may see,
    in ``CUDA_VISIBLE_DEVICES`` order; ``units`` the scheduler's unit ids.
    """

    job_id: str
    argv: tuple[str, ...]
    devices: tuple[str, ...]
    units: tuple[str, ...]
    log_path: Path
    env: tuple[tuple[str, str], ...] = ()

    def environment(self) -> dict[str, str]:
        """What the job gets on top of governd's environment."""
        return {
            **dict(self.env),
            "CUDA_VISIBLE_DEVICES": ",".join(self.devices),
            "GOVERND_JOB_ID": self.job_id,
            "GOVERND_UNITS": ",".join(self.units),
        }


def log_header(where: str, visible: str) -> bytes:
    """The line each attempt's output starts with in the job's log."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return f"--- governd: {stamp} start{where} on CUDA_VISIBLE_DEVICES={visible}\n".encode()


class Execution(Protocol):
    """A started attempt (``pid``: its process group on this machine, if it runs here)."""

    pid: int | None

    async def wait(self) -> int:
        """Its exit code, once it ends (negative: killed by that signal)."""
        ...

    async def stop(self, grace_s: float) -> None:
        """Ask it to stop (SIGTERM), then force it (SIGKILL) after ``grace_s``; returns once it ended."""
        ...


class Executor(Protocol):
    """Runs attempts."""

    async def start(self, launch: Launch) -> Execution:
        """Start an attempt.

        Raises ``ExecutorUnavailable`` when the executor cannot take it now, ``OSError`` when the
        job itself cannot start (e.g. no such command).
        """
        ...

    def reap(self, job_id: str, pid: int) -> bool:
        """Kill an attempt a previous governd process left running; True if there was one."""
        ...
