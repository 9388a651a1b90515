"""The job vocabulary every layer speaks: status, progress and events, and the parsers that turn
console lines into them (:mod:`~lora_nb.progress.events`, :mod:`~lora_nb.progress.parsers`,
:mod:`~lora_nb.progress.tqdm_line`).

A low-layer package: engine parsers (domain), task reporters (top) and the job system all use it,
and it imports nothing of theirs.
"""
from .events import Event, EventKind, JobStatus, Progress

__all__ = ["Event", "EventKind", "JobStatus", "Progress"]
