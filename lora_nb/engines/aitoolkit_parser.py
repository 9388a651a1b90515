"""Console lines of ostris ai-toolkit -> progress events, and the verdict on a finished run.

What ai-toolkit prints (ENGINES.md B3-B5): a tqdm bar labelled with the job name whose postfix
is ``lr: 1.0e-04 loss: 4.123e-01`` (it starts at the saved step after a resume, so its count is
already absolute), ``Saving at step N`` / ``Saved checkpoint to <path>`` milestones,
``Job stopped`` after SIGINT with exit code **0**, and an ``Error running job:`` line plus a
traceback and exit code 1 on failure. A run that exits 0 without its final LoRA did not succeed.

>>> p = AIToolkitParser(options={"name": "demo", "final_path": "/out/demo/demo.safetensors"})
>>> e = p.feed("demo:  12%|█▏        | 240/2000 [05:12<38:10,  1.30s/it, lr: 1.0e-04 loss: 4.123e-01]")
>>> (e[0].data["step"], e[0].data["total_steps"], e[0].data["loss"], e[0].data["lr"])
(240, 2000, 0.4123, 0.0001)
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..progress.events import Event, JobStatus, Verdict
from ..progress.tqdm_line import parse_tqdm
from .hints import HINTS, match_hint
from .parser_base import EngineLogParser

__all__ = ["AIToolkitParser"]

_POSTFIX = re.compile(r"lr:\s*(?P<lr>[0-9.eE+-]+)\s+loss:\s*(?P<loss>[0-9.eE+-]+|nan|inf)", re.I)
_SAVING_AT = re.compile(r"^Saving at step (\d+)")
_SAVED = re.compile(r"Saved checkpoint to\s+(\S.*?)\s*$")
_REMOVING = re.compile(r"Removing old save:\s*(\S.*?)\s*$")
_RESUMING = re.compile(r"IMPORTANT RESUMING FROM\s+(\S.*?)\s*#*\s*$")
_FOUND_STEP = re.compile(r"Found step (\d+) in metadata")
_STOPPED = re.compile(r"^\s*Job stopped\s*$")
_ERROR = re.compile(r"^Error running job:\s*(.*)$")
_OOM_SKIP = re.compile(r"OOM during training step, skipping batch")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")      # the nested sample bar moves the cursor up (ESC[A)
_SHARED = {code: text for code, _, text in HINTS}
# failures whose wording is ai-toolkit's own (recorded in tests/fixtures/aitoolkit/captures), beside the shared hints
_AITK_HINTS: list[tuple[re.Pattern[str], str, str]] = [
    # it catches CUDA OOM per step and skips the batch; the fourth in a row ends the run with this
    (re.compile(r"OOM during training step \d+ times in a row"), "cuda_oom", _SHARED["cuda_oom"]),
    # a local model folder that does not exist is taken for a Hub id (run4_missing_model)
    (re.compile(r"is not the path to a directory containing a config\.json file|Repo id must be in the form .*: '/"),
     "missing_model", "The base model folder was not found. ai-toolkit loads a diffusers folder (with transformer/, vae/, "
                      "text_encoder/ ...) or a Hugging Face id: check the base model path."),
    # an option value the engine refused (run4_bad_optimizer, run4_cosine_warmup, run4_sample_no_neg)
    (re.compile(r"Unknown optimizer type|Scheduler must be cosine|__init__\(\) got an unexpected keyword argument|"
                r"text input must be of type `str`|Unknown (job|process) type"),
     "bad_option", "ai-toolkit rejected an option value. If it came from engine_options, use ai-toolkit's own names and "
                   "types; if lora-nb rendered it, please report it with the run's job.yaml."),
]


def _hint(text: str) -> tuple[str, str] | None:
    for pattern, code, sentence in _AITK_HINTS:
        if pattern.search(text):
            return code, sentence
    return match_hint(text)


_PHASES = [(re.compile(r"^Caching latents"), "caching latents"), (re.compile(r"^Caching text embeddings"), "caching text embeddings"),
           (re.compile(r"Generating (baseline samples|Images|Samples)"), "sampling"), (re.compile(r"^Running\s+\d+ process"), "loading")]


class AIToolkitParser(EngineLogParser):
    """Parser for ``python run.py job.yaml``.

    Options: ``name`` (the job name, the bar's label), ``total_steps``, ``final_path`` (the LoRA a
    finished run must leave), ``sample_dir``; ``stop_signal`` defaults to SIGINT, ai-toolkit's
    clean stop.
    """

    name = "aitoolkit"
    stop_signal_name = "SIGINT"
    sample_suffixes = (".jpg", ".png", ".webp")
    engine_label = "ai-toolkit"

    def __init__(self, run_dir: Path | None = None, options: dict[str, Any] | None = None) -> None:
        super().__init__(run_dir, options)
        self.label = str(self.options.get("name") or "")
        self.total: int | None = self.options.get("total_steps")
        self.step: int | None = None
        self.saw_stop_banner = False
        self.error: str | None = None

    def _bar(self, line: str) -> list[Event] | None:
        bar = parse_tqdm(line)
        if bar is None:
            return None
        label = bar.prefix.strip().rstrip(":").strip()
        if self.label and label != self.label:
            return None           # another bar: caching, sampling, model loading
        if not self.label and not _POSTFIX.search(line):
            return None
        post = _POSTFIX.search(line)
        self.step, self.total = bar.n, bar.total
        return self.bar_progress(bar, bar.n, bar.total, post.group("loss") if post else None, post.group("lr") if post else None)

    def feed(self, line: str) -> list[Event]:
        if "\x1b" in line:
            line = _ANSI.sub("", line)
        if "/" in line and "|" in line:
            events = self._bar(line)
            if events is not None:
                return events
        text = line.strip()
        if (m := _SAVED.search(text)):
            path = m.group(1)
            return [Event.artifact(path, self.artifact_kind(path, "state" if path.endswith(".pt") else "checkpoint"))] + self.samples()
        if (m := _SAVING_AT.match(text)):
            return [Event.progress(phase="saving", step=int(m.group(1)))]
        if (m := _REMOVING.search(text)):
            return [Event.message(f"removed old save {m.group(1)}")]
        if (m := _RESUMING.search(text)):
            return [Event.message(f"resuming from {m.group(1)}")]
        if (m := _FOUND_STEP.search(text)):
            self.step = int(m.group(1))
            return [Event.progress(step=self.step, total_steps=self.total)]
        if _STOPPED.match(text):
            self.saw_stop_banner = True
            return [Event.message("ai-toolkit stopped the job")]
        if (m := _ERROR.match(text)):
            self.error = m.group(1).strip() or "ai-toolkit reported an error"
            hint = _hint(text)
            return [Event.message(text, "error")] + (self.add_hint(hint[1], hint[0]) if hint else [])
        if _OOM_SKIP.search(text):
            return [Event.message("a batch ran out of GPU memory and was skipped", "warning")]
        for pattern, phase in _PHASES:
            if pattern.search(text):
                return [Event.progress(phase=phase)] + (self.samples() if phase == "sampling" else [])
        hint = _hint(text)
        if hint:
            return self.add_hint(hint[1], hint[0])
        return self.error_line(text)

    def root_cause(self) -> str | None:
        return self.error

    def exit_zero_verdict(self) -> Verdict | None:
        if self.saw_stop_banner:
            # exit 0 after an interrupt we did not send (Ctrl+C in a terminal, another tool)
            return Verdict(JobStatus.STOPPED, "ai-toolkit was interrupted ('Job stopped') and exited with code 0")
        return None
