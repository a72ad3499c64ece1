"""Submission terms: who may submit where, what never fits, what a job holds on its budgets."""

from __future__ import annotations

import pytest

from governd.actions import Principal
from governd.errors import InvalidRequest, PermissionDenied
from governd.governance.scheduler import inventory
from governd.pipeline.jobs.terms import JobSpec, JobTerms, bound
from tests.governance.scheduler.conftest import compute

CFG = compute(
    """
    flavors: {h100: {price_per_hour: 3.5}, a10g: {price_per_hour: 1.0}}
    nodes:
      n1: {devices: [{flavor: h100, count: 4}, {flavor: a10g, count: 1, shares: 4}]}
      n2: {devices: [{flavor: h100, count: 2}]}
    queues:
      train: {principals: [research], quotas: {h100: {nominal: 6}, a10g/share: {nominal: 4}}}
      open: {quotas: {h100: {nominal: 1}}}
    default_max_runtime_s: 7200
    """
)
TERMS = JobTerms(CFG, inventory(CFG, {}))


@pytest.mark.parametrize(
    ("who", "spec", "error", "param"),
    [
        (Principal("acme", "research", "agents"), JobSpec("train", 4, ("x",)), None, None),
        (Principal("acme", "research"), JobSpec("open", 1, ("x",)), None, None),
        (Principal("acme", "support"), JobSpec("train", 1, ("x",)), PermissionDenied, None),
        (Principal("acme", "researchers"), JobSpec("train", 1, ("x",)), PermissionDenied, None),
        (
            Principal("acme", "research"),
            JobSpec("train", 5, ("x",), "h100"),
            InvalidRequest,
            "gpus",
        ),
        (
            Principal("acme", "research"),
            JobSpec("train", 1, ("x",), "a10g"),
            InvalidRequest,
            "flavor",
        ),
        (Principal("acme", "research"), JobSpec("nope", 1, ("x",)), InvalidRequest, "queue"),
        (
            Principal("acme", "research"),
            JobSpec("train", 1, ("x",), priority="vip"),
            InvalidRequest,
            "priority",
        ),
    ],
    ids=[
        "member",
        "open-queue",
        "other-team",
        "prefix-is-not-a-parent",
        "never-fits",
        "no-quota-for-flavor",
        "unknown-queue",
        "unknown-priority",
    ],
)
def test_checks(
    who: Principal, spec: JobSpec, error: type[Exception] | None, param: str | None
) -> None:
    if error is None:
        TERMS.check(who, spec)
        return
    with pytest.raises(error) as raised:
        TERMS.check(who, spec)
    assert getattr(raised.value, "param", None) == param


def test_a_job_holds_devices_times_max_runtime_of_its_dearest_flavor() -> None:
    row = TERMS.new_record(Principal("acme", "research"), JobSpec("train", 2, ("x",)), 100.0)
    held = bound(row)
    assert held.usd == pytest.approx(2 * 3.5 * 2)  # h100 is dearer than a10g/share; 2 h default
    assert held.device_hours == pytest.approx(2 * 2)
    share = TERMS.new_record(
        Principal("acme", "research"), JobSpec("train", 2, ("x",), "a10g/share", 3600), 100.0
    )
    assert bound(share).usd == pytest.approx(2 * 0.25) and bound(share).device_hours == 0.5


def test_charge_counts_device_seconds_by_fraction() -> None:
    row = TERMS.new_record(Principal("acme", "research"), JobSpec("train", 2, ("x",)), 0.0)
    row.units = ("n1:4/0", "n1:4/1")  # two shares of the a10g
    TERMS.charge(row, 3600.0)
    assert (row.device_seconds, row.cost_usd) == (pytest.approx(1800.0), pytest.approx(0.5))
    assert TERMS.visible(("n1:4/0", "n1:4/1")) == ("4",)
