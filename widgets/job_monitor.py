"""JobMonitor: one job live — progress, loss chart, log tail, samples, artifacts, Stop / Resume / Re-run.

The monitor subscribes to the job's follower (a background thread that tails the log and reads
the database); its callback only records what arrived and asks a :class:`~.common.Throttle` to
redraw, so the browser gets at most a few updates a second whatever the job prints. Each frame is
drawn from one :class:`~lora_nb.jobs.models.JobSnapshot` (one database read), with the text,
colours and chart made by :mod:`lora_nb.jobs.format`. The log is a bounded ``<pre>`` of the newest
lines as a person reads them (our tasks' ``@@lora-nb`` protocol lines turned into text), oldest at the
top and scrolled to the newest at the bottom; never an Output widget that grows. A failed job shows
its cause sentence (:func:`lora_nb.jobs.format.failure_cause`). Jobs started by another kernel, or before a restart,
are followed the same way: everything is read from the run folder and the database. The loss
curve of such a job is rebuilt from its log with the job's parser.

>>> import lora_nb, sys, tempfile
>>> ws = lora_nb.Workspace(tempfile.mkdtemp())
>>> job = ws.jobs.submit_command([sys.executable, "-c", "print('hi')"], name="hi")
>>> _ = job.wait(30)
>>> m = JobMonitor(ws, job)
>>> m.stop_button.disabled, "succeeded" in m.title.value
(True, True)
>>> m.detach()
"""
from __future__ import annotations

import collections
import json
import mimetypes
import os
import threading
from pathlib import Path
from typing import Any, Callable

import ipywidgets as W

from lora_nb import Workspace
from lora_nb.config.model import TrainingConfig
from lora_nb.errors import InvalidInput, NotFound
from lora_nb.jobs.format import bar_fraction, failure_cause, log_lines, loss_svg, progress_line, status_style
from lora_nb.jobs.gpu_watch import live_findings
from lora_nb.jobs.slowdown import TITLES, Finding, is_slowdown_hint
from lora_nb.jobs.manager import Job
from lora_nb.jobs.models import JobSnapshot
from lora_nb.progress.events import Event, EventKind, JobStatus

from .common import ErrorBanner, Runner, Throttle, css, esc, fmt_bytes, image_bytes, one_sentence
from .midrun_controls import MidRunControls

__all__ = ["JobMonitor", "LossChart", "file_link", "rebuild_loss", "slowdown_cards"]

LOG_LINES = 200          # lines shown in the log view
LOG_READ = 4 * LOG_LINES # lines read for it (runs of progress lines fold into one)
MAX_POINTS = 4000        # loss points kept per job (drawn downsampled)
REBUILD_BYTES = 8 << 20  # the end of a log read to rebuild a loss curve
_HISTORY: dict[str, collections.deque] = {}   # job id -> (step, loss), kept for the life of the kernel
_HISTORY_LOCK = threading.RLock()


class LossChart(W.HTML):
    """An HTML widget holding :func:`lora_nb.jobs.format.loss_svg` of its points."""

    def __init__(self) -> None:
        super().__init__(value=loss_svg([]))
        self.add_class("lnb-loss-chart")
        self.points: list[tuple[float, float]] = []

    def draw(self, points: list[tuple[float, float]]) -> None:
        self.points = points
        self.value = loss_svg(points)


def file_link(path: Path, root: Path, label: str | None = None) -> str:
    """An ``<a download>`` link to ``path`` when ``LORA_NB_FILES_URL`` says where the server publishes the
    workspace (e.g. ``/voila/files/``); else the path as text (plus its size)."""
    base = os.environ.get("LORA_NB_FILES_URL", "")
    text = esc(label or path.name)
    try:
        size = fmt_bytes(path.stat().st_size) if path.is_file() else "folder"
    except OSError:
        size = "missing"
    try:
        rel = path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        rel = None
    if base and rel is not None and path.is_file():
        from urllib.parse import quote

        return f'<a href="{esc(base.rstrip("/") + "/" + quote(rel))}" download>{text}</a> <small>({size})</small>'
    return f'<span title="{esc(path)}">{text}</span> <small>({size}; {esc(path)})</small>'


