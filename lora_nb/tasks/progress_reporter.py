"""How a task tells the job system what it is doing: ``@@lora-nb {json}`` lines on stdout.

The ``task`` log parser turns these into events.

>>> import io
>>> r = Reporter(total=4, unit="img", stream=io.StringIO())
>>> r.progress(2)
>>> r.stream.getvalue().startswith('@@lora-nb {"event": "progress", "step": 2, "total_steps": 4')
True
"""
from __future__ import annotations

import json
import sys
import time
from typing import Any, Callable, TextIO

from ..progress.parsers import TASK_MARKER

__all__ = ["Reporter", "emit", "load_params", "StopFlag"]


def emit(event: str, stream: TextIO | None = None, **data: Any) -> None:
    """Print one marker line and flush."""
    out = stream or sys.stdout
    out.write(TASK_MARKER + json.dumps({"event": event, **data}, default=str) + "\n")
    out.flush()


class Reporter:
    """Progress with rate and ETA worked out from the start time."""

    def __init__(self, total: int | None = None, unit: str = "it", stream: TextIO | None = None) -> None:
        self.total = total
        self.unit = unit
        self.stream = stream or sys.stdout
        self.started = time.monotonic()

    def progress(self, done: int, total: int | None = None, phase: str | None = None, **extra: Any) -> None:
        if total is not None:
            self.total = total
        elapsed = time.monotonic() - self.started
        rate = done / elapsed if elapsed > 0 and done else None
        eta = (self.total - done) / rate if rate and self.total is not None else None
        fields = {"step": done, "total_steps": self.total, "rate": rate, "rate_unit": f"{self.unit}/s",
                  "eta": eta, "elapsed": elapsed, "phase": phase, **extra}
        emit("progress", self.stream, **{k: v for k, v in fields.items() if v is not None})

    def throttled(self, phase: str, every: float = 0.5) -> Callable[[int, int | None], None]:
        """A ``progress(done, total)`` callback that reports at most every ``every`` seconds (and at the end)."""
        last = [0.0]

        def progress(done: int, total: int | None) -> None:
            now = time.monotonic()
            if now - last[0] >= every or (total is not None and done >= total):
                last[0] = now
                self.progress(done, total, phase=phase)

        return progress

    def artifact(self, path: str, kind: str = "file") -> None:
        emit("artifact", self.stream, path=str(path), kind=kind)

    def message(self, text: str, level: str = "info") -> None:
        emit("message", self.stream, text=text, level=level)

    def hint(self, text: str, code: str = "") -> None:
        emit("hint", self.stream, text=text, code=code)


class StopFlag:
    """Turns the job's Stop (SIGTERM from the supervisor) into a flag the task checks between units of work,
    so it can finish the current one (a batch, a chunk) and leave everything whole.

    >>> flag = StopFlag(install=False); bool(flag)
    False
    """

    def __init__(self, install: bool = True) -> None:
        self.set = False
        if install:
            import signal

            signal.signal(signal.SIGTERM, self._on_term)

    def _on_term(self, *_: Any) -> None:
        self.set = True

    def __bool__(self) -> bool:
        return self.set

    def __call__(self) -> bool:
        return self.set


def load_params(argv: list[str] | None = None) -> dict[str, Any]:
    """Read the task's parameters: ``python -m lora_nb.tasks.X <task.json>``."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        raise SystemExit("usage: python -m lora_nb.tasks.<name> <task.json>")
    with open(args[0], encoding="utf-8") as f:
        return json.load(f)
