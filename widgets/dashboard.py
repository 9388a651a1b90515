"""Dashboard: every panel in tabs under a compact system header, with a first-run card on an empty workspace.
``Dashboard()`` in a cell (JupyterLab), or served by Voila (``lora-nb dashboard``).

Fast to open: only the Datasets panel is built at start. Every other tab holds an empty box until it is first
opened; then its panel is built (its module imported) and put in the box. The tab list is :data:`TABS`, one
``(title, factory)`` entry per tab, so adding a tab is one entry. The *Runs* tab (run history and compare,
``lora_nb.widgets.runs.RunsPanel``) is listed only where that module is installed.

Guided: an empty workspace shows :class:`~.demo.FirstRunCard` (*Try the demo*, *Import your images*). Each
tab shows the next step of the flow (dataset -> tags -> captions -> training -> jobs/runs -> LoRA) as a
button once its own work is done (:func:`next_step`).

Panels are wired together: a finished tagging job reloads the caption grid; Start in the training panel
switches to the Jobs tab and monitors the new run; the dataset chosen in one panel is the one the others
show when they are built or refreshed; the demo selects its dataset and monitors its run. An invisible
:class:`~.page.PresencePing` tells the kernel whether a browser shows the page, so a closed tab's kernel
stops redrawing and can be culled by the server. Panels are reachable as attributes (``d.training``):
reading one builds it if it was not built yet.

>>> import lora_nb, tempfile
>>> from lora_nb.widgets import Dashboard
>>> d = Dashboard(lora_nb.Workspace(tempfile.mkdtemp()), live=False)
>>> d.tabs.get_title(0), d.built()
('Datasets', ['Datasets'])
>>> d.first_run.layout.display != "none"          # an empty workspace: the first-run card shows
True
"""
from __future__ import annotations

import importlib
import importlib.util
from typing import Any, Callable

import ipywidgets as W

from lora_nb import Workspace

from .common import STYLE_HTML, css, esc
from .demo import DemoBar, FirstRunCard
from .header import SystemHeader
from .page import PresencePing

__all__ = ["Dashboard", "TABS", "next_step", "tab_entries"]


def _lazy(module: str, cls: str, **fixed: Any) -> Callable[..., Any]:
    """A factory that imports ``lora_nb.widgets.<module>`` only when the tab is first built."""
    def make(dash: "Dashboard") -> Any:
        mod = importlib.import_module(f"lora_nb.widgets.{module}")
        return getattr(mod, cls)(dash.ws, **{k: (v(dash) if callable(v) else v) for k, v in fixed.items()})
    make.__qualname__ = f"lazy {module}.{cls}"
    return make


def _runs_available() -> bool:
    try:
        return importlib.util.find_spec("lora_nb.widgets.runs") is not None
    except (ImportError, ValueError):
        return False


# (title, attribute, factory(dashboard) -> panel). Adding a tab is one entry here.
TABS: list[tuple[str, str, Callable[["Dashboard"], Any]]] = [
    ("Datasets", "datasets", _lazy("datasets", "DatasetPanel", on_change=lambda d: d._dataset_changed)),
    ("Tagging", "tagging", _lazy("tagging", "TaggingPanel", on_done=lambda d: d._tagging_done)),
    ("Captions", "captions", _lazy("captions", "CaptionGrid")),
    ("Training", "training", _lazy("training", "TrainingPanel", on_submit=lambda d: d._submitted)),
    ("Jobs", "jobs", lambda d: importlib.import_module("lora_nb.widgets.jobs_panel").JobsPanel(d.ws, auto_refresh=2.0 if d.live else 0)),
    ("Runs", "runs", _lazy("runs", "RunsPanel")),
    ("LoRA tools", "lora", _lazy("lora", "LoraPanel")),
    ("Models", "models", _lazy("models", "ModelsPanel")),
]


def tab_entries() -> list[tuple[str, str, Callable[["Dashboard"], Any]]]:
    """The tabs this installation shows: :data:`TABS` without *Runs* where ``lora_nb.widgets.runs`` is absent."""
    return [t for t in TABS if t[1] != "runs" or _runs_available()]


def _has_captions(ds: Any) -> bool:
    ext = ds.caption_extension
    return any(True for _ in _first(ds.path.rglob(f"*{ext}")))


