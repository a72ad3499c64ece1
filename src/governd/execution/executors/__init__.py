"""Job executors: what runs an admitted job on exactly its devices (local processes, or Ray)."""

from governd.execution.executors.base import (
    Execution,
    ExecutionLost,
    Executor,
    ExecutorUnavailable,
    Launch,
)

__all__ = ["Execution", "ExecutionLost", "Executor", "ExecutorUnavailable", "Launch"]
