"""Preemption: within a queue by priority, reclaim within a cohort, fair sharing, victim order."""

from __future__ import annotations

import pytest

from tests.governance.scheduler.conftest import Cluster, compute, job

ONE_NODE = """
flavors: {h100: {}}
nodes: {n1: {devices: [{flavor: h100, count: 4}]}}
queues: {a: {quotas: {h100: {nominal: 4}}, preemption: {within_queue: %s}}}
"""


@pytest.mark.parametrize(
    ("policy", "priority", "evicted"),
    [
        ("lower_priority", 1000, ["batch"]),
        ("lower_priority", 10, []),
        ("lower_or_newer_equal_priority", 10, ["batch"]),
        ("never", 1000, []),
    ],
)
def test_within_queue(policy: str, priority: int, evicted: list[str]) -> None:
    cluster = Cluster(compute(ONE_NODE % policy))
    cluster.cycle([job("batch", "a", 4, priority=10, at=5)])
    plan = cluster.cycle([job("urgent", "a", 4, priority=priority, at=1)])
    assert [e.job for e in plan.evict] == evicted
    assert all(e.reason == "within_queue" and e.by == "urgent" for e in plan.evict)


def test_a_preemptor_waits_for_its_victims_then_is_admitted() -> None:
    cluster = Cluster(compute(ONE_NODE % "lower_priority"))
    cluster.cycle([job("batch", "a", 4, priority=10)])
    urgent = job("urgent", "a", 2, priority=1000, at=1)
    plan = cluster.cycle([urgent], stop_victims=False)
    assert [e.job for e in plan.evict] == ["batch"]
    assert plan.waiting["urgent"].startswith("preempting")
    again = cluster.cycle([urgent], stop_victims=False)
    assert again.evict == [] and again.admit == [], "no second eviction while the victim stops"
    del cluster.running["batch"]  # the executor reports it stopped
    assert [a.job for a in cluster.cycle([urgent]).admit] == ["urgent"]


def test_victims_lowest_priority_then_most_recently_admitted_and_no_more_than_needed() -> None:
    cluster = Cluster(compute(ONE_NODE % "lower_priority"))
    cluster.cycle([job("std", "a", 1, priority=100)])
    cluster.cycle([job("old-batch", "a", 1, priority=10, at=1)])
    cluster.cycle([job("new-batch", "a", 1, priority=10, at=2)])
    cluster.cycle([job("big-batch", "a", 1, priority=20, at=3)])
    plan = cluster.cycle([job("urgent", "a", 2, priority=1000, at=4)])
    assert [e.job for e in plan.evict] == ["new-batch", "old-batch"]


def test_fill_back_keeps_a_victim_that_was_not_needed() -> None:
    cluster = Cluster(compute(ONE_NODE % "lower_priority"))
    cluster.cycle([job("small", "a", 1, priority=10)])
    cluster.cycle([job("large", "a", 3, priority=20, at=1)])
    plan = cluster.cycle([job("urgent", "a", 3, priority=1000, at=2)])
    assert [e.job for e in plan.evict] == ["large"], "evicting small too would not be needed"


COHORT = """
flavors: {h100: {}}
nodes: {n1: {devices: [{flavor: h100, count: 8}]}}
cohorts: {lab: {fair_sharing: %s}}
queues:
  a: {cohort: lab, quotas: {h100: {nominal: 4}}, preemption: {reclaim_within_cohort: %s}}
  b: {cohort: lab, quotas: {h100: {nominal: 4}}}
"""


@pytest.mark.parametrize(
    ("reclaim", "priority", "asks", "evicted"),
    [
        ("any", 10, 2, 2),  # a reclaims its lent quota from b, whatever the priority
        ("lower_priority", 10, 2, 0),  # b's jobs are not lower than a's
        ("lower_priority", 1000, 2, 2),
        ("never", 1000, 2, 0),
        ("any", 1000, 5, 0),  # beyond a's nominal quota: that is borrowing, not reclaiming
    ],
)
def test_reclaim_within_cohort(reclaim: str, priority: int, asks: int, evicted: int) -> None:
    cluster = Cluster(compute(COHORT % ("false", reclaim)))
    cluster.cycle([job(f"b{i}", "b", 1, priority=100, at=i) for i in range(8)])
    plan = cluster.cycle([job("a", "a", asks, priority=priority, at=10)])
    assert len(plan.evict) == evicted
    assert all(e.reason == "reclaim_within_cohort" for e in plan.evict)


def test_borrowers_go_before_lower_priority_jobs_of_ones_own_queue() -> None:
    cluster = Cluster(compute(COHORT % ("false", "any")))
    cluster.cycle([job("b1", "b", 4)])
    cluster.cycle([job("b2", "b", 2, at=1)])  # b borrows 2 of a's quota
    cluster.cycle([job("a-batch", "a", 2, priority=10, at=2)])
    plan = cluster.cycle([job("a-urgent", "a", 2, priority=1000, at=3)])
    assert [(e.job, e.reason) for e in plan.evict] == [("b2", "reclaim_within_cohort")]