def _first(it: Any) -> list[Any]:
    for x in it:
        return [x]
    return []


def _runs(ws: Workspace, status: str | None = None) -> list[Any]:
    """Training runs, the demo's CPU stand-in included (a task job marked ``demo``)."""
    return [s for s in ws.jobs.snapshots(status=status) if s.kind == "training" or (s.meta or {}).get("demo")]


def next_step(ws: Workspace, title: str, dataset: str | None, titles: list[str]) -> tuple[str, str, str] | None:
    """``(done sentence, next tab title, button text)`` once ``title``'s work is done, else None.

    >>> import lora_nb, tempfile
    >>> ws = lora_nb.Workspace(tempfile.mkdtemp())
    >>> next_step(ws, "Datasets", None, ["Datasets", "Tagging"]) is None
    True
    """
    ds = ws.datasets.get(dataset) if dataset and dataset in ws.datasets else None
    if title == "Datasets" and ds is not None:
        n = len(ds.image_files(sort=False))
        if n:
            return f"'{ds.name}' has {n:,} images.", "Tagging", "Next: tag them"
    elif title == "Tagging" and ds is not None and _has_captions(ds):
        return f"'{ds.name}' has captions.", "Captions", "Next: check the captions"
    elif title == "Captions" and ds is not None and _has_captions(ds):
        return "Captions look ready?", "Training", "Next: set up training"
    elif title == "Training":
        runs = _runs(ws)
        if runs:
            return f"{len(runs)} run(s) started.", "Jobs", "Next: watch the run"
    elif title in ("Jobs", "Runs"):
        done = _runs(ws, status="succeeded")
        if done:
            target = "Runs" if title == "Jobs" and "Runs" in titles else "LoRA tools"
            return f"{len(done)} finished run(s).", target, ("Next: compare runs" if target == "Runs" else "Next: check the LoRA")
    return None


class NextStep(W.HBox):
    """A slim line at the top of a tab: what is done, and a button that opens the next tab (hidden until done)."""

    def __init__(self, go: Callable[[str], Any]) -> None:
        self.text = css(W.HTML(""), "lnb-next-text")
        self.button = css(W.Button(description="", icon="arrow-right", button_style="success",
                                           layout=W.Layout(width="auto")), "lnb-next-btn")
        self.target: str | None = None
        self.button.on_click(lambda _: go(self.target) if self.target else None)
        super().__init__([self.text, self.button], layout=W.Layout(display="none", align_items="center"))
        self.add_class("lnb-next")

    def show(self, step: tuple[str, str, str] | None) -> None:
        if step is None:
            self.target = None
            self.layout.display = "none"
            return
        done, self.target, label = step
        self.text.value = f'<span class="lnb-chip lnb-chip-ok">✓ {esc(done)}</span>'
        self.button.description = label
        self.layout.display = ""


