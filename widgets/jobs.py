"""JobsPanel (the job list) and JobMonitor (one job: progress, loss chart, log tail, samples,
artifacts, Stop / Resume / Re-run).

The monitor subscribes to the job's follower (a background thread that tails the log and reads
the database); its callback only records what arrived and asks a :class:`~.common.Throttle` to
redraw, so the browser gets at most a few updates a second whatever the job prints. The log is a
bounded ``<pre>`` (the newest lines), never an Output widget that grows. Jobs started by another
kernel, or before a restart, are followed the same way: everything is read from the run folder
and the database. The loss curve of such a job is rebuilt from its log with the job's parser.

>>> import lora_nb, tempfile
>>> from lora_nb.widgets import JobsPanel
>>> JobsPanel(lora_nb.Workspace(tempfile.mkdtemp()), auto_refresh=0).table.options
()
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

from .common import ErrorBanner, Runner, Throttle, css, esc, fmt_bytes, fmt_duration, image_bytes, one_sentence

__all__ = ["JobsPanel", "JobMonitor", "LossChart", "loss_svg", "file_link"]

LOG_LINES = 200          # lines shown in the log view
MAX_POINTS = 4000        # loss points kept per job (drawn downsampled)
REBUILD_BYTES = 8 << 20  # the end of a log read to rebuild a loss curve
_HISTORY: dict[str, collections.deque] = {}   # job id -> (step, loss), kept for the life of the kernel
_HISTORY_LOCK = threading.RLock()


def loss_svg(points: list[tuple[float, float]], width: int = 520, height: int = 180, max_drawn: int = 400) -> str:
    """A small SVG line chart of (step, loss) points (downsampled to ``max_drawn``), with axis labels.

    >>> loss_svg([(1, 0.5), (2, 0.25)]).startswith("<svg")
    True
    """
    if not points:
        return (f'<svg class="lnb-loss-svg" width="{width}" height="{height}"><text x="10" y="{height // 2}" fill="#888" '
                f'font-size="12">no loss values yet</text></svg>')
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
            f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="#fafafa" stroke="#ddd"/>'
            f'<polyline fill="none" stroke="#1565c0" stroke-width="1.5" points="{path}"/>'
            f'<text x="2" y="{top + 10}" font-size="10" fill="#555">{y1:.4g}</text>'
            f'<text x="2" y="{top + ph}" font-size="10" fill="#555">{y0:.4g}</text>'
            f'<text x="{left}" y="{height - 4}" font-size="10" fill="#555">step {x0:g}</text>'
            f'<text x="{width - right - 70}" y="{height - 4}" font-size="10" fill="#555">step {xs[-1]:g}</text>'
            f'<text x="{left + pw // 2 - 30}" y="{height - 4}" font-size="10" fill="#555">loss {ys[-1]:.4g}</text></svg>')


class LossChart(W.HTML):
    """An HTML widget holding :func:`loss_svg` of its points."""

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


def _history(job_id: str) -> collections.deque:
    with _HISTORY_LOCK:
        return _HISTORY.setdefault(job_id, collections.deque(maxlen=MAX_POINTS))


def rebuild_loss(job: Any) -> list[tuple[float, float]]:
    """(step, loss) points of a job read back from the end of its log with the job's own parser."""
    from lora_nb.progress.parsers import get_parser

    rec = job._record()
    parser = get_parser(rec.parser, job.run_dir, rec.parser_options)
    try:
        with open(job.log_path, "rb") as f:
            f.seek(max(0, f.seek(0, 2) - REBUILD_BYTES))
            data = f.read()
    except OSError:
        return []
    out: list[tuple[float, float]] = []
    for raw in data.replace(b"\r", b"\n").split(b"\n"):
        if not raw:
            continue
        for ev in parser.feed(raw.decode("utf-8", errors="replace")):
            d = ev.data
            if str(ev.kind) == "progress" and d.get("loss") is not None and d.get("step") is not None:
                if not out or d["step"] != out[-1][0]:
                    out.append((d["step"], float(d["loss"])))
    return out[-MAX_POINTS:]


