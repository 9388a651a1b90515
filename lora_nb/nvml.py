"""The GPUs of this machine as NVML sees them: their indices (the slots jobs are pinned to).

NVML (``nvidia-ml-py``, imported as ``pynvml``) numbers devices in PCI bus order, the order of
``nvidia-smi``; a job pinned to NVML index 2 gets ``CUDA_VISIBLE_DEVICES=2`` together with
``CUDA_DEVICE_ORDER=PCI_BUS_ID`` so CUDA counts the same way. On a host without an NVIDIA driver
(or without ``pynvml``) the list is empty: nothing is raised, the caller falls back to a count.

``nvml`` may be any object with pynvml's functions; tests pass a fake device list:

>>> class FakeNvml:
...     class NVMLError(Exception): pass
...     def nvmlInit(self): pass
...     def nvmlShutdown(self): pass
...     def nvmlDeviceGetCount(self): return 2
...     def nvmlDeviceGetHandleByIndex(self, i): return i
...     def nvmlDeviceGetName(self, h): return "NVIDIA H200"
...     def nvmlDeviceGetMemoryInfo(self, h):
...         class M: total = 150_000_000_000
...         return M()
>>> [d.index for d in list_devices(FakeNvml())]
[0, 1]
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

__all__ = ["GpuDevice", "list_devices", "device_indices"]


@dataclass(frozen=True)
class GpuDevice:
    """One GPU: its NVML index, name and memory in bytes."""

    index: int
    name: str
    memory_total: int


def _load() -> Any | None:
    try:
        import pynvml  # nvidia-ml-py
    except ImportError:
        return None
    return pynvml


def list_devices(nvml: Any | None = None) -> list[GpuDevice]:
    """The GPUs NVML reports, in its index order; ``[]`` when there is no driver or no ``pynvml``."""
    lib = nvml if nvml is not None else _load()
    if lib is None:
        return []
    error = getattr(lib, "NVMLError", Exception)
    try:
        lib.nvmlInit()
    except (error, OSError):
        return []
    try:
        out = []
        for i in range(int(lib.nvmlDeviceGetCount())):
            handle = lib.nvmlDeviceGetHandleByIndex(i)
            name = lib.nvmlDeviceGetName(handle)
            mem = lib.nvmlDeviceGetMemoryInfo(handle)
            out.append(GpuDevice(i, name.decode() if isinstance(name, bytes) else str(name), int(mem.total)))
        return out
    except (error, OSError):
        return []
    finally:
        try:
            lib.nvmlShutdown()
        except (error, OSError):
            pass


@functools.lru_cache(maxsize=1)
def device_indices() -> tuple[int, ...]:
    """This machine's GPU indices (asked once per process: GPUs do not come and go under a running host)."""
    return tuple(d.index for d in list_devices())