class Dashboard(W.VBox):
    """All panels in lazily built tabs. ``live=False`` turns off the background refresh threads (tests, docs)."""

    def __init__(self, ws: Workspace | None = None, live: bool = True) -> None:
        import lora_nb

        self.ws = ws if ws is not None else lora_nb.Workspace()
        self.live = live
        self.current_dataset: str | None = None
        self.entries = tab_entries()
        self.titles = [t for t, _, _ in self.entries]
        self._panels: dict[str, Any] = {}
        self.header = SystemHeader(self.ws, interval=5.0 if live else 0)
        self.demo = DemoBar(self.ws, on_started=self._demo_started)
        self.first_run = FirstRunCard(self.ws, self.demo, on_import=self._go_import)
        self.presence = PresencePing()
        box_layout = W.Layout(min_height="120px")          # one model shared by every box: fewer models in the browser
        self.boxes = [css(W.VBox([], layout=box_layout), "lnb-tab-box", f"lnb-tab-{attr}") for _, attr, _ in self.entries]
        self.hints: dict[str, NextStep] = {}                 # made with their tab's panel
        self.tabs = css(W.Tab(children=self.boxes, titles=self.titles), "lnb-tabs")
        self._build("Datasets")
        self.tabs.observe(self._tab_changed, names="selected_index")
        self.first_run.update()
        super().__init__([W.HTML(STYLE_HTML), self.header, self.first_run, self.tabs, self.presence])
        self.add_class("lnb-dashboard")

    # -- lazy tabs -----------------------------------------------------------------------
    def built(self) -> list[str]:
        """Titles of the tabs whose panel exists (the others are built when first opened)."""
        return [t for t in self.titles if t in self._panels]

    def panel(self, title: str) -> Any:
        """The panel of tab ``title``, built now if it was not yet."""
        return self._panels[title] if title in self._panels else self._build(title)

    def _build(self, title: str) -> Any:
        i = self.titles.index(title)
        _, attr, factory = self.entries[i]
        box = self.boxes[i]
        box.children = [css(W.HTML(f"<i>Opening {esc(title)}…</i>"), "lnb-tab-loading")]
        try:
            panel = factory(self)
        except Exception as e:   # one panel failing to build must not take the dashboard down
            from .common import one_sentence

            box.children = [css(W.HTML(f'<div class="lnb-error lnb-chip lnb-chip-err">{esc(title)} cannot open: '
                                       f'{esc(one_sentence(e))}</div>'), "lnb-tab-error")]
            raise
        self._panels[title] = panel
        self.hints[title] = NextStep(self.go)
        if self.current_dataset is not None:
            self._follow(title, panel, self.current_dataset)
        box.children = [self.hints[title], panel]
        self._hint(title)
        return panel

    def __getattr__(self, name: str) -> Any:
        # d.datasets, d.training ... build their tab on first use (only called for attributes not found otherwise)
        if not name.startswith("_"):
            entries = self.__dict__.get("entries") or []
            for title, attr, _ in entries:
                if attr == name:
                    return self.panel(title)
        raise AttributeError(name)

    def go(self, title: str) -> None:
        """Open tab ``title`` (building it on first use)."""
        self.tabs.selected_index = self.titles.index(title)

    # -- wiring --------------------------------------------------------------------------
    def _follow(self, title: str, panel: Any, name: str | None) -> None:
        if title in ("Tagging", "Training"):
            panel.banner.guard(panel.refresh)(name)
        elif title == "Captions":
            panel.banner.guard(panel.refresh_datasets)(name)

    def _dataset_changed(self, name: str | None) -> None:
        self.current_dataset = name
        for title in ("Tagging", "Training", "Captions"):
            if title in self._panels:
                self._follow(title, self._panels[title], name)
        if "first_run" in self.__dict__:
            self.first_run.update()
            self._hint("Datasets")

    def _hint(self, title: str) -> None:
        if title not in self.hints:
            return
        try:
            self.hints[title].show(next_step(self.ws, title, self.current_dataset, self.titles))
        except Exception:    # a hint is a nicety; never break a panel over it
            self.hints[title].show(None)

    def _tagging_done(self, job: Any) -> None:
        if "Captions" in self._panels:
            self._panels["Captions"].reload()
        self._hint("Tagging")

    def _go_import(self) -> None:
        self.go("Datasets")
        self.datasets.source_box.focus()

    def _demo_started(self, result: Any) -> None:
        self.datasets.banner.guard(self.datasets.refresh)(result.dataset.name)   # the other panels follow (on_change)
        self._submitted(result.run)

    def _submitted(self, job: Any) -> None:
        self.jobs.show(job)
        self._hint("Training")
        self.go("Jobs")

    def _tab_changed(self, change: Any) -> None:
        if change["new"] is None:
            return
        title = self.titles[change["new"]]
        self.first_run.update()
        if title not in self._panels:
            try:
                self._build(title)
            except Exception:
                return   # shown in the tab
            self._hint(title)
            return
        panel = self._panels[title]
        if title == "Training":
            panel.banner.guard(panel.refresh)()
        elif title == "Captions":
            panel.banner.guard(panel.reload)()
        elif title == "LoRA tools" and panel.L is not None:
            panel.banner.guard(panel.refresh)()
        elif title == "Jobs":
            panel.banner.guard(panel.refresh)()
        self._hint(title)

    def close(self) -> None:
        parts = [self.__dict__.get("header"), *self.__dict__.get("_panels", {}).values()]
        for part in parts:
            if part is not None:
                try:
                    part.close()      # stops the refresh threads of the header and the Jobs panel
                except Exception:
                    pass
        super().close()
