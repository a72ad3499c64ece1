"""GPU discovery with NVML: flavor names from product names, and what this machine has."""

from __future__ import annotations

from pathlib import Path

import pytest

from governd.execution.executors.nvml import discover, flavor_name


@pytest.mark.parametrize(
    ("product", "flavor"),
    [
        ("NVIDIA H100 80GB HBM3", "h100-80gb-hbm3"),
        ("NVIDIA H200", "h200"),
        ("NVIDIA A10G", "a10g"),
        ("Tesla T4", "tesla-t4"),
        ("NVIDIA RTX 6000 Ada Generation", "rtx-6000-ada-generation"),
    ],
)
def test_flavor_names(product: str, flavor: str) -> None:
    assert flavor_name(product) == flavor


def test_discovery_finds_this_machines_gpus_and_only_them() -> None:
    found = discover()
    if Path("/dev/nvidiactl").exists():  # a machine with the NVIDIA driver
        assert found and [g.index for g in found] == list(range(len(found)))
        assert all(g.uuid.startswith(("GPU-", "MIG-")) and g.flavor for g in found)
    else:
        assert found == []
