"""Quota and device reports over a snapshot."""

from __future__ import annotations

from governd.governance.scheduler import Snapshot
from governd.governance.scheduler.report import queue_report, unit_report
from tests.governance.scheduler.conftest import Cluster, compute, job

TEXT = """
flavors: {h100: {}}
nodes: {n1: {devices: [{flavor: h100, count: 8, nvlink: 4}]}}
cohorts: {lab: {fair_sharing: true}}
queues:
  a: {cohort: lab, quotas: {h100: {nominal: 4, borrowing_limit: 2}}}
  b: {cohort: lab, quotas: {h100: {nominal: 4, lending_limit: 3}}}
"""


def test_reports_say_who_uses_borrows_and_holds_what() -> None:
    cluster = Cluster(compute(TEXT))
    cluster.cycle([job("big", "a", 4), job("extra", "a", 2, at=1), job("more", "a", 2, at=2)])
    snap = Snapshot.of(
        cluster.cfg, cluster.units, tuple(cluster.running.values()), (job("w", "b", 1),), 9.0
    )
    rows = {r["queue"]: r for r in queue_report(snap)}
    assert (rows["a"]["used"], rows["a"]["borrowed"], rows["a"]["available"]) == (6, 2, 0)
    assert (rows["b"]["used"], rows["b"]["available"], rows["b"]["pending_jobs"]) == (0, 2, 1)
    assert rows["a"]["share"] > 0 == rows["b"]["share"]
    held = [u for u in unit_report(snap) if u["job"]]
    assert len(held) == 6 and {u["job"] for u in held} == {"big", "extra"}
