"""A log parser for Hugging Face ``Trainer`` and Accelerate/diffusers-style training scripts (any command job).

What such runs print, and what becomes a Progress event:

- the Trainer's log dicts, one per logging step (``{'loss': 0.6931, 'grad_norm': 1.2, 'learning_rate': 5e-05,
  'epoch': 0.5}``; recent versions print the numbers as strings): loss, lr and epoch. The Trainer prints a dict
  just before it redraws its step bar, so the dict's step is the bar's next frame (or a ``step`` key);
- the tqdm step bar (``  25%|██▌       | 10/40 [00:05<00:15,  1.98it/s]``, or diffusers' ``Steps: ... loss=0.1,
  lr=0.0001`` postfix): step, total steps, rate, ETA. Bars with another description (``Map``, ``Loading
  checkpoint shards``) only set the phase; a bar with another total after the step bar is an evaluation (and a
  finished first bar followed by a longer one, with no loss logged between, was an evaluation before training);
- the banner lines ``Num Epochs = 3`` and ``Total optimization steps = 40``;
- ``{'eval_loss': ...}`` and the final ``{'train_runtime': ...}`` dicts: messages in the job's events.

The epoch is reported 1-based and whole, as for the other engines (``'epoch': 0.5`` is epoch 1).

>>> p = HFTrainerParser()
>>> p.feed(" 22%|##2       | 9/40 [00:04<00:15,  1.98it/s]")[0].data["step"]
9
>>> p.feed("{'loss': 0.6931, 'grad_norm': 1.5, 'learning_rate': 5e-05, 'epoch': 0.25}")
[]
>>> d = p.feed(" 25%|##5       | 10/40 [00:05<00:15,  1.98it/s]")[0].data; (d["step"], d["loss"], d["lr"], d["epoch"])
(10, 0.6931, 5e-05, 1)
"""
from __future__ import annotations

import ast
import math
import re
from typing import Any

from .events import Event
from .parsers import LogParser
from .tqdm_line import TqdmFrame, parse_tqdm

__all__ = ["HFTrainerParser", "parse_log_dict"]

_STEP_BAR_NAMES = frozenset({"", "steps", "step", "training", "train", "training steps", "train steps"})
_BANNER = re.compile(r"^\s*(Num Epochs|Total optimization steps)\s*=\s*([\d,]+)\s*$")
_MAX_DICT = 4000
_LOSS_KEYS = ("loss", "step_loss", "train_loss")
_LR_KEYS = ("learning_rate", "lr")


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            f = float(value)
        except ValueError:
            return None
        return f if math.isfinite(f) else None
    return None


def parse_log_dict(line: str) -> dict[str, Any] | None:
    """The ``{...}`` log dict in ``line`` (Python or JSON literal, possibly after a logger prefix), or None.

    >>> parse_log_dict("INFO:root:{'loss': '0.1234', 'epoch': 1.0}")
    {'loss': '0.1234', 'epoch': 1.0}
    """
    start, end = line.find("{"), line.rfind("}")
    if start < 0 or end <= start or end - start > _MAX_DICT or ":" not in line[start:end]:
        return None
    text = line[start:end + 1]
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        text = text.replace("true", "True").replace("false", "False").replace("null", "None")
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return None
    return value if isinstance(value, dict) and all(isinstance(k, str) for k in value) else None


def _summary(data: dict[str, Any], keys: list[str]) -> str:
    parts = []
    for k in keys:
        v = _number(data[k])
        parts.append(f"{k}={v:.4g}" if v is not None else f"{k}={data[k]}")
    return ", ".join(parts)