def slowdown_cards(findings: list[Finding]) -> str:
    """The slowdown doctor's findings as warning cards (icon, what is seen, the hint); "" when there are none.

    >>> from lora_nb.jobs.slowdown import Sample, diagnose
    >>> 'data-code="loader_bound"' in slowdown_cards(diagnose([Sample(t, step=t, gpu_util=5) for t in range(0, 30, 5)]))
    True
    """
    return "".join(
        f'<div class="lnb-card lnb-slowdown" data-code="{esc(f.code)}" role="alert" '
        f'style="border-left:4px solid var(--lnb-warn,#ef6c00);margin:4px 0;padding:6px 10px">'
        f'<span class="lnb-slowdown-icon" style="color:var(--lnb-warn,#ef6c00)">&#9888;</span> '
        f'<b>{esc(TITLES.get(f.code, "Slowdown"))}</b>: {esc(f.text)}'
        f'<div class="lnb-slowdown-hint" style="color:var(--jp-ui-font-color2,#6b7280)">{esc(f.hint)}</div></div>'
        for f in findings)


def _history(job_id: str) -> collections.deque:
    with _HISTORY_LOCK:
        return _HISTORY.setdefault(job_id, collections.deque(maxlen=MAX_POINTS))


def rebuild_loss(snap: JobSnapshot) -> list[tuple[float, float]]:
    """(step, loss) points of a job read back from the end of its log with the job's own parser."""
    from lora_nb.jobs.history import loss_series

    return loss_series(snap, REBUILD_BYTES, last_known=False)[-MAX_POINTS:]


