"""The step calculator: how many optimizer steps a run will take, exactly as sd-scripts counts them.

images x repeats, grouped into kohya's buckets (batches never mix buckets), regularisation
images repeated up to the training count, then ``ceil(batches / processes / accumulation)``
steps per epoch (ENGINES.md A6). With the images known the number is the one the engine
prints as ``total optimization steps``; without them it is an estimate that ignores buckets.

>>> from lora_nb.config.stepcalc import count_steps
>>> est = count_steps([((1024, 1024), 120), ((1152, 896), 50), ((896, 1152), 30)], batch_size=4, epochs=10,
...                   grad_accum=2)
>>> est.batches_per_epoch, est.steps_per_epoch, est.total_steps
(51, 26, 260)
"""
from __future__ import annotations

import math
import re
import statistics
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable

if TYPE_CHECKING:  # pragma: no cover
    from ..ports import StepsHome
    from .model import TrainingConfig

__all__ = ["StepEstimate", "steps", "count_steps", "collect_samples"]

_REPEATS_FOLDER = re.compile(r"^\d+_")


@dataclass(frozen=True)
class StepEstimate:
    total_steps: int
    steps_per_epoch: int
    epochs: int
    batches_per_epoch: int
    num_train_images: int                       # images x repeats
    num_reg_images: int = 0                     # regularisation samples used per epoch
    buckets: dict[tuple[int, int], int] = field(default_factory=dict)   # samples (with repeats) per bucket
    exact: bool = True                          # False: images unknown, buckets ignored
    seconds: float | None = None                # from the speed of earlier runs on this machine
    rate: float | None = None                   # steps per second used for ``seconds``
    notes: tuple[str, ...] = ()

    def summary(self) -> str:
        s = (f"{self.total_steps:,} steps ({self.epochs} epochs x {self.steps_per_epoch} steps); "
             f"{self.num_train_images:,} images x repeats")
        if self.seconds is not None:
            s += f"; about {_duration(self.seconds)} at {self.rate:.2f} it/s (earlier runs)"
        return s + ("" if self.exact else " (estimate: images not known)")


