"""JobsPanel: every job (queued, running, finished) and a :class:`~.job_monitor.JobMonitor` of the selected one.

The list is drawn from one read of every job's snapshot (``ws.jobs.snapshots()``).

>>> import lora_nb, tempfile
>>> JobsPanel(lora_nb.Workspace(tempfile.mkdtemp()), auto_refresh=0).table.options
()
"""
from __future__ import annotations

import threading
from typing import Any

import ipywidgets as W

from lora_nb import Workspace
from lora_nb.errors import InvalidInput
from lora_nb.jobs.manager import Job
from lora_nb.progress.events import JobStatus

from .autostop import AutostopBox
from .command_form import CommandForm
from .common import PRESENCE, ErrorBanner, css
from .executor_box import ExecutorBox
from .gpu_slots import GpuSlotsBox
from .job_monitor import JobMonitor

__all__ = ["JobsPanel"]


class JobsPanel(W.VBox):
    """Every job (queued, running, finished) and a monitor of the selected one.

    The list refreshes every ``auto_refresh`` seconds from a daemon thread (0: only on Refresh)."""

    def __init__(self, ws: Workspace | None = None, auto_refresh: float = 2.0) -> None:
        self.ws = ws if ws is not None else Workspace()
        self.banner = ErrorBanner()
        g = self.banner.guard
        self.filter = css(W.ToggleButtons(options=[("All", "all"), ("Active", "active"), ("Finished", "finished")], value="all"),
                          "lnb-jobs-filter")
        self.table = css(W.Select(options=[], rows=8, layout=W.Layout(width="100%")), "lnb-jobs-list")
        self.refresh_button = css(W.Button(description="Refresh", icon="refresh"), "lnb-jobs-refresh")
        self.empty_note = W.HTML("")
        self.delete_button = css(W.Button(description="Delete finished job", icon="trash"), "lnb-jobs-delete")
        self.monitor = JobMonitor(self.ws, on_new_job=lambda job: self.refresh(select=job.id))
        self.slots = GpuSlotsBox(self.ws, self.banner)
        self.executor = ExecutorBox(self.ws, self.banner)             # here or a Ray cluster
        self.command_form = CommandForm(self.ws, on_submit=self.show)      # any command as a job
        self.run_command = css(W.Accordion(children=[self.command_form], selected_index=None), "lnb-jobs-run-command")
        self.run_command.set_title(0, "Run a command as a job")
        self.autostop = AutostopBox(self.ws, self.banner)
        self.refresh_button.on_click(g(lambda _: self.refresh()))
        self.delete_button.on_click(g(self._delete))
        self.filter.observe(lambda ch: g(self.refresh)(), names="value")
        self.table.observe(lambda ch: g(self._selected)(ch["new"]), names="value")
        self._stop = threading.Event()
        self._refresh_lock = threading.RLock()
        self._updating = False
        super().__init__([W.HTML("<h3 style='margin:4px 0'>Jobs</h3>"), self.banner,
                          W.HBox([self.filter, self.refresh_button, self.delete_button]), self.slots, self.executor, self.autostop, self.empty_note,
                          self.run_command, self.table, self.monitor])
        self.add_class("lnb-jobs")
        g(self.refresh)()
        if auto_refresh:
            threading.Thread(target=self._auto, args=(auto_refresh,), name="lnb-jobs-refresh", daemon=True).start()

    def _auto(self, interval: float) -> None:
        while not self._stop.wait(interval):
            if not PRESENCE.watching():  # nobody sees the list: nothing to redraw
                continue
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
        want = {"all": None, "active": [s for s in JobStatus if not s.is_final],
                "finished": [s for s in JobStatus if s.is_final]}[self.filter.value]
        options = []
        for snap in reversed(self.ws.jobs.snapshots(status=want)):       # newest first, one read
            frac = snap.progress.fraction
            pct = f" {frac:.0%}" if frac is not None and snap.status is JobStatus.RUNNING else ""
            gpu = f"  ·  GPU {','.join(map(str, snap.devices))}" if snap.devices and snap.is_active else ""
            where = "  ·  on Ray" if snap.executor != "local" else ""
            options.append((f"{snap.status.value:<9} {snap.name}  ·  {snap.kind}  ·  {snap.id}{pct}{gpu}{where}", snap.id))
        self.slots.refresh()
        self.executor.refresh()
        self.autostop.refresh()
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

    def show(self, job: Job | str) -> None:
        """Select and monitor ``job`` (a Job or an id)."""
        job_id = job if isinstance(job, str) else job.id
        self.refresh(select=job_id)
        if self.monitor.job is None or self.monitor.job.id != job_id:
            self.monitor.attach(job_id)

    def _delete(self, _: Any = None) -> None:
        job_id = self.table.value
        if not job_id:
            raise InvalidInput("No job is selected.", fix="Choose a finished job in the list, then Delete.")
        if self.monitor.job is not None and self.monitor.job.id == job_id:
            self.monitor.detach()
            self.monitor.job = None
        self.ws.jobs.delete(job_id)
        self.refresh()
        self.banner.info(f"Deleted job {job_id} and its run folder.")