class HFTrainerParser(LogParser):
    """Hugging Face Trainer / Accelerate logs to Progress events (see the module's description)."""

    name = "hf-trainer"

    def __init__(self, run_dir=None, options=None) -> None:
        super().__init__(run_dir, options)
        self.train_total: int | None = None       # the step bar's total, once known
        self.total_epochs: int | None = None
        self.step: int | None = None
        self.pending: dict[str, Any] | None = None  # a log dict waiting for the bar frame that says its step
        self.total_from_banner = False            # "Total optimization steps = N" said it: never re-guessed
        self.locked_done = False                  # the bar taken for the step bar has reached its total
        self.saw_loss = False                     # a loss has been logged (so that bar was training indeed)

    # -- pieces ------------------------------------------------------------------------------
    def _values(self, data: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k in _LOSS_KEYS:
            if k in data and _number(data[k]) is not None:
                out["loss"] = _number(data[k])
                break
        for k in _LR_KEYS:
            if k in data and _number(data[k]) is not None:
                out["lr"] = _number(data[k])
                break
        epoch = _number(data.get("epoch"))
        if epoch is not None and epoch >= 0:
            out["epoch"] = max(1, math.ceil(epoch - 1e-9))
            if self.total_epochs:
                out["epoch"] = min(out["epoch"], self.total_epochs)
                out["total_epochs"] = self.total_epochs
        for k in ("step", "global_step"):
            v = _number(data.get(k))
            if v is not None and v >= 0:
                out["step"] = int(v)
                break
        return out

    def _flush(self, step: int | None = None) -> list[Event]:
        if self.pending is None:
            return []
        fields, self.pending = self.pending, None
        if "step" not in fields and (step if step is not None else self.step) is not None:
            fields["step"] = step if step is not None else self.step
        if "step" in fields and self.train_total:
            fields.setdefault("total_steps", self.train_total)
        return [Event.progress(**fields)]

    def _is_step_bar(self, bar: TqdmFrame) -> bool:
        if bar.prefix.strip().casefold() not in _STEP_BAR_NAMES:
            return False
        if bar.unit not in (None, "it/s"):
            return False
        if self.train_total is None:
            self.train_total = bar.total
        elif bar.total != self.train_total and bar.n == 0 and self._was_not_training(bar):
            self.train_total, self.step, self.locked_done = bar.total, None, False
        return bar.total == self.train_total

    def _was_not_training(self, bar: TqdmFrame) -> bool:
        """True when the bar taken for the step bar was an evaluation before training (``trainer.evaluate()``
        first, at the default verbosity: no banner): it finished with no loss logged, and a longer bar starts.
        (An evaluation longer than the whole training run would still be mistaken: the banner settles it.)"""
        return (not self.total_from_banner and self.locked_done and not self.saw_loss
                and bar.total is not None and self.train_total is not None and bar.total > self.train_total)

    def _bar(self, bar: TqdmFrame) -> list[Event]:
        if not self._is_step_bar(bar):
            phase = bar.prefix.strip() or "evaluating"
            return self._flush() + [Event.progress(phase=phase)]
        self.step = bar.n
        self.locked_done = self.locked_done or (bar.total is not None and bar.n >= bar.total)
        fields: dict[str, Any] = {"step": bar.n, "total_steps": bar.total, "rate": bar.rate, "rate_unit": bar.unit,
                                  "eta": bar.eta, "elapsed": bar.elapsed, "phase": "training"}
        if self.total_epochs:
            fields["total_epochs"] = self.total_epochs
        post = self._values(bar.postfix) if bar.postfix else {}
        post.pop("step", None)
        if self.pending is not None:
            pending, self.pending = self.pending, None
            pending.pop("step", None)
            fields.update(pending)
        fields.update(post)
        return [Event.progress(**fields)]

    def _dict(self, data: dict[str, Any]) -> list[Event]:
        events = self._flush()
        if "train_runtime" in data:
            keys = [k for k in ("train_loss", "train_runtime", "train_samples_per_second", "train_steps_per_second", "epoch") if k in data]
            return events + [Event.message(f"Training finished: {_summary(data, keys)}.")]
        evals = [k for k in data if k.startswith("eval_")]
        if evals:
            keys = [k for k in ("eval_loss", "eval_accuracy") if k in data] or evals[:3]
            return events + [Event.message(f"Evaluation{'' if 'epoch' not in data else ' at epoch ' + format(_number(data['epoch']) or 0, 'g')}: "
                                           f"{_summary(data, keys)}.")]
        values = self._values(data)
        if "loss" not in values and "lr" not in values:
            return events
        self.saw_loss = self.saw_loss or "loss" in values
        if "step" in values:
            if self.train_total:
                values.setdefault("total_steps", self.train_total)
            return events + [Event.progress(**values)]
        if self.step is None and self.train_total is None:      # no step bar at all (disable_tqdm): loss without a step
            return events + [Event.progress(**values)]
        self.pending = values
        return events

    # -- the parser ----------------------------------------------------------------------------
    def feed(self, line: str) -> list[Event]:
        if "{" in line and "}" in line:
            data = parse_log_dict(line)
            if data is not None:       # a print right after a bar frame shares its line: the frame first
                head = line[:line.find("{")]
                bar = parse_tqdm(head) if "/" in head and "[" in head else None
                return (self._bar(bar) if bar is not None else []) + self._dict(data)
        if "/" in line and "[" in line:
            bar = parse_tqdm(line)
            if bar is not None:
                return self._bar(bar)
        m = _BANNER.match(line)
        if m:
            n = int(m.group(2).replace(",", ""))
            if m.group(1) == "Num Epochs":
                self.total_epochs = n
                return [Event.progress(total_epochs=n)]
            self.train_total, self.total_from_banner = n, True
            return [Event.progress(total_steps=n)]
        if "CUDA out of memory" in line or "OutOfMemoryError" in line:
            return self.add_hint("The GPU ran out of memory: lower the per-device batch size, or turn on gradient "
                                 "checkpointing or a smaller precision.", "cuda_oom")
        return []
