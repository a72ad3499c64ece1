"""Table-driven scheduling cycles: quota, borrowing, lending, cohorts, fair share, gangs, order."""

from __future__ import annotations

import pytest

from tests.governance.scheduler.conftest import Cluster, compute, job

TWO_TEAMS = """
flavors: {h100: {price_per_hour: 4}}
nodes:
  n1: {devices: [{flavor: h100, count: 4}]}
  n2: {devices: [{flavor: h100, count: 4}]}
cohorts: {lab: {}}
queues:
  a: {cohort: lab, quotas: {h100: {nominal: 4 %s}}}
  b: {cohort: lab, quotas: {h100: {nominal: 4 %s}}}
"""


def admitted_count(cfg_text: str, pending: int, size: int = 1) -> int:
    """How many of ``pending`` jobs of queue a (``size`` devices each) one cycle admits, b idle."""
    cluster = Cluster(compute(cfg_text))
    plan = cluster.cycle([job(f"a{i}", "a", size, at=i) for i in range(pending)])
    return sum(a.job.startswith("a") for a in plan.admit) * size


@pytest.mark.parametrize(
    ("a_extra", "b_extra", "expected", "why"),
    [
        ("", "", 8, "a borrows all of b's idle quota"),
        (", borrowing_limit: 2", "", 6, "a borrows at most 2"),
        ("", ", lending_limit: 1", 5, "b lends at most 1"),
        (", borrowing_limit: 0", "", 4, "a borrows nothing"),
        ("", ", lending_limit: 0", 4, "b lends nothing"),
    ],
)
def test_borrowing_and_lending_limits(a_extra: str, b_extra: str, expected: int, why: str) -> None:
    assert admitted_count(TWO_TEAMS % (a_extra, b_extra), 10) == expected, why


def test_without_a_cohort_a_queue_has_its_nominal_quota_only() -> None:
    text = (TWO_TEAMS % ("", "")).replace("cohort: lab, ", "")
    assert admitted_count(text, 10) == 4


def test_borrowing_is_reported_and_the_lender_still_gets_its_guaranteed_part() -> None:
    cluster = Cluster(compute(TWO_TEAMS % ("", ", lending_limit: 2")))
    plan = cluster.cycle([job(f"a{i}", "a", 1, at=i) for i in range(8)])
    assert [a.borrowing for a in plan.admit] == [False] * 4 + [True] * 2
    plan = cluster.cycle([job(f"b{i}", "b", 1, at=10 + i) for i in range(4)])
    assert len(plan.admit) == 2, "b's 2 unlent devices are still free for b"


def test_a_gang_gets_all_its_devices_on_one_node_or_waits() -> None:
    cluster = Cluster(compute(TWO_TEAMS % ("", "")))
    cluster.cycle([job("x", "a", 3, at=0), job("y", "b", 3, at=1)])
    plan = cluster.cycle([job("gang", "a", 2, at=2)])
    assert plan.admit == [] and "no node has 2 free h100" in plan.waiting["gang"]
    plan = cluster.cycle([job("one", "b", 1, at=3)])
    assert len(plan.admit) == 1, "1 device fits though 2 on one node do not"


def test_a_job_lands_in_one_nvlink_domain_when_one_fits() -> None:
    cfg = compute(
        """
        flavors: {h100: {}}
        nodes: {n1: {devices: [{flavor: h100, count: 8, nvlink: 4}]}}
        queues: {a: {quotas: {h100: {nominal: 8}}}}
        """
    )
    cluster = Cluster(cfg)
    cluster.cycle([job("small", "a", 2)])
    plan = cluster.cycle([job("big", "a", 4, at=1)])
    domains = {cluster.units[int(u.split(":")[1])].domain for u in plan.admit[0].units}
    assert len(domains) == 1
    plan = cluster.cycle([job("split", "a", 2, at=2)])
    assert len(plan.admit) == 1, "the last 2 devices, in the first domain"


def test_higher_priority_goes_first_and_fifo_within_a_priority() -> None:
    cluster = Cluster(compute(TWO_TEAMS % (", borrowing_limit: 0", "")))
    pending = [
        job("old-batch", "a", 2, priority=10, at=0),
        job("new-critical", "a", 2, priority=1000, at=5),
        job("std-1", "a", 2, priority=100, at=1),
        job("std-2", "a", 2, priority=100, at=2),
    ]
    plan = cluster.cycle(pending)
    assert [a.job for a in plan.admit] == ["new-critical", "std-1"]


@pytest.mark.parametrize(
    ("strategy", "expected"), [("strict_fifo", []), ("best_effort_fifo", ["small"])]
)
def test_strict_fifo_blocks_behind_its_head_best_effort_does_not(
    strategy: str, expected: list[str]
) -> None:
    cfg = compute(
        f"""
        flavors: {{h100: {{}}}}
        nodes: {{n1: {{devices: [{{flavor: h100, count: 4}}]}}}}
        queues: {{a: {{strategy: {strategy}, quotas: {{h100: {{nominal: 4}}}}}}}}
        """
    )
    cluster = Cluster(cfg)
    cluster.cycle([job("first", "a", 2)])
    plan = cluster.cycle([job("huge", "a", 4, at=1), job("small", "a", 1, at=2)])
    assert [a.job for a in plan.admit] == expected


def test_a_job_without_a_flavor_takes_the_first_in_quota_order_that_fits() -> None:
    cfg = compute(
        """
        flavors: {a10g: {price_per_hour: 1}, h100: {price_per_hour: 4}}
        nodes: {n1: {devices: [{flavor: a10g, count: 2}, {flavor: h100, count: 2}]}}
        queues: {a: {quotas: {a10g: {nominal: 2}, h100: {nominal: 2}}}}
        """
    )
    plan = Cluster(cfg).cycle([job("j1", "a", 2), job("j2", "a", 2, at=1), job("j3", "a", 1, at=2)])
    assert [(a.job, a.flavor) for a in plan.admit] == [("j1", "a10g"), ("j2", "h100")]
    assert "quota" in plan.waiting["j3"]


def test_fair_sharing_splits_borrowed_capacity_by_weight() -> None:
    text = """
    flavors: {h100: {}}
    nodes: {n1: {devices: [{flavor: h100, count: 8}]}}
    cohorts: {lab: {fair_sharing: %s}}
    queues:
      pool: {cohort: lab, quotas: {h100: {nominal: 8}}}
      a: {cohort: lab, weight: 3, quotas: {h100: {nominal: 0}}}
      b: {cohort: lab, quotas: {h100: {nominal: 0}}}
    """
    pending = [job(f"a{i}", "a", 1, at=i) for i in range(8)] + [
        job(f"b{i}", "b", 1, at=10 + i) for i in range(8)
    ]
    for fair, want in (("true", (6, 2)), ("false", (8, 0))):
        plan = Cluster(compute(text % fair)).cycle(pending)
        got = tuple(sum(a.job.startswith(q) for a in plan.admit) for q in "ab")
        assert got == want, f"fair_sharing {fair}"


def test_unknown_flavor_for_the_queue_waits_with_a_reason() -> None:
    plan = Cluster(compute(TWO_TEAMS % ("", ""))).cycle([job("j", "a", 1, flavor="a10g")])
    assert plan.waiting["j"] == "queue a has no quota for a10g"