class JobMonitor(W.VBox):
    """Follow one job live. ``attach(job)`` switches to another job (or ``attach(job_id)``)."""

    def __init__(self, ws: Any = None, job: Any = None, rate: float = 5.0, samples: int = 6,
                 on_new_job: Callable[[Any], Any] | None = None) -> None:
        import lora_nb

        self.ws = ws if ws is not None else lora_nb.Workspace()
        self.on_new_job = on_new_job
        self.banner = ErrorBanner()
        self.runner = Runner(self.banner, "lnb-monitor")
        g = self.banner.guard
        self.job: Any = None
        self._unsub: Callable[[], None] | None = None
        self._lock = threading.Lock()
        self._artifacts_seen = -1
        self.title = css(W.HTML("<i>no job selected</i>"), "lnb-job-title")
        self.bar = css(W.FloatProgress(value=0.0, min=0.0, max=1.0, layout=W.Layout(width="520px")), "lnb-job-progress")
        self.stats = css(W.HTML(""), "lnb-job-stats")
        self.chart = LossChart()
        self.log_view = css(W.HTML(""), "lnb-log-tail")
        self.sample_images = [W.Image(format="png", width=160, height=160, layout=W.Layout(display="none")) for _ in range(samples)]
        self.samples_box = css(W.HBox(self.sample_images), "lnb-samples")
        self.artifacts_view = css(W.HTML(""), "lnb-artifacts")
        self.hints_view = css(W.HTML(""), "lnb-job-hints")
        self.stop_button = css(W.Button(description="Stop", icon="stop", button_style="danger", disabled=True), "lnb-job-stop")
        self.resume_button = css(W.Button(description="Resume", icon="play", disabled=True), "lnb-job-resume")
        self.rerun_button = css(W.Button(description="Re-run", icon="repeat", disabled=True), "lnb-job-rerun")
        self.stop_button.on_click(g(self.stop))
        self.resume_button.on_click(g(self.resume))
        self.rerun_button.on_click(g(self.rerun))
        self.throttle = Throttle(self.render, rate)
        super().__init__([self.title, self.banner, W.HBox([self.bar, self.stop_button, self.resume_button, self.rerun_button]),
                          self.stats, self.hints_view, self.chart, W.HTML("<b>Log</b> (newest lines)"), self.log_view,
                          W.HTML("<b>Samples</b>"), self.samples_box, W.HTML("<b>Files</b>"), self.artifacts_view])
        self.add_class("lnb-job-monitor")
        if job is not None:
            g(self.attach)(job)

    # -- following ------------------------------------------------------------------------
    def attach(self, job: Any) -> None:
        """Follow ``job`` (a Job or a job id), whoever started it and whenever."""
        if isinstance(job, str):
            job = self.ws.jobs.get(job)
        self.detach()
        self.job = job
        self._artifacts_seen = -1
        self.banner.clear()
        hist = _history(job.id)
        p = job.progress
        if not hist:
            if p.step or job.status.is_final:
                self.runner.submit(self._seed_history, job)
        self.render()
        self._unsub = job.subscribe(self._on_events, rate=10.0)

    def detach(self) -> None:
        if self._unsub is not None:
            self._unsub()
            self._unsub = None
        self.throttle.cancel()

    def _seed_history(self, job: Any) -> None:
        points = rebuild_loss(job)
        hist = _history(job.id)
        with _HISTORY_LOCK:           # live points may have arrived meanwhile: the log's go before them
            live = list(hist)
            merged = [pt for pt in points if not live or pt[0] < live[0][0]] + live
            hist.clear()
            hist.extend(merged[-MAX_POINTS:])
        if self.job is not None and self.job.id == job.id:
            self.throttle.trigger()

    def _on_events(self, events: list[Any]) -> None:
        """Runs in the follower's thread: record, then ask for a (rate-limited) redraw."""
        job = self.job
        if job is None:
            return
        hist = _history(job.id)
        for ev in events:
            if ev.job_id not in (None, job.id):
                continue
            d = ev.data
            if str(ev.kind) == "progress" and d.get("loss") is not None and d.get("step") is not None:
                with _HISTORY_LOCK:
                    if not hist or d["step"] > hist[-1][0]:
                        hist.append((d["step"], float(d["loss"])))
        self.throttle.trigger()

    # -- drawing --------------------------------------------------------------------------
    def render(self) -> None:
        job = self.job
        if job is None:
            return
        rec = job._record()
        status = job.status
        p = job.progress
        self.title.value = (f"<b>{esc(rec.name)}</b> <code>{esc(job.id)}</code> · {esc(rec.kind)} · "
                            f'<span class="lnb-job-status" data-status="{status.value}">{status.value}</span>')
        frac = p.fraction
        self.bar.value = 1.0 if status.value == "succeeded" else (frac or 0.0)
        self.bar.bar_style = {"succeeded": "success", "failed": "danger", "stopped": "warning"}.get(status.value, "info")
        self.stats.value = esc(stats_line(p, status))
        with _HISTORY_LOCK:
            points = list(_history(job.id))
        if not points and p.loss is not None and p.step is not None:
            points = [(p.step, p.loss)]
        if points != self.chart.points:
            self.chart.draw(points)
        lines = job.log_tail(LOG_LINES)
        self.log_view.value = ('<pre style="max-height:260px;overflow:auto;font-size:11px;background:#111;color:#ddd;'
                          'padding:6px;white-space:pre-wrap;margin:0">' + esc("\n".join(lines)) + "</pre>")
        hints = job.hints
        err = rec.error if status.value == "failed" else None
        self.hints_view.value = "".join(f'<div style="color:#9a6700">{esc(one_sentence(h))}</div>' for h in hints[-3:]) + (
            f'<div style="color:#b00020">{esc(one_sentence(err))}</div>' if err else "")
        arts = job.artifacts
        if len(arts) != self._artifacts_seen or status.is_final:
            self._artifacts_seen = len(arts)
            self._draw_artifacts(arts)
        self.stop_button.disabled = status.is_final
        self.rerun_button.disabled = not status.is_final
        self.resume_button.disabled = not (status.is_final and status.value != "succeeded" and self._state_dir() is not None)

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
            raise ValueError("Choose a job first.")
        self.stop_button.disabled = True
        self.runner.submit(self.job.stop, wait=True, on_done=lambda status: self.throttle.trigger())
        self.banner.info("Stopping…")

    def _state_dir(self) -> Path | None:
        job = self.job
        if job is None or job.kind != "training":
            return None
        states = [Path(a["path"]) for a in job.artifacts if a.get("kind") == "state" and Path(a.get("path", "")).is_dir()]
        if not states:
            states = sorted((p for p in (job.run_dir / "output").glob("*-state") if p.is_dir()), key=lambda p: p.stat().st_mtime) \
                if (job.run_dir / "output").is_dir() else []
        return states[-1] if states else None

    def _config(self) -> Any:
        from lora_nb.config.model import TrainingConfig

        path = self.job.run_dir / "config.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise FileNotFoundError(f"The run folder has no readable config.json ({path}).") from None
        return TrainingConfig(**data)

    def resume(self, _: Any = None) -> Any:
        """Start a new run of the same training config from this run's newest saved state."""
        state = self._state_dir()
        if state is None:
            raise ValueError("This run saved no resumable state; turn on 'Save resumable state' and re-run.")
        cfg = self._config()
        cfg.resume = str(state)
        return self._started(self.ws.jobs.submit_training(cfg))

    def rerun(self, _: Any = None) -> Any:
        """Queue the same job again (a training run from its saved config; any other job with its command)."""
        job = self.job
        if job is None:
            raise ValueError("Choose a job first.")
        if job.kind == "training" and (job.run_dir / "config.json").is_file():
            return self._started(self.ws.jobs.submit_training(self._config()))
        rec = job._record()
        new = self.ws.jobs.submit_command(rec.argv, name=rec.name, cwd=rec.cwd, env=rec.env, parser=rec.parser,
                                          parser_options=rec.parser_options, kind=rec.kind, meta=rec.meta, uses_gpu=rec.uses_gpu)
        return self._started(new)

    def _started(self, job: Any) -> Any:
        self.attach(job)
        self.banner.info(f"Queued job {job.id}.")
        if self.on_new_job is not None:
            self.on_new_job(job)
        return job