def test_fair_sharing_preempts_until_shares_meet() -> None:
    text = """
    flavors: {h100: {}}
    nodes: {n1: {devices: [{flavor: h100, count: 8}]}}
    cohorts: {lab: {fair_sharing: true}}
    queues:
      pool: {cohort: lab, quotas: {h100: {nominal: 8}}}
      a: {cohort: lab, quotas: {h100: {nominal: 0}}}
      b: {cohort: lab, quotas: {h100: {nominal: 0}}}
    """
    cluster = Cluster(compute(text))
    cluster.cycle([job(f"a{i}", "a", 1, at=i) for i in range(8)])
    plan = cluster.cycle([job(f"b{i}", "b", 1, at=10 + i) for i in range(8)])
    assert len(plan.evict) == 4 and {e.reason for e in plan.evict} == {"fair_sharing"}
    assert sum(j.queue == "a" for j in cluster.running.values()) == 4
    assert [
        a.job for a in cluster.cycle([job(f"b{i}", "b", 1, at=10 + i) for i in range(8)]).admit
    ] == [
        "b0",
        "b1",
        "b2",
        "b3",
    ]


def test_already_evicting_jobs_are_counted_before_choosing_new_victims() -> None:
    cluster = Cluster(compute(ONE_NODE % "lower_priority"))
    cluster.cycle([job("x", "a", 2, priority=10), job("y", "a", 2, priority=10, at=1)])
    first = cluster.cycle([job("u1", "a", 2, priority=1000, at=2)], stop_victims=False)
    assert len(first.evict) == 1
    plan = cluster.cycle(
        [job("u1", "a", 2, priority=1000, at=2), job("u2", "a", 2, priority=1000, at=3)],
        stop_victims=False,
    )
    assert len(plan.evict) == 1, "u1 waits on the evicting job; only u2 needs a new victim"


# Kueue's ClusterQueues c1 and c2 of pkg/scheduler/preemption/preemption_test.go, in GPUs: each
# nominal 6 with a borrowing limit of 6 in one cohort; c1 preempts lower priority within itself
# and reclaims from lower priority, c2 never preempts within itself and reclaims from any.
KUEUE_COHORT = """
flavors: {h100: {}}
nodes: {n1: {devices: [{flavor: h100, count: 12}]}}
cohorts: {cohort: {}}
queues:
  c1:
    cohort: cohort
    quotas: {h100: {nominal: 6, borrowing_limit: 6}}
    preemption: {within_queue: lower_priority, reclaim_within_cohort: lower_priority}
  c2:
    cohort: cohort
    quotas: {h100: {nominal: 6, borrowing_limit: 6}}
    preemption: {within_queue: never, reclaim_within_cohort: any}
"""
LOW, MID, HIGH = 10, 100, 1000


@pytest.mark.parametrize(
    ("running", "incoming", "evicted"),
    [
        pytest.param(
            [("c1-low", "c1", 3, LOW), ("c2-mid", "c2", 3, MID), ("c2-high", "c2", 6, HIGH)],
            ("in", "c1", 3, HIGH),
            {("c2-mid", "reclaim_within_cohort")},
            id="reclaim quota from borrower",
        ),
        pytest.param(
            [("c1-high", "c1", 4, HIGH), ("c2-low-1", "c2", 4, LOW)],
            ("in", "c1", 4, HIGH),
            set(),
            id="no workloads borrowing",
        ),
        pytest.param(
            [("c1-med", "c1", 4, MID), ("c1-low", "c1", 4, LOW), ("c2-low-1", "c2", 4, LOW)],
            ("in", "c1", 4, HIGH),
            {("c1-low", "within_queue")},
            id="preempting locally and borrowing same resource in cohort",
        ),
        pytest.param(
            # Rule (a): c1 is under nominal (2 of 6). Evicting its own c1-low as well brings
            # the preemptor within nominal (6 of 6), so it may reclaim from c2, which borrows.
            [("c2-big", "c2", 6, LOW), ("c2-extra", "c2", 4, LOW), ("c1-low", "c1", 2, LOW)],
            ("in", "c1", 6, HIGH),
            {("c2-extra", "reclaim_within_cohort"), ("c1-low", "within_queue")},
            id="reclaim counting the preemptor's own victims",
        ),
        pytest.param(
            # Rule (b): 8 is beyond c1's nominal 6, so c1 would borrow after preempting: it
            # may not preempt another queue's jobs for that, only its own.
            [("c2-a", "c2", 4, LOW), ("c2-b", "c2", 4, LOW), ("c1-low", "c1", 2, LOW)],
            ("in", "c1", 8, HIGH),
            set(),
            id="a request beyond nominal never reclaims",
        ),
        pytest.param(
            [("c2-a", "c2", 4, LOW), ("c1-low", "c1", 4, LOW)],
            ("in", "c1", 8, HIGH),
            {("c1-low", "within_queue")},
            id="a request beyond nominal preempts within its queue and borrows",
        ),
    ],
)
def test_kueue_classical_preemption(
    running: list[tuple[str, str, int, int]],
    incoming: tuple[str, str, int, int],
    evicted: set[tuple[str, str]],
) -> None:
    """Kueue's cases (and two more of its rules): who a job of c1 evicts, and why."""
    cluster = Cluster(compute(KUEUE_COHORT))
    for i, (name, queue, count, priority) in enumerate(running):
        plan = cluster.cycle([job(name, queue, count, priority=priority, at=i)])
        assert [a.job for a in plan.admit] == [name]
    name, queue, count, priority = incoming
    plan = cluster.cycle([job(name, queue, count, priority=priority, at=100)])
    assert {(e.job, e.reason) for e in plan.evict} == evicted
