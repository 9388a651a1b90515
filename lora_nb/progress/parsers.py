"""Log parsers: one logical console line in, progress events out.

The follower splits raw output on both ``\\r`` and ``\\n`` and hands each piece to
``feed``. A parser keeps whatever state it needs (a kohya parser remembers the
epoch, a resume offset ...). At the end, ``verdict`` judges the run: the engine
adapter decides whether an exit code of 0 really was a success.

Parsers are found by name through a registry of ``"module:Class"`` strings, so
the supervisor process can build one without importing every engine.

>>> p = get_parser("task")
>>> [e.data for e in p.feed('@@lora-nb {"event": "progress", "step": 3, "total_steps": 10}')]
[{'step': 3, 'total_steps': 10}]
>>> p.verdict(0, stopped=False).status
<JobStatus.SUCCEEDED: 'succeeded'>
"""
from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any, Callable

from ..errors import JobError
from .events import Event, EventKind, JobStatus, Verdict

__all__ = ["LogParser", "PlainParser", "TaskParser", "register_parser", "get_parser", "parser_names", "TASK_MARKER"]

TASK_MARKER = "@@lora-nb "


class LogParser:
    """Base parser: no progress, success on exit code 0.

    Subclasses override :meth:`feed` and, where an engine can exit 0 without
    doing its job, :meth:`verdict`. ``hints`` collects one-sentence fixes for known
    failures seen in the output; the first one goes into the job's error summary.
    """

    name = "plain"
    #: the signal that asks this engine to stop cleanly (ai-toolkit wants SIGINT); the supervisor
    #: sends it to the engine's process group and escalates to SIGKILL after the grace period
    stop_signal_name = "SIGTERM"

    def __init__(self, run_dir: Path | None = None, options: dict[str, Any] | None = None) -> None:
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.options = dict(options or {})
        self.hints: list[str] = []

    @property
    def stop_signal(self) -> int:
        """Signal number for a clean stop: ``options["stop_signal"]`` (e.g. "SIGINT") or the class default."""
        import signal

        name = str(self.options.get("stop_signal") or self.stop_signal_name)
        sig = getattr(signal, name, None)
        if not isinstance(sig, int) or name not in ("SIGTERM", "SIGINT", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGQUIT"):
            raise JobError(f"'{name}' is not a signal a job can be stopped with.", fix="Use SIGTERM or SIGINT.")
        return int(sig)

    def feed(self, line: str) -> list[Event]:
        """Parse one logical line (no trailing ``\\r``/``\\n``); return the events it yields."""
        return []

    def add_hint(self, text: str, code: str = "") -> list[Event]:
        """Record a failure hint once; return the hint event (or nothing if already known)."""
        if text in self.hints:
            return []
        self.hints.append(text)
        return [Event.hint(text, code)]

    def verdict(self, exit_code: int | None, stopped: bool) -> Verdict:
        """Final status of the run. A job we stopped is ``stopped`` whatever its exit code."""
        if stopped:
            return Verdict(JobStatus.STOPPED, "stopped by request")
        if exit_code == 0:
            return Verdict(JobStatus.SUCCEEDED)
        if exit_code is None:
            return Verdict(JobStatus.FAILED, "the process ended without an exit code")
        if exit_code < 0:
            return Verdict(JobStatus.FAILED, f"killed by signal {-exit_code}")
        return Verdict(JobStatus.FAILED, f"exit code {exit_code}")


class PlainParser(LogParser):
    """For any command: no progress, but tqdm-style ``n/N`` bars are recognised."""

    name = "plain"

    def feed(self, line: str) -> list[Event]:
        from .tqdm_line import parse_tqdm

        bar = parse_tqdm(line)
        if bar is None:
            return []
        return [Event.progress(step=bar.n, total_steps=bar.total, rate=bar.rate, rate_unit=bar.unit, eta=bar.eta, elapsed=bar.elapsed)]


class TaskParser(LogParser):
    """Our own tasks (``python -m lora_nb.tasks.<name>``) print ``@@lora-nb {json}`` lines.

    ``{"event": "progress", ...Progress fields}``, ``{"event": "artifact", "path", "kind"}``,
    ``{"event": "message", "text", "level"}``, ``{"event": "hint", "text", "code"}``.
    """

    name = "task"

    def feed(self, line: str) -> list[Event]:
        if not line.startswith(TASK_MARKER):
            return []
        try:
            data = json.loads(line[len(TASK_MARKER):])
            kind = EventKind(data.pop("event"))
        except (ValueError, KeyError, TypeError):
            return []
        if kind is EventKind.HINT:
            return self.add_hint(str(data.get("text", "")), str(data.get("code", "")))
        return [Event(kind, data)]


_REGISTRY: dict[str, str] = {
    "plain": "lora_nb.progress.parsers:PlainParser",
    "task": "lora_nb.progress.parsers:TaskParser",
    "hf-trainer": "lora_nb.progress.hf_trainer:HFTrainerParser",   # Hugging Face Trainer / Accelerate scripts
    "kohya": "lora_nb.engines.kohya_parser:KohyaParser",
    "aitoolkit": "lora_nb.engines.aitoolkit_parser:AIToolkitParser",
}


def register_parser(name: str, target: str | Callable[..., LogParser]) -> None:
    """Register a parser under ``name``: a ``"module:Class"`` string (importable from any process) or a class."""
    if callable(target):
        target = f"{target.__module__}:{target.__qualname__}"
    _REGISTRY[name] = target


def parser_names() -> list[str]:
    """The names of the registered parsers, sorted (what ``submit_command(parser=...)`` accepts)."""
    return sorted(_REGISTRY)


def get_parser(name: str, run_dir: Path | None = None, options: dict[str, Any] | None = None) -> LogParser:
    """Build the parser registered as ``name``."""
    target = _REGISTRY.get(name)
    if target is None:
        raise JobError(f"There is no log parser called '{name}'.", fix=f"Use one of: {', '.join(parser_names())}.")
    module, _, cls = target.partition(":")
    return getattr(importlib.import_module(module), cls)(run_dir=run_dir, options=options)
