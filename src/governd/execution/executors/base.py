"""The executor contract: start a job on given devices, wait for it, stop it with a grace period."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

#: What a job inherits from the environment it is started in: where programs are, who it runs
#: as, its locale and temporary folder. Nothing else of governd's (its admin key, its storage
#: URL, upstream credentials) ever reaches a job; ``compute.pass_env`` adds names by choice.
INHERITED_ENV = ("PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TZ", "TMPDIR")


class ExecutorUnavailable(Exception):
    """The executor cannot take work now (a Ray cluster down, no room for the placement): retry later."""


class ExecutionLost(Exception):
    """A started attempt's end cannot be known: the executor lost it (its Ray cluster went away)."""


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
    pass_env: tuple[str, ...] = ()

    def environment(self, host: Mapping[str, str], visible: str | None = None) -> dict[str, str]:
        """The job's whole environment, given the one it is started from (``host``).

        From ``host``: ``INHERITED_ENV``, ``LC_*`` and the names in ``pass_env``; then what its
        submitter passed; then governd's own: its devices (``visible``, else ``devices``), id
        and units, which a submitter cannot override.
        """
        names = (*INHERITED_ENV, *self.pass_env)
        inherited = {k: v for k, v in host.items() if k in names or k.startswith("LC_")}
        return {
            **inherited,
            **dict(self.env),
            "CUDA_VISIBLE_DEVICES": ",".join(self.devices) if visible is None else visible,
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
        """Its exit code, once it ends (negative: killed by that signal); ``ExecutionLost``
        when the executor can no longer tell."""
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
