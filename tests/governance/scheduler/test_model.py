"""The inventory a compute config declares, and the config's own checks."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from governd.governance.scheduler import Discovered, inventory
from tests.governance.scheduler.conftest import compute


def test_devices_partitions_shares_and_nvlink_domains() -> None:
    cfg = compute(
        """
        flavors: {h100: {price_per_hour: 4}, a10g: {price_per_hour: 1}}
        nodes:
          n1:
            devices:
              - {flavor: h100, count: 4, nvlink: 2}
              - {flavor: h100, count: 1, partition: 1g.10gb, per_device: 7}
              - {flavor: a10g, count: 1, shares: 4}
        queues: {a: {quotas: {h100/1g.10gb: {nominal: 7}, a10g/share: {nominal: 4}}}}
        """
    )
    units = inventory(cfg, {})
    by_flavor: dict[str, list[str]] = {}
    for u in units:
        by_flavor.setdefault(u.flavor, []).append(u.id)
    assert {f: len(ids) for f, ids in by_flavor.items()} == {
        "h100": 4,
        "h100/1g.10gb": 7,
        "a10g/share": 4,
    }
    whole = [u for u in units if u.flavor == "h100"]
    assert [u.device for u in whole] == [0, 1, 2, 3]
    assert whole[0].domain == whole[1].domain != whole[2].domain
    mig = [u for u in units if u.flavor == "h100/1g.10gb"]
    assert {u.device for u in mig} == {4} and mig[0].fraction == pytest.approx(1 / 7)
    assert next(u.id for u in units if u.flavor == "a10g/share") == "n1:5/0"


def test_discovered_gpus_join_a_node_that_asks_for_them() -> None:
    cfg = compute(
        """
        flavors: {h200: {price_per_hour: 5}}
        nodes: {local: {discover: true}}
        """
    )
    found = {"local": [Discovered(0, "GPU-abc", "h200"), Discovered(1, "GPU-def", "h200")]}
    units = inventory(cfg, found)
    assert [(u.id, u.device, u.uuid) for u in units] == [
        ("local:GPU-abc", 0, "GPU-abc"),
        ("local:GPU-def", 1, "GPU-def"),
    ]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("nodes: {n: {devices: [{flavor: x, count: 1}]}}", "unknown flavor 'x'"),
        ("queues: {a: {cohort: nope}}", "unknown cohort 'nope'"),
        ("flavors: {h: {}}\nqueues: {a: {quotas: {h/1g: {nominal: 1}}}}", "h/1g: unknown flavor"),
        ("queues: {a: {quotas: {}, weight: 0}}", "greater than 0"),
        (
            "flavors: {h: {}}\nqueues: {a: {quotas: {h: {nominal: 1, lending_limit: 2}}}}",
            "lending_limit",
        ),
        (
            "flavors: {h: {}}\nnodes: {n: {devices: [{flavor: h, count: 1, partition: p, per_device: 2, shares: 2}]}}",
            "partitions or shares",
        ),
        ("default_priority: urgent", "unknown priority class 'urgent'"),
    ],
)
def test_config_problems_are_named(text: str, problem: str) -> None:
    with pytest.raises(ValidationError) as err:
        compute(text)
    assert problem in str(err.value)
