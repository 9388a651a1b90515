"""Pure formatting of a job for people: its progress line, its status style, its loss chart.

No widgets and no I/O here (as tqdm's ``format_meter`` is apart from its notebook renderer): the
CLI, the compact job line and the job monitor all draw from these, each from one
:class:`~lora_nb.jobs.models.JobSnapshot`.

>>> from lora_nb.progress.events import JobStatus, Progress
>>> progress_line(Progress(step=120, total_steps=3000, epoch=2, total_epochs=10, loss=0.1234, rate=1.52, eta=32), JobStatus.RUNNING)
'step 120/3,000 · epoch 2/10 · loss 0.1234 · 1.52 it/s · ETA 0:32'
>>> progress_line(Progress(), JobStatus.QUEUED)
'queued'
>>> status_style(JobStatus.FAILED).bar
'danger'
>>> fmt_duration(3725)
'1:02:05'
>>> failure_cause('The job failed: exit code 1.\\nLast lines:\\n@@lora-nb {"event": "message", "text": "No such model.", "level": "error"}')
'No such model.'
>>> log_lines(['@@lora-nb {"event": "progress", "step": 1, "total_steps": 4, "phase": "tagging"}', "done"])
['[tagging] 1/4', 'done']
"""
from __future__ import annotations

import json
import re
from typing import Iterable, NamedTuple, Sequence

from ..progress.events import JobStatus, Progress
from ..progress.parsers import TASK_MARKER

__all__ = ["progress_line", "job_line", "status_style", "StatusStyle", "loss_svg", "fmt_duration", "first_sentence",
           "failure_cause", "marker_text", "is_progress_marker", "log_lines", "SVG_PANEL", "SVG_TEXT", "SVG_LINE"]


def fmt_duration(seconds: float | None) -> str:
    """``3725`` -> ``'1:02:05'``; None -> ``'?'``."""
    if seconds is None or seconds != seconds or seconds < 0:
        return "?"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def progress_line(progress: Progress, status: JobStatus, elapsed: bool = True) -> str:
    """``'step 120/3,000 · epoch 2/10 · loss 0.1234 · 1.52 it/s · ETA 0:32'``; unknown parts left out,
    the status when nothing is known. No ETA once the job has ended."""
    p = progress
    parts = []
    if p.step is not None:
        parts.append(f"step {p.step:,}/{p.total_steps:,}" if p.total_steps else f"step {p.step:,}")
    if p.epoch is not None:
        parts.append(f"epoch {p.epoch}/{p.total_epochs}" if p.total_epochs else f"epoch {p.epoch}")
    if p.loss is not None:
        parts.append(f"loss {p.loss:.4g}")
    if p.rate:
        parts.append(f"{p.rate:.2f} {p.rate_unit or 'it/s'}")
    if p.eta is not None and not status.is_final:
        parts.append(f"ETA {fmt_duration(p.eta)}")
    if elapsed and p.elapsed is not None:
        parts.append(f"elapsed {fmt_duration(p.elapsed)}")
    if p.phase:
        parts.append(p.phase)
    return " · ".join(parts) or status.value


def first_sentence(text: str) -> str:
    """The first line of a failure summary (its cause sentence), without the log lines under it."""
    return text.strip().splitlines()[0].strip() if text and text.strip() else ""


# "The job failed: exit code 1." says nothing a person can act on; the cause is further down
_GENERIC = re.compile(r"^The job failed(?: with exit code -?\d+)?: (?:exit code -?\d+|unknown reason|killed by signal \d+)\.?$")
_EXCEPTION = re.compile(r"^(?:[A-Za-z_][\w.]*\.)?[A-Z]\w*(?:Error|Exception)\b:? ?.*")


def failure_cause(error: str | None) -> str:
    """The sentence that says why a job failed, from its failure summary (``job.error``).

    The summary's first line when it names the cause ("CUDA out of memory"); when it only gives the exit
    code, the fix the engine's parser recognised (the summary's second line), else the last error our
    own tasks reported (an ``@@lora-nb`` message of level error, with its fix), else the last Python
    exception line of the engine's output, else the first line as it is.
    """
    if not error or not error.strip():
        return ""
    lines = error.strip().splitlines()
    head = lines[0].strip()
    if not _GENERIC.match(head):
        return head
    body = lines[1:]
    if body and body[0].strip() and not body[0].startswith("Last lines:"):
        return body[0].strip()
    tail = body[body.index("Last lines:") + 1:] if "Last lines:" in body else body
    for line in reversed(tail):
        if line.startswith(TASK_MARKER):
            data = _marker(line)
            if data and data.get("event") == "message" and data.get("level") == "error" and data.get("text"):
                return str(data["text"]).strip()
    for line in reversed(tail):
        if _EXCEPTION.match(line.strip()) and not line.startswith(TASK_MARKER):
            return line.strip()
    return head


def job_line(status: JobStatus, progress: Progress, error: str | None = None) -> str:
    """One line for a job: ``'running · step 12/40 · 1.52 it/s · ETA 0:18'``, with the cause when it failed."""
    parts = [status.value]
    body = progress_line(progress, status, elapsed=False)
    if body != status.value:
        parts.append(body)
    if status is JobStatus.FAILED and error:
        parts.append(failure_cause(error))
    return " · ".join(parts)


