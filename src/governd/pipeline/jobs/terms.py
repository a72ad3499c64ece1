"""What a job asks for, whether its principal may, and what it holds: the terms of a submission.

Checks a submission against the queues and the inventory (400/403 naming the
field), prices it (a piece of a device costs its part of the device), and
makes its first record with the budget bound it holds: devices x max runtime,
in USD and in device-hours.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from governd.actions import Principal, within
from governd.config.compute import ComputeConfig
from governd.errors import InvalidRequest, PermissionDenied
from governd.governance.budgets import Cost
from governd.governance.scheduler import Unit
from governd.ids import new_id
from governd.ledger.job_record import JobRecord


@dataclass(frozen=True, slots=True)
class JobSpec:
    """What a submitter asks for."""

    queue: str
    gpus: int
    command: tuple[str, ...]
    flavor: str | None = None
    max_runtime_s: float | None = None
    priority: str | None = None
    env: tuple[tuple[str, str], ...] = ()


class JobTerms:
    """Submission checks, prices and first rows over one inventory."""

    def __init__(self, cfg: ComputeConfig, units: tuple[Unit, ...]) -> None:
        self.cfg = cfg
        self.unit = {u.id: u for u in units}
        self._prices = {name: f.price_per_hour for name, f in cfg.flavors.items()}
        self._fractions = {u.flavor: u.fraction for u in units}
        per_node: dict[tuple[str, str], int] = {}
        for u in units:
            per_node[(u.flavor, u.node)] = per_node.get((u.flavor, u.node), 0) + 1
        self._largest: dict[str, int] = {}
        for (flavor, _), n in per_node.items():
            self._largest[flavor] = max(n, self._largest.get(flavor, 0))

    def check(self, principal: Principal, spec: JobSpec) -> None:
        """Raise the error that names what is wrong with ``spec`` for ``principal``, if anything."""
        queue = self.cfg.queues.get(spec.queue)
        if queue is None:
            raise InvalidRequest(f"unknown queue {spec.queue!r}", param="queue")
        if queue.principals and not any(_under(principal, p) for p in queue.principals):
            raise PermissionDenied(f"{principal.path} may not submit to queue {spec.queue}")
        flavors = self._flavors(spec)
        if not flavors or any(f not in queue.quotas for f in flavors):
            raise InvalidRequest(
                f"queue {spec.queue} has no quota for flavor {spec.flavor}", param="flavor"
            )
        largest = max(self._largest.get(f, 0) for f in flavors)
        if spec.gpus > largest:
            raise InvalidRequest(
                f"{spec.gpus} devices never fit: the largest node has {largest} of "
                f"{' or '.join(flavors)}",
                param="gpus",
            )
        if spec.priority is not None and spec.priority not in self.cfg.priority_classes:
            raise InvalidRequest(f"unknown priority class {spec.priority!r}", param="priority")

    def _flavors(self, spec: JobSpec) -> list[str]:
        queue = self.cfg.queues.get(spec.queue)
        return [spec.flavor] if spec.flavor else list(queue.quotas if queue else [])

    def fraction(self, flavor: str) -> float:
        """The part of a device one unit of ``flavor`` is."""
        return self._fractions.get(flavor, 1.0)

    def unit_price(self, flavor: str) -> float:
        """USD per hour of one unit of ``flavor``."""
        return self._prices.get(flavor.partition("/")[0], 0.0) * self.fraction(flavor)

    def visible(self, units: tuple[str, ...]) -> tuple[str, ...]:
        """What the job's ``CUDA_VISIBLE_DEVICES`` lists: UUIDs where known, else indices."""
        seen: dict[str, None] = {}
        for uid in units:
            u = self.unit[uid]
            seen[u.uuid or str(u.device)] = None
        return tuple(seen)

    def charge(self, row: JobRecord, seconds: float) -> None:
        """Add an attempt of ``seconds`` on the job's units to its runtime, device-seconds and cost."""
        units = [self.unit[u] for u in row.units]
        row.runtime_s += seconds
        row.device_seconds += seconds * sum(u.fraction for u in units)
        row.cost_usd += seconds / 3600 * sum(self.unit_price(u.flavor) for u in units)

    def new_record(self, principal: Principal, spec: JobSpec, now: float) -> JobRecord:
        """The job's first record: queued, holding devices x max runtime of the dearest flavor."""
        flavors = self._flavors(spec)
        max_runtime = spec.max_runtime_s or self.cfg.default_max_runtime_s
        price = max((self.unit_price(f) for f in flavors), default=0.0)
        fraction = max((self.fraction(f) for f in flavors), default=1.0)
        klass = spec.priority or self.cfg.default_priority
        return JobRecord(
            id=new_id("job_"),
            principal=principal.path,
            key_id=principal.key_id,
            queue=spec.queue,
            flavor=spec.flavor,
            gpus=spec.gpus,
            priority=self.cfg.priority_classes.get(klass, 0),
            priority_class=klass,
            max_runtime_s=max_runtime,
            argv=spec.command,
            env=spec.env,
            submitted_at=now,
            reserved_usd=round(price * spec.gpus * max_runtime / 3600, 9),
            reserved_device_hours=round(fraction * spec.gpus * max_runtime / 3600, 9),
        )


def bound(row: JobRecord) -> Cost:
    """What a job holds on its budgets: its USD bound, and devices x max runtime in device-hours."""
    return Cost(row.reserved_usd, 0, row.reserved_device_hours)


def principal_of(row: JobRecord) -> Principal:
    """The principal (with its key) a job belongs to."""
    return replace(Principal.from_path(row.principal), key_id=row.key_id)


def _under(principal: Principal, entry: str) -> bool:
    """Whether the principal is the node ``entry`` names (with or without the org) or below it."""
    org = principal.org
    return within(principal.path, entry if within(entry, org) else f"{org}/{entry}")


def policy_view(row: JobRecord) -> dict[str, Any]:
    """What CEL policies see of a submission as ``job``."""
    return {
        "queue": row.queue,
        "gpus": row.gpus,
        "flavor": row.flavor or "",
        "priority": row.priority_class,
        "max_runtime_s": row.max_runtime_s,
    }


def log_dir(compute: ComputeConfig, storage: str) -> Path:
    """Where job logs go: ``compute.log_dir``, else beside a SQLite ledger, else ./job-logs."""
    if compute.log_dir:
        return Path(compute.log_dir)
    if storage.startswith("sqlite:///") and not storage.endswith(":memory:"):
        return Path(storage.removeprefix("sqlite:///")).parent / "job-logs"
    return Path("job-logs")
