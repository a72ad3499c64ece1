"""What the scheduler reasons about: device units, jobs, the snapshot it reads and the plan it returns."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from governd.config.compute import CohortConfig, ComputeConfig, QueueConfig


@dataclass(frozen=True, slots=True)
class Unit:
    """One schedulable piece of an accelerator: a whole device, a partition or a share.

    ``device`` is the index a job sees in ``CUDA_VISIBLE_DEVICES``; ``domain``
    names the NVLink domain (unique across nodes); ``fraction`` is the part of
    the device this unit is, which prices it.
    """

    id: str
    node: str
    flavor: str
    device: int
    domain: str
    fraction: float = 1.0
    uuid: str | None = None


@dataclass(frozen=True, slots=True)
class Discovered:
    """A GPU found on this machine (by NVML): its index, UUID and flavor."""

    index: int
    uuid: str
    flavor: str


def inventory(cfg: ComputeConfig, discovered: Mapping[str, list[Discovered]]) -> tuple[Unit, ...]:
    """Every unit the configured nodes offer, plus what discovery found on nodes that ask for it."""
    units: list[Unit] = []
    for node, node_cfg in cfg.nodes.items():
        index = 0
        for g, group in enumerate(node_cfg.devices):
            pieces = max(group.per_device, group.shares)
            for d in range(group.count):
                domain = f"{node}/g{g}/nv{d // group.nvlink}" if group.nvlink else f"{node}/{index}"
                for p in range(pieces):
                    suffix = f"/{p}" if pieces > 1 else ""
                    units.append(
                        Unit(
                            f"{node}:{index}{suffix}",
                            node,
                            group.unit_flavor,
                            index,
                            domain,
                            1.0 / pieces,
                        )
                    )
                index += 1
        if node_cfg.discover:
            units += [
                Unit(
                    f"{node}:{gpu.uuid}",
                    node,
                    gpu.flavor,
                    gpu.index,
                    f"{node}/{gpu.index}",
                    1.0,
                    gpu.uuid,
                )
                for gpu in discovered.get(node, [])
            ]
    return tuple(units)


@dataclass(frozen=True, slots=True)
class Job:
    """A job as the scheduler sees it: what it asks for, and what it holds once admitted.

    ``flavor`` None lets the scheduler pick the first flavor in the queue's
    quota order that fits. ``evicting``: asked to stop, still holding its units.
    """

    id: str
    queue: str
    count: int
    priority: int
    submitted: float
    flavor: str | None = None
    units: tuple[str, ...] = ()
    admitted_at: float | None = None
    evicting: bool = False


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Capacity, queues, and every admitted and pending job at one instant; never changed."""

    units: tuple[Unit, ...]
    queues: Mapping[str, QueueConfig]
    cohorts: Mapping[str, CohortConfig]
    admitted: tuple[Job, ...]
    pending: tuple[Job, ...]
    now: float

    @classmethod
    def of(
        cls,
        cfg: ComputeConfig,
        units: tuple[Unit, ...],
        admitted: tuple[Job, ...],
        pending: tuple[Job, ...],
        now: float,
    ) -> Snapshot:
        """A snapshot over the queues and cohorts of ``cfg``."""
        return cls(units, cfg.queues, cfg.cohorts, admitted, pending, now)


@dataclass(frozen=True, slots=True)
class Admission:
    """Admit ``job`` on ``units`` (of ``flavor``); ``borrowing`` if it uses quota beyond nominal."""

    job: str
    flavor: str
    units: tuple[str, ...]
    borrowing: bool


@dataclass(frozen=True, slots=True)
class Eviction:
    """Stop ``job`` to make room for ``by``; ``reason`` says which rule allowed it."""

    job: str
    by: str
    reason: str


@dataclass(slots=True)
class Plan:
    """What one scheduling cycle decided: admissions, evictions, and why the rest wait."""

    admit: list[Admission] = field(default_factory=list)
    evict: list[Eviction] = field(default_factory=list)
    waiting: dict[str, str] = field(default_factory=dict)
