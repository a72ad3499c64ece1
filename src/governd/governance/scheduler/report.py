"""What a snapshot says about quotas and devices, for people: per queue and flavor, and per unit."""

from __future__ import annotations

from typing import Any

from governd.governance.scheduler.model import Snapshot
from governd.governance.scheduler.state import State


def queue_report(snap: Snapshot) -> list[dict[str, Any]]:
    """Per queue and flavor: quota, use, what it borrows, what it may still take, jobs waiting."""
    state = State(snap)
    waiting: dict[str, int] = {}
    for job in snap.pending:
        waiting[job.queue] = waiting.get(job.queue, 0) + 1
    rows = []
    for name, queue in snap.queues.items():
        for flavor, quota in queue.quotas.items():
            used = state.quotas.usage[name][flavor]
            rows.append(
                {
                    "queue": name,
                    "cohort": queue.cohort,
                    "flavor": flavor,
                    "nominal": quota.nominal,
                    "borrowing_limit": quota.borrowing_limit,
                    "lending_limit": quota.lending_limit,
                    "used": used,
                    "borrowed": max(0, used - quota.nominal),
                    "available": state.quotas.available(name, flavor),
                    "share": round(state.quotas.share(name), 3),
                    "pending_jobs": waiting.get(name, 0),
                }
            )
    return rows


def unit_report(snap: Snapshot) -> list[dict[str, Any]]:
    """Every unit with its node, flavor, NVLink domain and the job holding it (None: free)."""
    holder = {uid: job.id for job in snap.admitted for uid in job.units}
    return [
        {
            "id": u.id,
            "node": u.node,
            "flavor": u.flavor,
            "device": u.device,
            "domain": u.domain,
            "uuid": u.uuid,
            "job": holder.get(u.id),
        }
        for u in snap.units
    ]