def _marker(line: str) -> dict | None:
    try:
        data = json.loads(line[len(TASK_MARKER):])
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def marker_text(line: str) -> str | None:
    """What a person reads for one ``@@lora-nb {json}`` line of our own tasks: the message, the progress as
    ``[phase] 3/10``, the artifact's path; None for lines with nothing to read. Other lines come back as they are."""
    if not line.startswith(TASK_MARKER):
        return line
    data = _marker(line)
    if data is None:
        return line
    event = data.get("event")
    if event == "progress":
        step, total, phase = data.get("step"), data.get("total_steps"), data.get("phase")
        count = f"{step}/{total}" if total else (str(step) if step is not None else "")
        return f"[{phase or 'progress'}] {count}".rstrip()
    if event in ("message", "hint"):
        level = data.get("level", "hint" if event == "hint" else "info")
        return data.get("text", "") if level == "info" else f"{level}: {data.get('text', '')}"
    if event == "artifact":
        return f"{data.get('kind', 'file')}: {data.get('path')}"
    return None


def is_progress_marker(line: str) -> bool:
    return line.startswith(TASK_MARKER + '{"event": "progress"')


def log_lines(lines: Iterable[str]) -> list[str]:
    """A log's lines as a person reads them: our tasks' protocol lines turned into text (:func:`marker_text`),
    and each run of progress lines folded into its last one (a terminal redraws them in place)."""
    out: list[str] = []
    last_was_progress = False
    for line in lines:
        progress = is_progress_marker(line)
        text = marker_text(line)
        if text is None:
            continue
        if progress and last_was_progress and out:
            out[-1] = text
        else:
            out.append(text)
        last_was_progress = progress
    return out


class StatusStyle(NamedTuple):
    """How a status looks: the progress bar's style, a colour and an icon name (Font Awesome)."""

    bar: str
    colour: str
    icon: str


_STYLES = {
    JobStatus.QUEUED: StatusStyle("info", "#57606a", "clock-o"),
    JobStatus.STARTING: StatusStyle("info", "#0969da", "hourglass-half"),
    JobStatus.RUNNING: StatusStyle("info", "#0969da", "play"),
    JobStatus.SUCCEEDED: StatusStyle("success", "#1a7f37", "check"),
    JobStatus.FAILED: StatusStyle("danger", "#cf222e", "times"),
    JobStatus.STOPPED: StatusStyle("warning", "#9a6700", "stop"),
}


def status_style(status: JobStatus) -> StatusStyle:
    return _STYLES[JobStatus(status)]


def bar_fraction(progress: Progress, status: JobStatus) -> float:
    """How full a progress bar is: full once the job succeeded, else the step fraction (0 when unknown)."""
    return 1.0 if status is JobStatus.SUCCEEDED else (progress.fraction or 0.0)


# Chart colours from JupyterLab's theme variables (our Voila template's light/dark switch sets the same ones), with
# light fallbacks for a page without them; as inline CSS, since SVG presentation attributes do not take var().
SVG_PANEL = 'style="fill:var(--jp-layout-color1,#fafafa);stroke:var(--jp-border-color2,#ddd)"'
SVG_TEXT = 'style="fill:var(--jp-ui-font-color2,#555)"'
SVG_LINE = 'style="stroke:var(--jp-brand-color1,#1565c0)"'


def loss_svg(points: Sequence[tuple[float, float]], width: int = 520, height: int = 180, max_drawn: int = 400) -> str:
    """A small SVG line chart of (step, loss) points (downsampled to ``max_drawn``), with axis labels.

    >>> loss_svg([(1, 0.5), (2, 0.25)]).startswith("<svg")
    True
    """
    if not points:
        return (f'<svg class="lnb-loss-svg" width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">'
                f'<rect class="lnb-chart-panel" x="0.5" y="0.5" width="{width - 1}" height="{height - 1}" {SVG_PANEL}/>'
                f'<text x="10" y="{height // 2}" font-size="12" {SVG_TEXT}>no loss values yet</text></svg>')
    points = list(points)
    if len(points) > max_drawn:
        stride = len(points) / max_drawn
        points = [points[int(i * stride)] for i in range(max_drawn)] + [points[-1]]
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    if x1 == x0:
        x1 = x0 + 1
    if y1 == y0:
        y1 = y0 + (abs(y0) or 1) * 0.1
    left, right, top, bottom = 48, 8, 8, 20
    pw, ph = width - left - right, height - top - bottom

    def sx(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * pw

    def sy(y: float) -> float:
        return top + (1 - (y - y0) / (y1 - y0)) * ph
    path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in points)
    return (f'<svg class="lnb-loss-svg" width="{width}" height="{height}" data-points="{len(points)}" '
            f'data-last-step="{xs[-1]:g}" xmlns="http://www.w3.org/2000/svg">'
            f'<rect class="lnb-chart-panel" x="{left}" y="{top}" width="{pw}" height="{ph}" {SVG_PANEL}/>'
            f'<polyline fill="none" stroke-width="1.5" {SVG_LINE} points="{path}"/>'
            f'<text x="2" y="{top + 10}" font-size="10" {SVG_TEXT}>{y1:.4g}</text>'
            f'<text x="2" y="{top + ph}" font-size="10" {SVG_TEXT}>{y0:.4g}</text>'
            f'<text x="{left}" y="{height - 4}" font-size="10" {SVG_TEXT}>step {x0:g}</text>'
            f'<text x="{width - right - 70}" y="{height - 4}" font-size="10" {SVG_TEXT}>step {xs[-1]:g}</text>'
            f'<text x="{left + pw // 2 - 30}" y="{height - 4}" font-size="10" {SVG_TEXT}>loss {ys[-1]:.4g}</text></svg>')
