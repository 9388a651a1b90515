"""DemoBar: *Try the demo* — the whole flow on this machine in one click, no GPU and no download needed.

It calls :func:`lora_nb.demo.start_demo` off the kernel's thread: a new dataset of generated shapes
(``demo``, ``demo-2`` ...), tagged by a small local tagger (a job), then the CPU stand-in of a training
run (a job that reports steps, loss and checkpoints like a trainer and writes a LoRA file with random
weights). Progress of each job is shown in the bar; ``on_started(result)`` gets the
:class:`~lora_nb.demo.DemoRun` (the Dashboard then shows the dataset and monitors the run).

>>> import lora_nb, tempfile
>>> bar = DemoBar(lora_nb.Workspace(tempfile.mkdtemp()))
>>> bar.button.description
'Try the demo'

:class:`FirstRunCard` is what an empty workspace shows first: the demo (this bar) and *Import your images*.

>>> card = FirstRunCard(bar.ws, bar); card.update(); card.layout.display, card.import_button.description
('', 'Import your images')
"""
from __future__ import annotations

from typing import Any, Callable

import ipywidgets as W

from lora_nb import Workspace

from .common import ErrorBanner, JobLine, Runner, css, esc

__all__ = ["DemoBar", "FirstRunCard"]


class DemoBar(W.VBox):
    """One line that starts the demo, with its progress."""

    def __init__(self, ws: Workspace | None = None, on_started: Callable[[Any], Any] | None = None, **demo_options: Any) -> None:
        import lora_nb

        self.ws = ws if ws is not None else lora_nb.Workspace()
        self.on_started = on_started
        self.demo_options = demo_options
        self.banner = ErrorBanner()
        self.runner = Runner(self.banner, "lnb-demo")
        self.result: Any = None
        self.button = css(W.Button(description="Try the demo", icon="play", button_style="info",
                                   tooltip="a generated dataset, a tiny local tagger and a CPU stand-in of a training run"),
                          "lnb-demo-btn")
        self.about = W.HTML("<b>New here?</b> <span class='lnb-muted'>Try the whole flow on this machine: a small dataset of "
                            "coloured shapes, tagged by a tiny local tagger, then a CPU stand-in of a training run (progress, "
                            "loss, checkpoints, a LoRA file with random weights). No GPU, no download.</span>",
                            layout=W.Layout(flex="1"))
        self.status = css(W.HTML(""), "lnb-demo-status")
        self.line = css(JobLine(), "lnb-demo-progress")
        self.button.on_click(self.start)
        super().__init__([W.HBox([self.button, self.about], layout=W.Layout(align_items="center")), self.banner, self.status,
                          self.line], layout=W.Layout(padding="4px 0", margin="4px 0"))
        self.add_class("lnb-demo")

    def _say(self, text: str) -> None:
        self.status.value = f'<span class="lnb-chip lnb-chip-run">{esc(text)}</span>'

    def start(self, _: Any = None) -> None:
        """Start the demo in the background (the button is off until it has started)."""
        from lora_nb.demo import start_demo

        self.button.disabled = True
        self.banner.clear()

        def work() -> Any:
            try:
                return start_demo(self.ws, on_job=self.line.attach, say=self._say, **self.demo_options)
            finally:
                self.button.disabled = False

        self.runner.submit(work, on_done=self._started)

    def _started(self, result: Any) -> None:
        self.result = result
        if self.on_started is not None:
            self.on_started(result)


class FirstRunCard(W.VBox):
    """The first-run card: *Try the demo* (``demo``, a :class:`DemoBar`) and *Import your images*
    (``on_import()``, which opens the Datasets import). Shown while the workspace has no dataset, and
    while a demo started from it is still in progress; :meth:`update` re-checks."""

    def __init__(self, ws: Workspace, demo: DemoBar, on_import: Callable[[], Any] | None = None) -> None:
        self.ws = ws
        self.demo = demo
        self.on_import = on_import
        self.title = W.HTML('<div class="lnb-card-title">Welcome to lora-nb</div>'
                            '<div class="lnb-card-sub">From a folder of images to a trained LoRA: '
                            'dataset → tags → captions → training → runs → LoRA.</div>')
        self.import_button = css(W.Button(description="Import your images", icon="upload",
                                          tooltip="upload a ZIP or images, or import a URL or folder",
                                          layout=W.Layout(width="auto", min_width="148px")), "lnb-first-import")
        self.import_about = W.HTML("<span class='lnb-muted'>Upload a ZIP or images, or import from a URL or a folder on this "
                                   "machine.</span>", layout=W.Layout(flex="1"))
        self.import_button.on_click(lambda _: self.on_import() if self.on_import is not None else None)
        super().__init__([self.title, demo, W.HBox([self.import_button, self.import_about], layout=W.Layout(align_items="center"))])
        self.add_class("lnb-first-run")
        self.add_class("lnb-card")
        self.update()

    def update(self) -> None:
        """Show the card on an empty workspace (or while its demo runs); hide it otherwise."""
        try:
            empty = not self.ws.datasets.names()
        except Exception:
            empty = False
        demo_on = self.demo.button.disabled or (self.demo.result is not None and not _final(self.demo.result))
        self.layout.display = "" if empty or demo_on else "none"


def _final(result: Any) -> bool:
    try:
        return result.run.status.is_final
    except Exception:
        return True
