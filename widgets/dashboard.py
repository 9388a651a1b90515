"""Dashboard: every panel in tabs under the system header and the *Try the demo* line. ``Dashboard()`` in a
cell, or served by Voila.

Panels are wired together: a finished tagging job reloads the caption grid; Start in the
training panel switches to the Jobs tab and monitors the new run; datasets created in one
panel appear in the others; the demo selects its dataset and monitors its run. An invisible
:class:`~.page.PresencePing` tells the kernel whether a browser shows the page, so a closed
tab's kernel stops redrawing and can be culled by the server.

>>> import lora_nb, tempfile
>>> from lora_nb.widgets import Dashboard
>>> d = Dashboard(lora_nb.Workspace(tempfile.mkdtemp()), live=False)
>>> d.tabs.get_title(0)
'Datasets'
"""
from __future__ import annotations

from typing import Any

import ipywidgets as W

from lora_nb import Workspace
from lora_nb.jobs.manager import Job

from .captions import CaptionGrid
from .datasets import DatasetPanel
from .demo import DemoBar
from .header import SystemHeader
from .jobs_panel import JobsPanel
from .lora import LoraPanel
from .models import ModelsPanel
from .page import PresencePing
from .tagging import TaggingPanel
from .training import TrainingPanel

__all__ = ["Dashboard"]

TITLES = ["Datasets", "Tagging", "Captions", "Training", "Jobs", "LoRA tools", "Models"]


class Dashboard(W.VBox):
    """All panels in tabs. ``live=False`` turns off the background refresh threads (tests, docs)."""

    def __init__(self, ws: Workspace | None = None, live: bool = True) -> None:
        import lora_nb

        self.ws = ws if ws is not None else lora_nb.Workspace()
        self.header = SystemHeader(self.ws, interval=5.0 if live else 0)
        self.demo = DemoBar(self.ws, on_started=self._demo_started)
        self.presence = PresencePing()
        self.datasets = DatasetPanel(self.ws, on_change=self._dataset_changed)
        self.tagging = TaggingPanel(self.ws, on_done=lambda job: self.captions.reload())
        self.captions = CaptionGrid(self.ws)
        self.training = TrainingPanel(self.ws, on_submit=self._submitted)
        self.jobs = JobsPanel(self.ws, auto_refresh=2.0 if live else 0)
        self.lora = LoraPanel(self.ws)
        self.models = ModelsPanel(self.ws)
        self.panels = [self.datasets, self.tagging, self.captions, self.training, self.jobs, self.lora, self.models]
        self.tabs = W.Tab(children=self.panels)
        for i, t in enumerate(TITLES):
            self.tabs.set_title(i, t)
        self.tabs.add_class("lnb-tabs")
        self.tabs.observe(self._tab_changed, names="selected_index")
        super().__init__([self.header, self.demo, self.tabs, self.presence])
        self.add_class("lnb-dashboard")

    def _dataset_changed(self, name: str | None) -> None:
        if not hasattr(self, "captions"):
            return   # still building
        for panel in (self.tagging, self.training):
            panel.banner.guard(panel.refresh)(name)
        self.captions.banner.guard(self.captions.refresh_datasets)(name)

    def _demo_started(self, result: Any) -> None:
        self.datasets.banner.guard(self.datasets.refresh)(result.dataset.name)   # the other panels follow (on_change)
        self._submitted(result.run)

    def _submitted(self, job: Job) -> None:
        self.jobs.show(job)
        self.tabs.selected_index = TITLES.index("Jobs")

    def _tab_changed(self, change: Any) -> None:
        title = TITLES[change["new"]] if change["new"] is not None else None
        if title == "Training":
            self.training.banner.guard(self.training.refresh)()
        elif title == "Captions":
            self.captions.banner.guard(self.captions.reload)()
        elif title == "LoRA tools" and self.lora.L is not None:
            self.lora.banner.guard(self.lora.refresh)()
        elif title == "Jobs":
            self.jobs.banner.guard(self.jobs.refresh)()

    def close(self) -> None:
        for part in ("header", "jobs"):
            if hasattr(self, part):
                getattr(self, part).close()
        super().close()
