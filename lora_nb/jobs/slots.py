"""GPU slots: which devices jobs may be pinned to, and how many jobs may hold them at once.

A workspace's slots are a list of device indices, one entry per slot:

1. the ``gpu_devices`` setting when set (``[0, 1]``; an index may repeat, ``[0, 0]`` lets two
   small runs share one big card),
2. else the GPUs NVML finds on this machine (:func:`lora_nb.nvml.device_indices`),
3. else ``gpu_slots`` slots on devices ``0 .. gpu_slots-1`` (a CPU-only host, or no driver
   library: the count still bounds how many GPU jobs run at once).

A job asks for ``gpus`` slots (0: none, it starts at once). The scheduler gives it the lowest
free slots and records them with the job; its supervisor then sets ``CUDA_VISIBLE_DEVICES`` to
their devices, so two jobs never land on one card unless the slot list says so.

>>> from lora_nb.settings import Settings
>>> from lora_nb.store import Store
>>> import tempfile, pathlib
>>> s = Settings(Store(pathlib.Path(tempfile.mkdtemp()) / "db"))
>>> s.set("gpu_devices", [0, 1])
>>> slot_devices(s)
(0, 1)
>>> pick_free(slot_devices(s), held={0}, want=1)
[1]
>>> cuda_env([1, 3])
{'CUDA_VISIBLE_DEVICES': '1,3', 'CUDA_DEVICE_ORDER': 'PCI_BUS_ID'}
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence

from ..errors import JobError

__all__ = ["slot_devices", "pick_free", "distinct_count", "cuda_env", "check_devices", "spread", "MAX_SLOTS"]

MAX_SLOTS = 64


def check_devices(value: Any) -> list[int]:
    """A valid ``gpu_devices`` list, or a :class:`JobError` saying what is wrong."""
    items = [p for p in value.replace(" ", "").split(",") if p] if isinstance(value, str) else value
    devices: list[int] = []
    try:
        for v in items:
            if isinstance(v, bool) or not (isinstance(v, int) or (isinstance(v, str) and v.isdigit())):
                raise TypeError(v)
            devices.append(int(v))
    except TypeError:
        devices = []
    if not devices or any(d < 0 for d in devices) or len(devices) > MAX_SLOTS:
        raise JobError(f"The GPU slot list {value!r} is not a list of device indices.",
                       fix="Give device numbers as nvidia-smi shows them, e.g. [0, 1] or '0,1' (a number may repeat to share a card).")
    return devices


def slot_devices(settings: Any, detect: Callable[[], Sequence[int]] | None = None) -> tuple[int, ...]:
    """The device index of every slot, in slot order (see the module docstring for where it comes from)."""
    explicit = settings.get("gpu_devices")
    if explicit:
        return tuple(check_devices(explicit))
    if detect is None:
        from ..nvml import device_indices as detect
    found = tuple(detect())
    if found:
        return found
    return tuple(range(max(1, int(settings.get("gpu_slots") or 1))))


def pick_free(devices: Sequence[int], held: Iterable[int], want: int) -> list[int] | None:
    """Free slot numbers (positions in ``devices``) for a job wanting ``want`` GPUs, or None if it must wait.

    The slots picked sit on ``want`` different devices (a 2-GPU run needs two cards, not two
    shares of one), and the least busy devices come first (lowest slot number on a tie).
    """
    taken = set(held)
    load: dict[int, int] = {}
    for i in taken:
        if 0 <= i < len(devices):
            load[devices[i]] = load.get(devices[i], 0) + 1
    picked: list[int] = []
    used: set[int] = set()
    for i in sorted((i for i in range(len(devices)) if i not in taken), key=lambda i: (load.get(devices[i], 0), i)):
        if devices[i] not in used:
            picked.append(i)
            used.add(devices[i])
            if len(picked) == want:
                return sorted(picked)
    return None


def distinct_count(devices: Sequence[int]) -> int:
    """How many different cards the slots are on: the most GPUs one job can hold."""
    return len(set(devices))


def spread(devices: Sequence[int], count: int) -> list[int]:
    """``count`` slots laid round-robin over ``devices``: ``spread([0, 1], 3) == [0, 1, 0]``."""
    distinct = list(dict.fromkeys(devices)) or [0]
    return [distinct[i % len(distinct)] for i in range(count)]


def cuda_env(devices: Sequence[int]) -> dict[str, str]:
    """The environment that pins a process to ``devices`` (empty list: no GPU at all)."""
    return {"CUDA_VISIBLE_DEVICES": ",".join(str(d) for d in dict.fromkeys(devices)), "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
