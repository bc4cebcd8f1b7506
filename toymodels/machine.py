"""The machine a sweep runs on, as JAX sees it: the memory one compiled step may use.

Apart from `toymodels.limits` (the sizes a sweep may have), which parsing reads without
JAX; the engine checks a sweep against both (`toymodels.limits.check_sizes`).
"""

from __future__ import annotations

import os

import jax


def machine_memory() -> tuple[int, str] | None:
    """(bytes, whose) that one compiled step may use: the first JAX device's own memory
    where it reports one (a GPU's), else this machine's physical memory; None where
    neither is known."""
    device = jax.devices()[0]
    try:
        limit = (device.memory_stats() or {}).get("bytes_limit")
    except (NotImplementedError, RuntimeError):  # a backend without memory statistics
        limit = None
    if limit:
        return int(limit), f"the memory of {device.platform} {device.id} ({device.device_kind})"
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), "this machine's memory"
    except (AttributeError, OSError, ValueError):
        return None
