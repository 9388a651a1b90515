"""The supervisor's GPU sampler: NVML utilisation and memory of the job's devices, with its step times.

Every :data:`INTERVAL` seconds :meth:`GpuWatch.tick` takes a :class:`~lora_nb.jobs.slowdown.Sample`
(the step and it/s the parser last saw, and through ``sampler`` the busiest device's utilisation and
memory), appends it to ``<run-dir>/gpu.jsonl`` and asks :func:`~lora_nb.jobs.slowdown.diagnose`;
each new finding becomes a hint event of the job (shown by the job monitor, ``lora-nb jobs show``),
once per kind. On a host without NVML (no driver, no ``nvidia-ml-py``) the sampler is None and only
the step rate is watched.

The sampler is any function returning ``(util_percent, mem_used, mem_total)`` or None; tests inject a
fake one:

>>> import tempfile, pathlib
>>> from lora_nb.progress.events import Progress
>>> w = GpuWatch(lambda: (20.0, 79.5, 80.0), pathlib.Path(tempfile.mkdtemp()), interval=0)
>>> events = [e for t in range(0, 40, 5) for e in w.tick(float(t), Progress(step=t, rate=2.0))]
>>> sorted(e.data["code"] for e in events)
['slowdown_loader_bound', 'slowdown_vram_full']
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Sequence

from ..progress.events import Event, Progress
from .slowdown import Finding, Sample, diagnose

__all__ = ["GpuWatch", "nvml_sampler", "read_samples", "live_findings", "INTERVAL"]

INTERVAL = 5.0           # seconds between samples
MAX_KEPT = 2000          # samples kept in memory (about 2.7 hours at 5 s)

Sampler = Callable[[], "tuple[float, float, float] | None"]


def nvml_sampler(devices: Sequence[int], nvml: Any | None = None) -> Sampler | None:
    """A sampler over NVML devices ``devices`` (the job's CUDA_VISIBLE_DEVICES); None without NVML.

    It reports the busiest device's utilisation and the fullest device's memory.
    """
    lib = nvml
    if lib is None:
        try:
            import pynvml as lib  # nvidia-ml-py
        except ImportError:
            return None
    error = getattr(lib, "NVMLError", Exception)
    try:
        lib.nvmlInit()
        handles = [lib.nvmlDeviceGetHandleByIndex(int(i)) for i in devices]
    except (error, OSError):
        return None
    if not handles:
        return None

    def sample() -> tuple[float, float, float] | None:
        try:
            utils = [float(lib.nvmlDeviceGetUtilizationRates(h).gpu) for h in handles]
            mems = [lib.nvmlDeviceGetMemoryInfo(h) for h in handles]
        except (error, OSError):
            return None
        fullest = max(mems, key=lambda m: float(m.used) / float(m.total or 1))
        return max(utils), float(fullest.used), float(fullest.total)
    return sample


class GpuWatch:
    """Samples a running job and turns what :func:`diagnose` finds into hint events (once per kind)."""

    def __init__(self, sampler: Sampler | None, run_dir: Path, interval: float = INTERVAL) -> None:
        self.sampler = sampler
        self.path = run_dir / "gpu.jsonl"
        self.interval = interval
        self.samples: list[Sample] = []
        self.reported: set[str] = set()
        self.next_at: float | None = None
        self.start: float | None = None

    def tick(self, now: float, progress: Progress) -> list[Event]:
        """Take a sample when one is due (``now``: monotonic seconds); hint events for new findings."""
        if self.next_at is not None and now < self.next_at:
            return []
        self.next_at = now + self.interval
        if self.start is None:
            self.start = now
        gpu = self.sampler() if self.sampler is not None else None
        busy = (progress.phase or "") in ("sampling", "saving", "caching")   # the GPU's pause there is expected
        sample = Sample(t=now - self.start, step=progress.step, rate=None if busy else progress.rate,
                        gpu_util=None if (gpu is None or busy) else gpu[0],
                        mem_used=None if gpu is None else gpu[1], mem_total=None if gpu is None else gpu[2])
        self.samples.append(sample)
        del self.samples[:-MAX_KEPT]
        try:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(sample.__dict__) + "\n")
        except OSError:
            pass
        out = []
        for finding in diagnose(self.samples):
            if finding.code not in self.reported:
                self.reported.add(finding.code)
                out.append(Event.hint(finding.message, code=f"slowdown_{finding.code}"))
        return out


HEAD_BYTES = 64 << 10    # the start of gpu.jsonl read for the baseline (its first minutes: ~40 samples)
TAIL_BYTES = 256 << 10   # and its end, for the window judged


def read_samples(path: Path) -> list[Sample]:
    """The samples of a ``gpu.jsonl`` (its start and its end when it is long; bad lines skipped); [] when absent."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, 2)
            f.seek(0)
            if size <= HEAD_BYTES + TAIL_BYTES:
                lines = f.read().splitlines()
            else:
                head = f.read(HEAD_BYTES).splitlines()[:-1]            # the last line may be cut
                f.seek(size - TAIL_BYTES)
                lines = head + f.read().splitlines()[1:]
    except OSError:
        return []
    names = Sample.__dataclass_fields__
    out = []
    for line in lines:
        try:
            d = json.loads(line)
            out.append(Sample(**{k: d.get(k) for k in names}))
        except (ValueError, TypeError):
            continue
    return out


def live_findings(run_dir: Path) -> list[Finding]:
    """What the slowdown doctor finds in a run's ``gpu.jsonl`` now (from any process: the file is the record).

    >>> import tempfile, pathlib
    >>> live_findings(pathlib.Path(tempfile.mkdtemp()))
    []
    """
    return diagnose(read_samples(run_dir / "gpu.jsonl"))