def stats_line(p: Any, status: Any) -> str:
    """``'step 120/3000 · epoch 2/10 · loss 0.1234 · 1.52 it/s · ETA 0:32'`` (unknown parts left out)."""
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
    if p.elapsed is not None:
        parts.append(f"elapsed {fmt_duration(p.elapsed)}")
    if p.phase:
        parts.append(p.phase)
    return " · ".join(parts) or status.value


class JobsPanel(W.VBox):
    """Every job (queued, running, finished) and a monitor of the selected one.

    The list refreshes every ``auto_refresh`` seconds from a daemon thread (0: only on Refresh)."""

    def __init__(self, ws: Any = None, auto_refresh: float = 2.0) -> None:
        import lora_nb

        self.ws = ws if ws is not None else lora_nb.Workspace()
        self.banner = ErrorBanner()
        g = self.banner.guard
        self.filter = css(W.ToggleButtons(options=[("All", "all"), ("Active", "active"), ("Finished", "finished")], value="all"),
                          "lnb-jobs-filter")
        self.table = css(W.Select(options=[], rows=8, layout=W.Layout(width="100%")), "lnb-jobs-list")
        self.refresh_button = css(W.Button(description="Refresh", icon="refresh"), "lnb-jobs-refresh")
        self.empty_note = W.HTML("")
        self.delete_button = css(W.Button(description="Delete finished job", icon="trash"), "lnb-jobs-delete")
        self.monitor = JobMonitor(self.ws, on_new_job=lambda job: self.refresh(select=job.id))
        self.refresh_button.on_click(g(lambda _: self.refresh()))
        self.delete_button.on_click(g(self._delete))
        self.filter.observe(lambda ch: g(self.refresh)(), names="value")
        self.table.observe(lambda ch: g(self._selected)(ch["new"]), names="value")
        self._stop = threading.Event()
        self._refresh_lock = threading.RLock()
        self._updating = False
        super().__init__([W.HTML("<h3 style='margin:4px 0'>Jobs</h3>"), self.banner,
                          W.HBox([self.filter, self.refresh_button, self.delete_button]), self.empty_note, self.table,
                          self.monitor])
        self.add_class("lnb-jobs")
        g(self.refresh)()
        if auto_refresh:
            threading.Thread(target=self._auto, args=(auto_refresh,), name="lnb-jobs-refresh", daemon=True).start()

    def _auto(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self.refresh()
            except Exception as e:
                self.banner.error(e)

    def close(self) -> None:
        if hasattr(self, "_stop"):
            self._stop.set()
            self.monitor.detach()
        super().close()

    def refresh(self, select: str | None = None) -> None:
        with self._refresh_lock:          # the auto-refresh thread and a click may both get here
            self._refresh(select)

    def _refresh(self, select: str | None) -> None:
        from lora_nb.progress.events import JobStatus

        want = {"all": None, "active": [s for s in JobStatus if not s.is_final],
                "finished": [s for s in JobStatus if s.is_final]}[self.filter.value]
        jobs = list(reversed(self.ws.jobs.list(status=want)))       # newest first
        options = []
        for job in jobs:
            rec = job._record()
            p = job.progress
            pct = f" {p.fraction:.0%}" if p.fraction is not None and rec.status.value == "running" else ""
            options.append((f"{rec.status.value:<9} {rec.name}  ·  {rec.kind}  ·  {job.id}{pct}", job.id))
        self.empty_note.value = "" if options else "<i>no jobs yet: tagging, imports, downloads and training runs appear here</i>"
        keep = select or self.table.value
        ids = [v for _, v in options]
        if options != list(self.table.options) or (keep in ids and self.table.value != keep):
            self._updating = True
            try:
                self.table.options = options
                self.table.value = keep if keep in ids else (ids[0] if ids and self.monitor.job is None else None)
            finally:
                self._updating = False
            if self.table.value and (self.monitor.job is None or self.monitor.job.id != self.table.value):
                self.monitor.attach(self.table.value)

    def _selected(self, job_id: str | None) -> None:
        if self._updating or not job_id:
            return
        if self.monitor.job is None or self.monitor.job.id != job_id:
            self.monitor.attach(job_id)

    def show(self, job: Any) -> None:
        """Select and monitor ``job`` (a Job or an id)."""
        job_id = job if isinstance(job, str) else job.id
        self.refresh(select=job_id)
        if self.monitor.job is None or self.monitor.job.id != job_id:
            self.monitor.attach(job_id)

    def _delete(self, _: Any = None) -> None:
        job_id = self.table.value
        if not job_id:
            raise ValueError("Choose a finished job to delete.")
        if self.monitor.job is not None and self.monitor.job.id == job_id:
            self.monitor.detach()
            self.monitor.job = None
        self.ws.jobs.delete(job_id)
        self.refresh()
        self.banner.info(f"Deleted job {job_id} and its run folder.")
