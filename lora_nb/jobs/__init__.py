"""Jobs: long work in supervised subprocesses that survive kernel restarts.

See ``manager.JobManager`` (kernel side), ``supervise`` (one process per job),
``scheduler`` (claims queued jobs), ``events`` and ``parsers`` (console lines to
progress events).
"""
from ..progress.events import Event, EventKind, JobStatus, Progress

__all__ = ["Event", "EventKind", "JobStatus", "Progress"]
