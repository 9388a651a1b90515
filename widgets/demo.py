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
"""
from __future__ import annotations

from typing import Any, Callable

import ipywidgets as W

from lora_nb import Workspace

from .common import ErrorBanner, JobLine, Runner, css, esc

__all__ = ["DemoBar"]


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
        self.about = W.HTML("<b>New here?</b> <span style='color:#555'>Try the whole flow on this machine: a small dataset of "
                            "coloured shapes, tagged by a tiny local tagger, then a CPU stand-in of a training run (progress, "
                            "loss, checkpoints, a LoRA file with random weights). No GPU, no download.</span>",
                            layout=W.Layout(flex="1"))
        self.status = css(W.HTML(""), "lnb-demo-status")
        self.line = css(JobLine(), "lnb-demo-progress")
        self.button.on_click(self.start)
        super().__init__([W.HBox([self.button, self.about], layout=W.Layout(align_items="center")), self.banner, self.status,
                          self.line], layout=W.Layout(padding="4px 8px", border="1px solid #cfd8dc", margin="4px 0"))
        self.add_class("lnb-demo")

    def _say(self, text: str) -> None:
        self.status.value = f'<span style="color:#1b5e20">{esc(text)}</span>'

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
