"""The executor ``compute.executor`` names (Ray is imported only when asked for)."""

from __future__ import annotations

import os

from governd.execution.executors.base import Executor
from governd.execution.executors.local import LocalExecutor


def executor_for(name: str, num_gpus: int) -> Executor:
    """``local``, ``ray`` (a Ray started in this process with ``num_gpus``) or ``ray://HOST:PORT``."""
    if name == "local":
        return LocalExecutor()
    if name == "ray":
        # A Ray of governd's own serves this machine only: keep it on loopback (Ray reads this
        # when imported, and otherwise swaps 127.0.0.1 for the machine's outward address).
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    from governd.execution.executors.ray_executor import RayExecutor

    return RayExecutor(None if name == "ray" else name, num_gpus)
