"""The job scheduler: queues with quotas, cohorts, fair sharing, gang admission and preemption.

Pure and I/O-free like the rest of governance: ``schedule`` reads an
immutable ``Snapshot`` and returns a ``Plan``; whoever runs jobs applies it.
"""

from governd.governance.scheduler.cycle import schedule
from governd.governance.scheduler.model import (
    Admission,
    Discovered,
    Eviction,
    Job,
    Plan,
    Snapshot,
    Unit,
    inventory,
)

__all__ = [
    "Admission",
    "Discovered",
    "Eviction",
    "Job",
    "Plan",
    "Snapshot",
    "Unit",
    "inventory",
    "schedule",
]
