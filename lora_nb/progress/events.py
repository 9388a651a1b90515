"""Job status, progress snapshots and events: the values that flow from a job to its watchers.

``Progress`` is an immutable snapshot; parsers produce partial updates and
``Progress.merged`` folds them in, so a watcher always holds one whole, consistent
state that is replaced, never mutated.

>>> p = Progress(step=5, total_steps=40)
>>> p.merged(Progress(loss=0.12)).fraction
0.125
>>> JobStatus("running").is_final
False
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

__all__ = ["JobStatus", "Progress", "EventKind", "Event", "Verdict"]


class JobStatus(str, Enum):
    """Lifecycle of a job: queued -> starting -> running -> succeeded | failed | stopped."""

    QUEUED = "queued"
    STARTING = "starting"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    STOPPED = "stopped"

    @property
    def is_final(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED)

    def __str__(self) -> str:  # "running", not "JobStatus.RUNNING"
        return self.value


@dataclass(frozen=True, slots=True)
class Progress:
    """What a job has done so far. Every field is None where unknown.

    ``rate`` is always in units per second (``rate_unit`` says which: ``it/s`` for
    training steps, ``img/s`` for tagging, ``B/s`` for downloads); ``eta`` is seconds.
    ``step`` and ``total_steps`` are absolute across a resume.
    """

    step: int | None = None
    total_steps: int | None = None
    epoch: int | None = None
    total_epochs: int | None = None
    loss: float | None = None
    lr: float | None = None
    rate: float | None = None
    rate_unit: str | None = None
    eta: float | None = None
    elapsed: float | None = None
    phase: str | None = None          # free text: "caching latents", "tagging", "saving"

    def merged(self, update: "Progress") -> "Progress":
        """A new snapshot: this one with every non-None field of ``update`` laid over it."""
        changes = {f.name: getattr(update, f.name) for f in dataclasses.fields(update) if getattr(update, f.name) is not None}
        return dataclasses.replace(self, **changes) if changes else self

    @property
    def fraction(self) -> float | None:
        """step / total_steps in [0, 1], or None."""
        if self.step is None or not self.total_steps:
            return None
        return max(0.0, min(1.0, self.step / self.total_steps))

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "Progress":
        if not data:
            return cls()
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


class EventKind(str, Enum):
    PROGRESS = "progress"   # data: Progress.to_dict() (a partial update)
    STATUS = "status"       # data: {"status": "running", ...}
    MESSAGE = "message"     # data: {"level": "info|warning|error", "text": ...}
    ARTIFACT = "artifact"   # data: {"path": ..., "kind": "checkpoint|lora|state|sample|file|log"}
    HINT = "hint"           # data: {"text": one sentence with the fix, "code": "cuda_oom" ...}
    LOG = "log"             # data: {"lines": [...]} new log lines (bounded batches)

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happened in a job."""

    kind: EventKind
    data: dict[str, Any] = field(default_factory=dict)
    job_id: str | None = None
    time: float = field(default_factory=time.time)

    @classmethod
    def progress(cls, **fields: Any) -> "Event":
        return cls(EventKind.PROGRESS, {k: v for k, v in fields.items() if v is not None})

    @classmethod
    def artifact(cls, path: str, kind: str = "file") -> "Event":
        return cls(EventKind.ARTIFACT, {"path": path, "kind": kind})

    @classmethod
    def message(cls, text: str, level: str = "info") -> "Event":
        return cls(EventKind.MESSAGE, {"text": text, "level": level})

    @classmethod
    def hint(cls, text: str, code: str = "") -> "Event":
        return cls(EventKind.HINT, {"text": text, "code": code})


@dataclass(frozen=True, slots=True)
class Verdict:
    """How a finished engine process is judged: the final status and, on failure, why."""

    status: JobStatus
    reason: str | None = None
