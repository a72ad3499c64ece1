"""GPU discovery with NVML (``nvidia-ml-py``): this machine's GPUs, or none where there are none."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

log = logging.getLogger("governd.nvml")


@dataclass(frozen=True, slots=True)
class Gpu:
    """A GPU NVML found: its index, UUID and flavor name."""

    index: int
    uuid: str
    flavor: str


def flavor_name(product: str) -> str:
    """A flavor from an NVML product name: ``NVIDIA H100 80GB HBM3`` -> ``h100-80gb-hbm3``."""
    name = re.sub(r"^nvidia\s+", "", product.strip(), flags=re.IGNORECASE)
    return re.sub(r"[^a-z0-9.]+", "-", name.lower()).strip("-")


def discover() -> list[Gpu]:
    """Every GPU NVML sees, by index; empty when NVML or a driver is missing."""
    try:
        import pynvml
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        log.info("no GPUs discovered: %s", exc)
        return []
    try:
        found = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            uuid = pynvml.nvmlDeviceGetUUID(handle)
            product = pynvml.nvmlDeviceGetName(handle)
            found.append(
                Gpu(
                    index,
                    uuid if isinstance(uuid, str) else uuid.decode(),
                    flavor_name(product if isinstance(product, str) else product.decode()),
                )
            )
        return found
    finally:
        pynvml.nvmlShutdown()
