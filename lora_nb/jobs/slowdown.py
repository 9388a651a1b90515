"""The slowdown doctor: what a run's own samples of speed and GPU use say is wrong (pure, no I/O).

The supervisor takes a :class:`Sample` every few seconds (the step rate the parser saw, and GPU
utilisation and memory through NVML, see :mod:`lora_nb.jobs.gpu_watch`); :func:`diagnose` compares
the last minute of them with the run's own first minutes and returns a :class:`Finding` for each of:

- ``slower``: it/s dropped by more than a third against the first minutes;
- ``vram_full``: GPU memory sits at its limit (the driver then spills or the run thrashes);
- ``loader_bound``: the GPU idles while steps still advance: the data loader is the bottleneck.

>>> base = [Sample(t, step=int(t), rate=2.0, gpu_util=95, mem_used=10, mem_total=80) for t in range(0, 200, 5)]
>>> late = [Sample(t, step=int(t), rate=1.0, gpu_util=95, mem_used=10, mem_total=80) for t in range(600, 700, 5)]
>>> [f.code for f in diagnose(base + late)]
['slower']
>>> diagnose(base)
[]
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Sequence

__all__ = ["Sample", "Finding", "diagnose", "is_slowdown_hint", "TITLES", "HINTS", "BASELINE_SECONDS", "RECENT_SECONDS"]

BASELINE_SECONDS = 180.0   # "its own first minutes": the window after the first measured rate
RECENT_SECONDS = 60.0      # the window judged
MIN_SAMPLES = 3            # per window
SLOWER_RATIO = 2 / 3       # more than a third slower
VRAM_FULL = 0.97           # used / total
IDLE_UTIL = 40.0           # per cent

# each finding's title (a warning card's heading) and hint (what to do), by code
TITLES = {"slower": "Training slowed down", "vram_full": "GPU memory is full", "loader_bound": "The GPU waits for data"}
HINTS = {
    "slower": "Look for another process on the GPU (nvidia-smi), a hot or power-capped GPU, the system swapping, or "
              "samples being generated too often.",
    "vram_full": "Lower train_batch_size or resolution, turn on gradient_checkpointing, cache latents, or use an 8-bit "
                 "optimizer; a run at the limit slows down or fails with out-of-memory.",
    "loader_bound": "Raise max_data_loader_n_workers, turn on persistent_data_loader_workers and cache_latents (to disk), "
                    "and keep the dataset on a local SSD.",
}


@dataclass(frozen=True)
class Sample:
    """One moment of a run: seconds since it started, its step and step rate, GPU use (None: unknown)."""

    t: float
    step: int | None = None
    rate: float | None = None
    gpu_util: float | None = None    # per cent, the job's busiest device
    mem_used: float | None = None    # bytes (any unit, with mem_total in the same one)
    mem_total: float | None = None


@dataclass(frozen=True)
class Finding:
    """A warning for the run: a code, one sentence of what is seen, and the hint."""

    code: str
    text: str
    hint: str

    @property
    def message(self) -> str:
        return f"{self.text} {self.hint}"


def _median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def diagnose(samples: Sequence[Sample], baseline_seconds: float = BASELINE_SECONDS,
             recent_seconds: float = RECENT_SECONDS) -> list[Finding]:
    """Findings for a run from its samples (oldest first); ``[]`` while there is too little to judge."""
    if not samples:
        return []
    samples = sorted(samples, key=lambda s: s.t)
    now = samples[-1].t
    recent = [s for s in samples if s.t >= now - recent_seconds]
    out: list[Finding] = []

    rated = [s for s in samples if s.rate]
    if rated:
        start = rated[0].t
        base = [s.rate for s in rated if s.t <= start + baseline_seconds]
        late = [s.rate for s in recent if s.rate and s.t > start + baseline_seconds]
        if len(base) >= MIN_SAMPLES and len(late) >= MIN_SAMPLES:
            b, r = _median(base), _median(late)   # type: ignore[arg-type]
            if r < b * SLOWER_RATIO:
                out.append(Finding("slower", f"Training slowed from {b:.2f} to {r:.2f} it/s ({(1 - r / b):.0%} slower than its first minutes).",
                                   HINTS["slower"]))

    mem = [s for s in recent if s.mem_used is not None and s.mem_total]
    if len(mem) >= MIN_SAMPLES and all(s.mem_used / s.mem_total >= VRAM_FULL for s in mem):   # type: ignore[operator]
        last = mem[-1]
        gib = 1 << 30 if (last.mem_total or 0) > 1 << 20 else 1
        unit = " GiB" if gib > 1 else ""
        out.append(Finding("vram_full", f"GPU memory sits at its limit ({last.mem_used / gib:.1f} of {last.mem_total / gib:.1f}{unit}).",   # type: ignore[operator]
                           HINTS["vram_full"]))

    util = [s for s in recent if s.gpu_util is not None]
    steps = [s.step for s in recent if s.step is not None]
    advancing = len(steps) >= 2 and steps[-1] > steps[0]
    if len(util) >= MIN_SAMPLES and advancing and _median([s.gpu_util for s in util]) < IDLE_UTIL:   # type: ignore[misc]
        out.append(Finding("loader_bound", f"The GPU is idle most of the time ({_median([s.gpu_util for s in util]):.0f}% busy) "   # type: ignore[misc]
                           "while steps advance: the data loader is the bottleneck.",
                           HINTS["loader_bound"]))
    return out


def is_slowdown_hint(text: str) -> bool:
    """Whether a job hint is one of the slowdown doctor's (its message ends with one of :data:`HINTS`).

    >>> is_slowdown_hint(diagnose([Sample(t, step=t, gpu_util=5) for t in range(0, 30, 5)])[0].message)
    True
    """
    return any(text.endswith(h) for h in HINTS.values())