def _duration(seconds: float) -> str:
    m = int(seconds // 60)
    return f"{m // 60} h {m % 60:02d} min" if m >= 60 else f"{max(m, 1)} min"


def count_steps(bucket_samples: Iterable[tuple[tuple[int, int], int]], batch_size: int, epochs: int | None = None,
                max_steps: int | None = None, grad_accum: int = 1, processes: int = 1,
                num_train_images: int | None = None, num_reg_images: int = 0, exact: bool = True) -> StepEstimate:
    """Steps from samples-per-bucket (repeats included)."""
    buckets: dict[tuple[int, int], int] = {}
    for b, n in bucket_samples:
        buckets[b] = buckets.get(b, 0) + n
    batches = sum(math.ceil(n / batch_size) for n in buckets.values() if n)
    per_process = math.ceil(batches / processes) if batches else 0
    spe = math.ceil(per_process / grad_accum) if per_process else 0
    if epochs is not None:
        total = epochs * spe
        n_epochs = epochs
    else:
        total = max_steps if max_steps is not None else 1600
        n_epochs = math.ceil(total / spe) if spe else 0
    samples = sum(buckets.values())
    return StepEstimate(total_steps=total, steps_per_epoch=spe, epochs=n_epochs, batches_per_epoch=batches,
                        num_train_images=num_train_images if num_train_images is not None else samples - num_reg_images,
                        num_reg_images=num_reg_images, buckets=buckets, exact=exact)


def collect_samples(cfg: "TrainingConfig", ws: "StepsHome") -> tuple[list[tuple[list[tuple[int, int]], int]], list[tuple[list[tuple[int, int]], int]]]:
    """([(image sizes, repeats) per train subset], [... per reg subset]) from the workspace datasets."""
    from .model import Subset

    wanted: list[Subset] = []
    if isinstance(cfg.dataset, str):
        ds = ws.datasets.get(cfg.dataset)
        for s in ds.subsets():
            named = bool(s.name) and bool(_REPEATS_FOLDER.match(s.name.split("/")[-1]))
            wanted.append(Subset(dataset=cfg.dataset, folder=s.name, num_repeats=s.repeats if named else cfg.num_repeats,
                                 is_reg=s.is_reg, class_tokens=s.class_tokens))
    else:
        wanted = list(cfg.dataset)
    by_ds: dict[str, list[Any]] = {}
    train, reg = [], []
    for sub in wanted:
        if sub.dataset not in by_ds:
            by_ds[sub.dataset] = ws.datasets.get(sub.dataset).images()
        sizes = [(i.width, i.height) for i in by_ds[sub.dataset] if i.subset == sub.folder and i.width and i.height]
        (reg if sub.is_reg else train).append((sizes, sub.num_repeats))
    return train, reg


def steps(cfg: "TrainingConfig", ws: "StepsHome | None" = None) -> StepEstimate:
    """The run's step count (exact when ``ws`` holds the dataset), with a time estimate from earlier runs."""
    from .buckets import bucket_or_none

    res = cfg.resolution_wh
    step = cfg.bucket_reso_steps
    lo = cfg.min_bucket_reso - cfg.min_bucket_reso % step             # sd-scripts moves the limits like this
    hi = cfg.max_bucket_reso + (-cfg.max_bucket_reso) % step
    unbucketable: list[tuple[int, int]] = []

    def bucket(w: int, h: int) -> tuple[int, int] | None:
        if not cfg.enable_bucket:
            return res
        b = bucket_or_none(w, h, res, lo, hi, step, cfg.bucket_no_upscale)
        if b is None:
            unbucketable.append((w, h))
        return b

    notes: list[str] = []
    try:
        if ws is None:
            raise LookupError
        train, reg = collect_samples(cfg, ws)
        exact = True
    except Exception as e:  # the dataset is not there (yet): estimate without buckets
        if ws is not None and not isinstance(e, LookupError):
            notes.append(str(e))
        train, reg, exact = [], [], False
    samples: list[tuple[tuple[int, int], int]] = []
    num_train = 0
    for sizes, repeats in train:
        for w, h in sizes:
            b = bucket(w, h)
            if b is not None:
                samples.append((b, repeats))
                num_train += repeats
    num_reg = 0
    if reg and num_train:
        first = True
        while num_reg < num_train:
            before = num_reg
            for sizes, repeats in reg:
                for w, h in sizes:
                    n = repeats if first else 1
                    b = bucket(w, h)
                    if b is None:
                        continue
                    samples.append((b, n))
                    num_reg += n
                    if num_reg >= num_train:
                        break
                if num_reg >= num_train:
                    break
            first = False
            if num_reg == before:   # no regularisation image can be bucketed (or there are none)
                break
    if unbucketable:
        w, h = unbucketable[0]
        notes.append(f"{len(set(unbucketable))} image size(s) (e.g. {w}x{h}) are too small or narrow for 'never upscale' buckets "
                     f"at a step of {step} px and are not counted; sd-scripts would stop on them. Crop them or turn 'never upscale' off.")
    if not exact:
        notes.append("Images are not known: buckets are ignored, so the real count can be a little higher.")
    est = count_steps(samples, cfg.train_batch_size, cfg.max_train_epochs, cfg.max_train_steps,
                      cfg.gradient_accumulation_steps, cfg.num_processes, num_train, num_reg, exact=exact)
    rate = _past_rate(cfg, ws) if ws is not None else None
    extra: dict[str, Any] = {"notes": tuple(notes)}
    if rate and est.total_steps:
        extra.update(rate=rate, seconds=est.total_steps / rate)
    from dataclasses import replace

    return replace(est, **extra)


def _past_rate(cfg: "TrainingConfig", ws: "StepsHome") -> float | None:
    """Median speed (steps/s) of finished training runs of the same family and resolution on this machine."""
    try:
        jobs = ws.jobs.list(kind="training")
    except Exception:
        return None
    rates = []
    for job in jobs:
        meta = job.meta
        p = job.progress
        if meta.get("model_family") == cfg.model_family and meta.get("resolution") == cfg.resolution and p.rate and p.rate_unit in (None, "it/s"):
            rates.append(p.rate * max(1, int(meta.get("train_batch_size", 1))) / max(1, cfg.train_batch_size))
    return statistics.median(rates) if rates else None
