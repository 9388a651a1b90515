"""The Vast.ai cost line of a workspace: price per hour, spend so far and the estimated cost of the queue.

Shown by the dashboard header and ``lora-nb jobs cost`` / ``lora-nb jobs list`` only on a Vast.ai instance
(``CONTAINER_ID`` in the environment) or where the setting ``vast_instance_id`` names one. The ETA of each
running job comes from its parsed progress; a queued training run's from its expected steps (step calculator)
and the speed of a like run; any other job counts as "without ETA" (never as free).

>>> import tempfile
>>> from pathlib import Path
>>> from lora_nb.jobs.home import JobsHomeAt
>>> cost_report(JobsHomeAt(Path(tempfile.mkdtemp())), env={}) is None      # not on Vast, nothing configured
True
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

from ..cloud.cost import QueueCost, queue_cost
from ..cloud.vast import VastAPI, instance_id
from ..errors import LoraNbError
from ..progress.events import JobStatus
from . import records

if TYPE_CHECKING:  # pragma: no cover
    from ..ports import JobsHome

__all__ = ["CostReport", "queue_etas", "cost_report", "configured_instance"]


@dataclass(frozen=True)
class CostReport:
    """The cost line, or the one sentence that says why it could not be read."""

    instance_id: int
    cost: QueueCost | None = None
    error: str | None = None

    def summary(self) -> str:
        """``Vast #123: $0.400/h · spent ≈ $1.20 · queue ≈ $0.60 (1.5 h)``, or the error sentence."""
        return f"Vast #{self.instance_id}: " + (self.cost.summary() if self.cost is not None else f"cost unavailable: {self.error}")


_SAME_RUN = ("engine", "model_family", "resolution", "train_batch_size")   # what makes one run's speed another's


def _speed_key(snap: Any) -> tuple | None:
    meta = snap.meta or {}
    return tuple(str(meta.get(k)) for k in _SAME_RUN) if meta.get("engine") else None


def queue_etas(home: "JobsHome") -> list[float | None]:
    """The ETA in seconds of every running and queued job (None where it is not known).

    A running job: its parsed ETA, else (total - step) / rate. A queued training run: the step calculator's
    ``expected_steps`` (stored with the job) / the speed of the latest run with the same engine, model family,
    resolution and batch size that reported one. Anything else is unknown."""
    home.store.ensure_schema("jobs", records.MIGRATIONS)
    snaps = records.load_all(home.store)
    speeds: dict[tuple, float] = {}
    for snap in snaps:                                   # oldest first: the latest measured speed wins
        key, p = _speed_key(snap), snap.progress
        if key and p.rate and (p.rate_unit in (None, "it/s")) and snap.status in (JobStatus.RUNNING, JobStatus.SUCCEEDED):
            speeds[key] = float(p.rate)
    out: list[float | None] = []
    for snap in snaps:
        p = snap.progress
        if snap.status is JobStatus.RUNNING:
            if p.eta is not None:
                out.append(p.eta)
            elif p.rate and p.total_steps and p.step is not None:
                out.append(max(0.0, (p.total_steps - p.step) / p.rate))
            else:
                out.append(None)
        elif snap.status is JobStatus.QUEUED or snap.status.value in records.ACTIVE:
            expected, key = (snap.meta or {}).get("expected_steps"), _speed_key(snap)
            speed = speeds.get(key) if key else None
            out.append(float(expected) / speed if isinstance(expected, (int, float)) and speed else None)
    return out


def configured_instance(home: "JobsHome", env: Mapping[str, str] | None = None) -> int | None:
    """The Vast instance this workspace runs on: the container's id, else the ``vast_instance_id`` setting."""
    found = instance_id(os.environ if env is None else env)
    if found is not None:
        return found
    value = home.settings.get("vast_instance_id")
    return int(value) if isinstance(value, (int, str)) and str(value).isdigit() else None


def cost_report(home: "JobsHome", env: Mapping[str, str] | None = None, timeout: float = 5.0) -> CostReport | None:
    """Read the price through the Vast.ai API and price the queue; None where there is no Vast instance.

    An API failure (refused key, server error, unreachable) is the report's ``error``, never an exception."""
    inst_id = configured_instance(home, env)
    if inst_id is None:
        return None
    try:
        inst = VastAPI.from_env(env, timeout=timeout).instance(inst_id)
    except LoraNbError as e:
        return CostReport(inst_id, error=str(e))
    return CostReport(inst_id, cost=queue_cost(queue_etas(home), inst.price_per_hour, inst.spent()))