class JobMonitor(W.VBox):
    """Follow one job live. ``attach(job)`` switches to another job (or ``attach(job_id)``)."""

    def __init__(self, ws: Workspace | None = None, job: Job | str | None = None, rate: float = 5.0, samples: int = 6,
                 on_new_job: Callable[[Job], Any] | None = None) -> None:
        self.ws = ws if ws is not None else Workspace()
        self.on_new_job = on_new_job
        self.banner = ErrorBanner()
        self.runner = Runner(self.banner, "lnb-monitor")
        g = self.banner.guard
        self.job: Job | None = None
        self._unsub: Callable[[], None] | None = None
        self._lock = threading.Lock()
        self._artifacts_seen = -1
        self._stopping: str | None = None      # the job whose Stop is on its way (its info line goes once it ended)
        self.title = css(W.HTML("<i>no job selected</i>"), "lnb-job-title")
        self.bar = css(W.FloatProgress(value=0.0, min=0.0, max=1.0, layout=W.Layout(width="520px")), "lnb-job-progress")
        self.stats = css(W.HTML(""), "lnb-job-stats")
        self.chart = LossChart()
        self.log_view = css(W.HTML(""), "lnb-log-tail")
        self.sample_images = [W.Image(format="png", width=160, height=160, layout=W.Layout(display="none")) for _ in range(samples)]
        self.samples_box = css(W.HBox(self.sample_images), "lnb-samples")
        self.artifacts_view = css(W.HTML(""), "lnb-artifacts")
        self.hints_view = css(W.HTML(""), "lnb-job-hints")
        self.slowdown_view = css(W.HTML(""), "lnb-slowdown-view")   # the slowdown doctor's warnings, while the run is live
        self._slowdown_key: tuple[Any, ...] | None = None
        self._slowdown_now: list[Finding] = []
        self.stop_button = css(W.Button(description="Stop", icon="stop", button_style="danger", disabled=True), "lnb-job-stop")
        self.resume_button = css(W.Button(description="Resume", icon="play", disabled=True), "lnb-job-resume")
        self.rerun_button = css(W.Button(description="Re-run", icon="repeat", disabled=True), "lnb-job-rerun")
        self.stop_button.on_click(g(self.stop))
        self.midrun = MidRunControls(self.runner, on_info=self.banner.info)   # Save now / Sample now (widgets/midrun_controls.py)
        self.resume_button.on_click(g(self.resume))
        self.rerun_button.on_click(g(self.rerun))
        self.throttle = Throttle(self.render, rate)
        super().__init__([self.title, self.banner, W.HBox([self.bar, self.stop_button, self.resume_button, self.rerun_button]), self.midrun,
                          self.stats, self.slowdown_view, self.hints_view, self.chart, W.HTML("<b>Log</b> (the newest lines, newest at the bottom)"), self.log_view,
                          W.HTML("<b>Samples</b>"), self.samples_box, W.HTML("<b>Files</b>"), self.artifacts_view])
        self.add_class("lnb-job-monitor")
        if job is not None:
            g(self.attach)(job)

    # -- following ------------------------------------------------------------------------
    def attach(self, job: Job | str) -> None:
        """Follow ``job`` (a Job or a job id), whoever started it and whenever."""
        if isinstance(job, str):
            job = self.ws.jobs.get(job)
        self.detach()
        self.job = job
        self._artifacts_seen = -1
        self._stopping = None
        self.banner.clear()
        snap = job.snapshot()
        if not _history(job.id) and (snap.progress.step or snap.status.is_final):
            self.runner.submit(self._seed_history, snap)
        self.render(snap)
        self._unsub = job.subscribe(self._on_events, rate=10.0)

    def detach(self) -> None:
        if self._unsub is not None:
            self._unsub()
            self._unsub = None
        self.throttle.cancel()

    def _seed_history(self, snap: JobSnapshot) -> None:
        points = rebuild_loss(snap)
        hist = _history(snap.id)
        with _HISTORY_LOCK:           # live points may have arrived meanwhile: the log's go before them
            live = list(hist)
            merged = [pt for pt in points if not live or pt[0] < live[0][0]] + live
            hist.clear()
            hist.extend(merged[-MAX_POINTS:])
        if self.job is not None and self.job.id == snap.id:
            self.throttle.trigger()

    def _on_events(self, events: list[Event]) -> None:
        """Runs in the follower's thread: record, then ask for a (rate-limited) redraw."""
        job = self.job
        if job is None:
            return
        hist = _history(job.id)
        for ev in events:
            if ev.job_id not in (None, job.id):
                continue
            d = ev.data
            if ev.kind is EventKind.PROGRESS and d.get("loss") is not None and d.get("step") is not None:
                with _HISTORY_LOCK:
                    if not hist or d["step"] > hist[-1][0]:
                        hist.append((d["step"], float(d["loss"])))
        self.throttle.trigger()

    # -- drawing --------------------------------------------------------------------------
    def render(self, snap: JobSnapshot | None = None) -> None:
        """Draw one frame, all of it from one snapshot of the job (one database read)."""
        job = self.job
        if job is None:
            return
        snap = snap if snap is not None and snap.id == job.id else job.snapshot()
        status, p = snap.status, snap.progress
        style = status_style(status)
        self.title.value = (f"<b>{esc(snap.name)}</b> <code>{esc(snap.id)}</code> · {esc(snap.kind)} · "
                            f'<span class="lnb-job-status" data-status="{status.value}" style="color:{style.colour}">'
                            f'{status.value}</span>')
        self.bar.value = bar_fraction(p, status)
        self.bar.bar_style = style.bar
        self.stats.value = esc(progress_line(p, status))
        with _HISTORY_LOCK:
            points = list(_history(snap.id))
        if not points and p.loss is not None and p.step is not None:
            points = [(p.step, p.loss)]
        if points != self.chart.points:
            self.chart.draw(points)
        lines = log_lines(job.log_tail(LOG_READ))[-LOG_LINES:]
        # column-reverse: the box opens scrolled to its end, so the newest line is what one sees
        self.log_view.value = ('<div class="lnb-log-box" style="max-height:260px;overflow:auto;display:flex;flex-direction:column-reverse;'
                               'background:#111"><pre style="font-size:11px;line-height:1.35;color:#ddd;padding:6px;white-space:pre-wrap;margin:0">'
                               + esc("\n".join(lines)) + "</pre></div>")
        err = snap.error if status is JobStatus.FAILED else None
        cause = failure_cause(err) if err else ""
        live = not status.is_final
        findings = self._slowdown(snap) if live else []          # cleared when resolved, and once the run ended
        self.slowdown_view.value = slowdown_cards(findings)
        hints = [h for h in snap.hints if not (live and is_slowdown_hint(h))]   # live: the cards say it, as it is now
        self.hints_view.value = "".join(f'<div style="color:#9a6700">{esc(one_sentence(h))}</div>' for h in hints[-3:]
                                        if one_sentence(h) != cause) + (
            f'<div class="lnb-job-cause" style="color:#b00020">{esc(cause)}</div>' if cause else "")
        if status.is_final and self._stopping == snap.id:
            self._stopping = None
            if self.banner.kind == "info":
                self.banner.clear()
        arts = list(snap.artifacts)
        if len(arts) != self._artifacts_seen or status.is_final:
            self._artifacts_seen = len(arts)
            self._draw_artifacts(arts)
        self.stop_button.disabled = status.is_final
        self.midrun.update(job, snap)
        self.rerun_button.disabled = not status.is_final
        self.resume_button.disabled = not (status.is_final and status is not JobStatus.SUCCEEDED
                                           and self._state_dir(snap) is not None)

    def _slowdown(self, snap: JobSnapshot) -> list[Finding]:
        """The slowdown doctor's findings from the run's gpu.jsonl, read again only when the file changed."""
        path = snap.run_dir / "gpu.jsonl"
        try:
            st = path.stat()
            key: tuple[Any, ...] = (snap.id, st.st_size, st.st_mtime_ns)
        except OSError:
            key = (snap.id, None)
        if key != self._slowdown_key:
            self._slowdown_key = key
            self._slowdown_now = live_findings(snap.run_dir) if key[1] is not None else []
        return self._slowdown_now

    def _draw_artifacts(self, arts: list[dict[str, Any]]) -> None:
        root = self.ws.root
        items = []
        samples = []
        for a in arts:
            path = Path(a.get("path", ""))
            kind = a.get("kind", "file")
            if kind == "sample" or (mimetypes.guess_type(path.name)[0] or "").startswith("image/"):
                samples.append(path)
            items.append(f"<li>[{esc(kind)}] {file_link(path, root)}</li>")
        self.artifacts_view.value = "<ul style='margin:2px 0'>" + "".join(items) + "</ul>" if items else "<i>none yet</i>"
        shown = [s for s in samples if s.is_file()][-len(self.sample_images):]
        for img, path in zip(self.sample_images, shown + [None] * len(self.sample_images)):
            if path is None:
                img.layout.display = "none"
                continue
            img.format = "jpeg" if path.suffix.lower() in (".jpg", ".jpeg") else (path.suffix.lstrip(".").lower() or "png")
            img.value = image_bytes(path)
            img.layout.display = ""

    # -- actions --------------------------------------------------------------------------
    def stop(self, _: Any = None) -> None:
        if self.job is None:
            raise InvalidInput("No job is selected.", fix="Choose a job in the list first.")
        self.stop_button.disabled = True
        self._stopping = self.job.id
        self.banner.info("Stopping…")
        self.runner.submit(self.job.stop, wait=True, on_done=lambda status: self.render())

    def _state_dir(self, snap: JobSnapshot | None = None) -> Path | None:
        if snap is None:
            if self.job is None:
                return None
            snap = self.job.snapshot(check=False)
        if snap.kind != "training":
            return None
        states = [Path(a["path"]) for a in snap.artifacts if a.get("kind") == "state" and Path(a.get("path", "")).is_dir()]
        out = snap.run_dir / "output"
        if not states and out.is_dir():
            states = sorted((p for p in out.glob("*-state") if p.is_dir()), key=lambda p: p.stat().st_mtime)
        return states[-1] if states else None

    def _config(self) -> TrainingConfig:
        assert self.job is not None
        path = self.job.run_dir / "config.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise NotFound(f"The run folder has no readable config.json ({path}).",
                           fix="Re-run it from the Training tab with the same settings.") from None
        return TrainingConfig(**data)

    def resume(self, _: Any = None) -> Job:
        """Start a new run of the same training config from this run's newest saved state."""
        state = self._state_dir()
        if state is None:
            raise InvalidInput("This run saved no resumable state.", fix="Turn on 'Save resumable state' in the Training tab and re-run.")
        cfg = self._config()
        cfg.resume = str(state)
        return self._started(self.ws.jobs.submit_training(cfg))

    def rerun(self, _: Any = None) -> Job:
        """Queue the same job again (a training run from its saved config; any other job with its command)."""
        job = self.job
        if job is None:
            raise InvalidInput("No job is selected.", fix="Choose a job in the list first.")
        snap = job.snapshot(check=False)
        if snap.kind == "training" and (snap.run_dir / "config.json").is_file():
            return self._started(self.ws.jobs.submit_training(self._config()))
        new = self.ws.jobs.submit_command(snap.argv, name=snap.name, cwd=snap.cwd, env=snap.env, parser=snap.parser,
                                          parser_options=snap.parser_options, kind=snap.kind, meta=snap.meta,
                                          gpus=snap.gpus)
        return self._started(new)

    def _started(self, job: Job) -> Job:
        self.attach(job)
        self.banner.info(f"Queued job {job.id}.")
        if self.on_new_job is not None:
            self.on_new_job(job)
        return job
