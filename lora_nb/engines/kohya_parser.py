"""Console lines of kohya sd-scripts -> progress events, and the verdict on a finished run.

Handles what the real output does (see ../shared/fixtures/kohya): the ``steps:`` bar redrawn
with ``\\r`` (the job system splits frames), rich log records glued onto a bar frame,
``epoch e/E`` and ``saving checkpoint:`` lines on stdout, the summary block, and a resumed
run whose bar restarts at 0 (progress is kept absolute).

>>> p = KohyaParser(options={"final_path": "/out/demo.safetensors"})
>>> _ = p.feed("  total optimization steps / 学習ステップ数: 40")
>>> [e.data for e in p.feed("steps:  50%|█████     | 20/40 [00:28<00:28,  1.41s/it, avr_loss=1.1]")][0]["loss"]
1.1
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..progress.events import Event, JobStatus, Verdict
from ..progress.tqdm_line import parse_tqdm
from .hints import match_hint, match_root_cause
from .parser_base import EngineLogParser

__all__ = ["KohyaParser"]

_EPOCH = re.compile(r"^\s*epoch (\d+)/(\d+)\s*$")
_TOTAL = re.compile(r"total optimization steps\s*/[^:]*:\s*(\d+)")
_NUM_EPOCHS = re.compile(r"num epochs\s*/[^:]*:\s*(\d+)")
_BATCHES = re.compile(r"num batches per epoch\s*/[^:]*:\s*(\d+)")
_SAVING = re.compile(r"saving checkpoint:\s*(\S.*?)\s*$")
_REMOVING = re.compile(r"removing old checkpoint:\s*(\S.*?)\s*$")
_STATE = re.compile(r"save train state to\s+(\S+?)/train_state\.json")
_MODEL_SAVED = re.compile(r"\bmodel saved\.")
_SAMPLING = re.compile(r"generating sample images at step")
_RESUME = re.compile(r"resume training from local state")
# the root cause of a failed run: the first traceback's exception line, not the launcher's re-raise
_TRACEBACK = "Traceback (most recent call last)"
_RANK = re.compile(r"^\[(?:rank|default)\d+\]:\s?")        # torchrun prefixes each rank's lines
_EXCEPTION = re.compile(r"^(?:[A-Za-z_]\w*\.)*(?:[A-Z]\w*(?:Error|Exception|Exit|Interrupt|Invalid|Warning|Failure|Fault)"
                        r"|KeyboardInterrupt|SystemExit)(?::\s.*)?$|^(?:[a-z_]\w*\.)+[A-Z]\w*(?::\s.*)?$")
_REraise = re.compile(r"^(?:subprocess\.CalledProcessError|torch\.distributed\.elastic\.multiprocessing\.errors\.ChildFailedError)\b")
_CLI_ERROR = re.compile(r"^\S+\.py: error: \S.*")            # argparse: exit 2 without a traceback
_CONFIG_MISSING = re.compile(r"(\S+\.toml) not found\.")      # read_config_from_file: exit(1) without a traceback
_KILLED = re.compile(r"died with <Signals\.(SIG\w+): (\d+)>")
_FRAME = re.compile(r'^\s*File "([^"]+)", line \d+, in (\S+)')


class KohyaParser(EngineLogParser):
    """Parser for sd-scripts' ``*_train_network.py``.

    Options: ``final_path`` (the LoRA the run must produce), ``step_offset`` (absolute step at
    which a resumed run starts; worked out from the first ``epoch`` line when not given),
    ``sample_dir`` (where sample images appear).
    """

    name = "kohya"
    engine_label = "the trainer"

    def __init__(self, run_dir: Path | None = None, options: dict[str, Any] | None = None) -> None:
        super().__init__(run_dir, options)
        self.total: int | None = None
        self.num_epochs: int | None = None
        self.epoch: int | None = None
        self.offset: int | None = self.options.get("step_offset")
        self.model_saved = False
        self.saved: list[str] = []
        self._sampling = False
        self.cause: str | None = None       # the engine's own error: first traceback's exception line
        self.pre_error: str | None = None   # an error the engine printed without a traceback (argparse, missing TOML)
        self.killed: str | None = None      # the launcher saw its child die of a signal (e.g. the OOM killer's SIGKILL)
        self._tb: int | None = None         # lines read inside the current traceback
        self._frame: tuple[str, str] | None = None   # (file name, function) of the traceback's last frame
        self.cause_where: tuple[str, str] | None = None

    def feed(self, line: str) -> list[Event]:
        events: list[Event] = []
        if "steps:" in line and "/" in line:
            bar = parse_tqdm(line)
            if bar is not None and bar.prefix.endswith("steps") and not bar.prefix.endswith("validation steps"):
                if self._sampling:
                    self._sampling = False
                    events += self.samples()
                if self.offset is None:
                    self.offset = 0
                # the summary's total is max_train_steps, absolute also after a resume
                events += self.bar_progress(bar, bar.n + self.offset, self.total or bar.total, bar.postfix.get("avr_loss"))
                # a log record glued after the frame still counts
                rest = line[line.rfind("]") + 1:]
                if rest.strip():
                    events += self._line(rest)
                return events
        return events + self._line(line)

    def _track(self, line: str) -> list[Event]:
        """Follow tracebacks: remember the first one's exception line (the root cause); its hint, if known."""
        text = _RANK.sub("", line.rstrip())
        if self._tb is not None:
            if _TRACEBACK in text:
                self._tb, self._frame = 0, None
            elif not text.strip() or text[:1].isspace():
                self._tb += 1           # a frame, a source line, carets
                if (m := _FRAME.match(text)):
                    self._frame = (Path(m.group(1)).name, m.group(2))
            elif _EXCEPTION.match(text):
                self._tb = None
                return self._exception(text.strip())
            else:
                self._tb += 1           # another stream's line interleaved with the traceback
            if self._tb is not None and self._tb > 500:
                self._tb = None
            return []
        if _TRACEBACK in text:
            self._tb, self._frame = 0, None
            return []
        if self.cause is None and self.pre_error is None:
            if _CLI_ERROR.match(text.strip()):
                self.pre_error = text.strip()
            elif (m := _CONFIG_MISSING.search(text)):
                self.pre_error = "sd-scripts did not find its training config file (--config_file)"
        return []

    def _exception(self, text: str) -> list[Event]:
        if _REraise.match(text):       # accelerate's / torchrun's re-raise of the child's exit: not the cause
            m = _KILLED.search(text)
            if m and self.killed is None:
                self.killed = f"{m.group(1)} ({m.group(2)})"
            return []
        if self.cause is not None:
            return []
        self.cause, self.cause_where = text, self._frame
        hint = match_root_cause(text, self._frame)
        if not hint:
            return []
        events = self.add_hint(hint[1], hint[0])
        self.hints.remove(hint[1])
        self.hints.insert(0, hint[1])   # the root cause's fix goes first in the summary
        return events

    def root_cause(self) -> str | None:
        """The engine's own error for the failure summary (None when it printed none)."""
        if self.cause:
            return self.cause
        if self.pre_error:
            return self.pre_error
        if self.killed:
            return f"the training process was killed by {self.killed}"
        return None

    def _line(self, line: str) -> list[Event]:
        events: list[Event] = self._track(line)
        m = _EPOCH.match(line)
        if m:
            self.epoch, self.num_epochs = int(m.group(1)), int(m.group(2))
            if self.offset is None and self.epoch > 1 and self.total and self.num_epochs:
                # a resumed run: its bar restarts at 0; earlier epochs are done
                self.offset = (self.epoch - 1) * (self.total // self.num_epochs)
            return [Event.progress(epoch=self.epoch, total_epochs=self.num_epochs, total_steps=self.total)]
        if (m := _TOTAL.search(line)):
            self.total = int(m.group(1))
            return [Event.progress(total_steps=self.total, step=self.offset or 0)]
        if (m := _NUM_EPOCHS.search(line)):
            self.num_epochs = int(m.group(1))
            return [Event.progress(total_epochs=self.num_epochs)]
        if (m := _SAVING.search(line)):
            path = m.group(1)
            self.saved.append(path)
            return [Event.artifact(path, self.artifact_kind(path)), Event.progress(phase="saving")]
        if (m := _REMOVING.search(line)):
            return [Event.message(f"removed old checkpoint {m.group(1)}")]
        if (m := _STATE.search(line)):
            return [Event.artifact(m.group(1), "state")]
        if _MODEL_SAVED.search(line):
            self.model_saved = True
            return [Event.progress(phase="done")] + self.samples()
        if _SAMPLING.search(line):
            self._sampling = True
            return [Event.progress(phase="sampling")]
        if _RESUME.search(line):
            return [Event.message("resuming from a saved state")]
        hint = None if self._tb is not None else match_hint(line)   # not on a traceback's frames and source lines
        if hint:
            return events + self.add_hint(hint[1], hint[0])
        return events + self.error_line(line)

    def exit_zero_verdict(self) -> Verdict | None:
        final = self.options.get("final_path")
        if not self.model_saved:
            return Verdict(JobStatus.FAILED, "the trainer exited with code 0 but never printed 'model saved.', so no LoRA was written")
        if final and not Path(final).is_file():
            return Verdict(JobStatus.FAILED, f"the trainer said 'model saved.' but {final} does not exist")
        return Verdict(JobStatus.SUCCEEDED)
