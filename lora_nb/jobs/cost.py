"""The Vast.ai cost line of a workspace: price per hour, spend so far and the estimated cost of the queue.

Shown by the dashboard header and ``lora-nb jobs cost`` / ``lora-nb jobs list`` only on a Vast.ai instance
(``CONTAINER_ID`` in the environment) or where the setting ``vast_instance_id`` names one. The ETA of each
running job comes from its parsed progress; a queued job, or a running one without progress yet, counts as
"without ETA" (never as free).

>>> import tempfile
>>> from pathlib import Path
>>> from lora_nb.jobs.home import JobsHomeAt
>>> cost_report(JobsHomeAt(Path(tempfile.mkdtemp())), env={}) is None      # not on Vast, nothing configured
True
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping

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


def queue_etas(home: "JobsHome") -> list[float | None]:
    """The ETA in seconds of every running and queued job (None where it is not known yet)."""
    home.store.ensure_schema("jobs", records.MIGRATIONS)
    out: list[float | None] = []
    wanted = (JobStatus.QUEUED.value, *records.ACTIVE)
    for snap in records.load_all(home.store, f"WHERE status IN ({','.join('?' * len(wanted))})", wanted):
        out.append(snap.progress.eta if snap.status is JobStatus.RUNNING else None)
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
