"""The skeleton every training engine's log parser shares: bar to progress, artifacts and samples,
error lines, and the verdict from the exit code and the final file.

An engine parser (``kohya_parser``, ``aitoolkit_parser``) says only what is its own: how to find
its training bar and read the loss from it, its milestone lines, its root cause, and what an exit
code of 0 without the final LoRA means for it.

>>> from lora_nb.progress.tqdm_line import parse_tqdm
>>> p = EngineLogParser(options={"final_path": "/nowhere/demo.safetensors"})
>>> bar = parse_tqdm("steps:  50%|#####     | 20/40 [00:28<00:28,  1.41s/it, avr_loss=nan]")
>>> [e.kind.value for e in p.bar_progress(bar, step=20, total=40, loss="nan")]
['hint', 'progress']
>>> p.verdict(0, stopped=False).reason
'the engine exited with code 0 but the final LoRA /nowhere/demo.safetensors was not written'
"""
from __future__ import annotations

import re
from pathlib import Path

from ..progress.events import Event, JobStatus, Verdict
from ..progress.parsers import LogParser
from ..progress.tqdm_line import TqdmFrame
from .hints import match_hint

__all__ = ["EngineLogParser"]

_ERROR_LINE = re.compile(r"^\w+(\.\w+)*(Error|Exception):")


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


class EngineLogParser(LogParser):
    """Base of the engines' parsers. Options every engine uses: ``final_path`` (the LoRA a finished run
    must leave) and ``sample_dir`` (where sample images appear)."""

    sample_suffixes: tuple[str, ...] = (".png",)
    engine_label = "the engine"          # how the verdict names the engine

    def __init__(self, run_dir: Path | None = None, options: dict | None = None) -> None:
        super().__init__(run_dir, options)
        self.samples_seen: set[str] = set()

    # -- events --------------------------------------------------------------------------------
    def bar_progress(self, bar: TqdmFrame, step: int, total: int | None, loss: str | None,
                     lr: str | None = None) -> list[Event]:
        """The training bar as a progress event (a hint first when the loss is nan or inf)."""
        events: list[Event] = []
        if loss is not None and loss.lower() in ("nan", "inf"):
            events += self.add_hint(*reversed(match_hint("loss is nan") or ("", "")))
        events.append(Event.progress(step=step, total_steps=total, loss=_number(loss), lr=_number(lr), rate=bar.rate,
                                     rate_unit="it/s" if bar.rate else None, eta=bar.eta, elapsed=bar.elapsed,
                                     phase="training"))
        return events

    def artifact_kind(self, path: str, otherwise: str = "checkpoint") -> str:
        """``lora`` for the run's final file (by name), else ``otherwise``."""
        final = self.options.get("final_path")
        return "lora" if final and Path(path).name == Path(final).name else otherwise

    def samples(self) -> list[Event]:
        """Artifact events for sample images that appeared in ``sample_dir`` since the last call."""
        folder = self.options.get("sample_dir")
        if not folder or not Path(folder).is_dir():
            return []
        out = []
        for p in sorted(Path(folder).iterdir()):
            if p.is_file() and p.suffix.lower() in self.sample_suffixes and str(p) not in self.samples_seen:
                self.samples_seen.add(str(p))
                out.append(Event.artifact(str(p), "sample"))
        return out

    @staticmethod
    def error_line(text: str) -> list[Event]:
        """An error message event for a traceback's first line or an exception line, else nothing."""
        text = text.strip()
        if "Traceback (most recent call last)" in text or _ERROR_LINE.match(text):
            return [Event.message(text, "error")]
        return []

    # -- verdict -------------------------------------------------------------------------------
    def root_cause(self) -> str | None:
        """The engine's own error for the failure summary (None when it printed none)."""
        return None

    def exit_zero_verdict(self) -> Verdict | None:
        """An engine's own judgement of an exit code of 0 (None: the final file decides)."""
        return None

    def verdict(self, exit_code: int | None, stopped: bool) -> Verdict:
        if stopped:
            return Verdict(JobStatus.STOPPED, "stopped by request")
        if exit_code != 0:
            verdict = super().verdict(exit_code, stopped)
            cause = self.root_cause()
            # "ValueError: ... (exit code 1)", not a launcher's re-raise
            return Verdict(verdict.status, f"{cause.rstrip('. ')} ({verdict.reason})") if cause else verdict
        own = self.exit_zero_verdict()
        if own is not None:
            return own
        final = self.options.get("final_path")
        if final and not Path(final).is_file():
            return Verdict(JobStatus.FAILED, f"{self.engine_label} exited with code 0 but the final LoRA {final} was not written")
        return Verdict(JobStatus.SUCCEEDED)
