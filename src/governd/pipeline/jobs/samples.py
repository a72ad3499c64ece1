"""What ``/metrics`` shows of jobs: unfinished jobs by queue and status, units in use by flavor."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from governd.governance.scheduler import Unit
from governd.observe.metrics import Sample
from governd.pipeline.jobs.state import Live


def job_samples(jobs: Iterable[Live]) -> list[Sample]:
    """Unfinished jobs by queue and status."""
    counts: dict[tuple[str, str], int] = {}
    for live in jobs:
        key = (live.row.queue, live.row.status)
        counts[key] = counts.get(key, 0) + 1
    return [({"queue": q, "status": st}, float(n)) for (q, st), n in sorted(counts.items())]


def unit_samples(jobs: Iterable[Live], units: Mapping[str, Unit]) -> list[Sample]:
    """Units held by running jobs, by flavor (every flavor listed, 0 when none is used)."""
    in_use = dict.fromkeys((u.flavor for u in units.values()), 0)
    for live in jobs:
        if live.execution is not None:
            for uid in live.row.units:
                in_use[units[uid].flavor] += 1
    return [({"flavor": f}, float(n)) for f, n in sorted(in_use.items())]
