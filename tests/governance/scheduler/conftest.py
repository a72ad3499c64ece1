"""Builders for scheduler tests: a compute config from YAML, jobs from short tuples."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import yaml

from governd.config.compute import ComputeConfig
from governd.governance.scheduler import Job, Plan, Snapshot, inventory, schedule


def compute(text: str) -> ComputeConfig:
    """A ``compute:`` section from YAML."""
    return ComputeConfig.model_validate(yaml.safe_load(text))


def job(jid: str, queue: str, count: int, priority: int = 100, at: float = 0.0, **kw: Any) -> Job:
    """A pending job; ``at`` is when it was submitted."""
    return Job(jid, queue, count, priority, at, **kw)


class Cluster:
    """Runs cycles over one config, applying each plan like an executor that stops victims at once."""

    def __init__(self, cfg: ComputeConfig) -> None:
        self.cfg = cfg
        self.units = inventory(cfg, {})
        self.running: dict[str, Job] = {}
        self.now = 0.0

    def cycle(self, pending: list[Job], stop_victims: bool = True) -> Plan:
        """One cycle; admitted jobs start, victims stop (or only start evicting)."""
        self.now += 1
        done = {j.id for j in self.running.values()}
        snap = Snapshot.of(
            self.cfg,
            self.units,
            tuple(self.running.values()),
            tuple(j for j in pending if j.id not in done),
            self.now,
        )
        plan = schedule(snap)
        by_id = {j.id: j for j in pending}
        for a in plan.admit:
            j = by_id[a.job]
            self.running[a.job] = replace(j, flavor=a.flavor, units=a.units, admitted_at=self.now)
        for e in plan.evict:
            victim = self.running.pop(e.job)
            if not stop_victims:
                self.running[e.job] = replace(victim, evicting=True)
        return plan
