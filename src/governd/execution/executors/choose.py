"""The executor ``compute.executor`` names (Ray is imported only when asked for)."""

from __future__ import annotations

from governd.execution.executors.base import Executor
from governd.execution.executors.local import LocalExecutor


def executor_for(name: str, num_gpus: int) -> Executor:
    """``local``, ``ray`` (a Ray started in this process with ``num_gpus``) or ``ray://HOST:PORT``."""
    if name == "local":
        return LocalExecutor()
    from governd.execution.executors.ray_executor import RayExecutor

    return RayExecutor(None if name == "ray" else name, num_gpus)
