"""The compute part of ``governd.yaml``: accelerators, queues, cohorts and priorities for jobs.

``GovernConfig.compute`` is this section. The words follow Kueue's where they mean the same thing: a queue
(Kueue's ClusterQueue) has per-flavor quotas with a nominal amount, a
borrowing limit and a lending limit; queues of one cohort lend each other
their unused quota.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from governd.config.base import StrictModel
from governd.config.problems import ReferenceProblems
from governd.config.references import compute_references

Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=64)]


def _not_governds(name: str) -> str:
    if name.startswith("GOVERND_"):
        raise ValueError("GOVERND_* variables hold governd's secrets and never reach a job")
    return name


#: A variable a job may inherit; never one of governd's own (``GOVERND_*`` holds its secrets).
EnvName = Annotated[
    str,
    Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=128),
    AfterValidator(_not_governds),
]
#: A flavor as quotas name it: ``h100``, or a piece of one, ``h100/1g.10gb`` or ``h100/share``.
UnitFlavor = Annotated[
    str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9._-]+)?$", max_length=130)
]


class FlavorConfig(StrictModel):
    """A kind of accelerator, priced per device-hour."""

    price_per_hour: float = Field(0.0, ge=0, description="USD per device-hour")


class DeviceGroupConfig(StrictModel):
    """``count`` devices of one flavor on a node, optionally split into partitions or shares.

    ``nvlink`` is how many consecutive devices share an NVLink domain (0: none).
    ``partition`` names a MIG-style profile and ``per_device`` how many of them
    each device is split into; ``shares`` time-slices each device among that
    many jobs. A split device offers only its pieces, whose flavor is
    ``<flavor>/<profile>`` or ``<flavor>/share`` and whose price is the
    device's divided among them.
    """

    flavor: Name
    count: int = Field(ge=1, le=1024)
    nvlink: int = Field(0, ge=0)
    partition: Name | None = None
    per_device: int = Field(1, ge=1, le=64)
    shares: int = Field(1, ge=1, le=64)

    @property
    def unit_flavor(self) -> str:
        """The flavor of the units it offers: whole devices, partitions or shares."""
        if self.partition is not None:
            return f"{self.flavor}/{self.partition}"
        if self.shares > 1:
            return f"{self.flavor}/share"
        return self.flavor

    @model_validator(mode="after")
    def _one_split(self) -> DeviceGroupConfig:
        if self.partition is not None and self.shares > 1:
            raise ValueError("a device group is split into partitions or shares, not both")
        if (self.partition is None) != (self.per_device == 1):
            raise ValueError("partition and per_device go together (per_device >= 2)")
        return self


class NodeConfig(StrictModel):
    """One machine's accelerators (declared; or found with NVML when ``discover`` is set)."""

    devices: list[DeviceGroupConfig] = Field(default_factory=list)
    discover: bool = Field(False, description="add this machine's GPUs found by NVML")


class FlavorQuotaConfig(StrictModel):
    """How many devices of one flavor a queue may use: its own, borrowed, and lent out."""

    nominal: int = Field(ge=0)
    borrowing_limit: int | None = Field(
        None, ge=0, description="most devices borrowed from the cohort (unset: no limit)"
    )
    lending_limit: int | None = Field(
        None, ge=0, description="most of the nominal quota others may borrow (unset: all)"
    )

    @model_validator(mode="after")
    def _lend_own(self) -> FlavorQuotaConfig:
        if self.lending_limit is not None and self.lending_limit > self.nominal:
            raise ValueError("lending_limit cannot exceed nominal")
        return self


WithinQueue = Literal["never", "lower_priority", "lower_or_newer_equal_priority"]
ReclaimWithinCohort = Literal["never", "lower_priority", "any"]


class PreemptionConfig(StrictModel):
    """Whom a job that does not fit may evict (Kueue's ClusterQueue preemption)."""

    within_queue: WithinQueue = "lower_priority"
    reclaim_within_cohort: ReclaimWithinCohort = "any"


class QueueConfig(StrictModel):
    """A team's queue: who may submit, its quotas, its cohort and how it preempts."""

    principals: list[str] = Field(
        default_factory=list, description="principal subtrees that may submit (empty: any)"
    )
    cohort: Name | None = None
    weight: float = Field(1.0, gt=0, description="fair-sharing weight within the cohort")
    strategy: Literal["best_effort_fifo", "strict_fifo"] = "best_effort_fifo"
    quotas: dict[UnitFlavor, FlavorQuotaConfig] = Field(default_factory=dict)
    preemption: PreemptionConfig = Field(default_factory=PreemptionConfig)


class CohortConfig(StrictModel):
    """Queues that lend each other unused quota."""

    fair_sharing: bool = Field(
        False, description="order and reclaim by weighted share of borrowed quota"
    )


class ComputeConfig(StrictModel):
    """Accelerators and the queues that share them."""

    flavors: dict[Name, FlavorConfig] = Field(default_factory=dict)
    nodes: dict[Name, NodeConfig] = Field(default_factory=dict)
    priority_classes: dict[Name, int] = Field(
        default_factory=lambda: {"critical": 1000, "standard": 100, "batch": 10}
    )
    default_priority: Name = "standard"
    cohorts: dict[Name, CohortConfig] = Field(default_factory=dict)
    queues: dict[Name, QueueConfig] = Field(default_factory=dict)
    executor: str = Field(
        "local",
        pattern=r"^(local|ray|ray://[^/]+)$",
        description="local processes; ray (one started in governd); ray://HOST:PORT (a Ray cluster)",
    )
    default_max_runtime_s: float = Field(
        3600.0, gt=0, description="a job's runtime bound when it names none (its budget hold)"
    )
    grace_s: float = Field(10.0, ge=0, description="SIGTERM to SIGKILL on preemption or cancel")
    pass_env: list[EnvName] = Field(
        default_factory=list,
        description="variables of governd's environment a job also inherits, by name",
    )
    log_dir: str | None = Field(
        None, description="job logs (default: job-logs beside a SQLite ledger, else ./job-logs)"
    )

    @model_validator(mode="after")
    def _references(self) -> ComputeConfig:
        problems = compute_references(self)
        if problems:
            raise ReferenceProblems(problems)
        return self
