"""ExecutorBox: where new jobs run (this machine or a Ray cluster), how Ray jobs get their files, and a way to change it.

Apply calls ``ws.jobs.set_executor(address, files=...)`` (the same as ``lora-nb jobs executor --set ADDRESS
--files shared|ship``) off the kernel's thread, since the cluster is asked whether it answers; "This machine"
goes back to the local supervisor. Jobs already submitted keep the executor they were submitted with.

>>> import lora_nb, tempfile
>>> box = ExecutorBox(lora_nb.Workspace(tempfile.mkdtemp()))
>>> box.address.value, box.files.disabled, box.local_button.disabled
('', True, True)
"""
from __future__ import annotations

import html
from typing import Any

import ipywidgets as W

from lora_nb import Workspace

from .common import ErrorBanner, Runner, chip, css

__all__ = ["ExecutorBox"]

_FILES = [("shared: every node sees the workspace", "shared"), ("ship: send inputs, fetch outputs", "ship")]


class ExecutorBox(W.VBox):
    """The executor line of the Jobs panel: a chip saying where jobs run, an address field, files mode, Apply."""

    def __init__(self, ws: Workspace, banner: ErrorBanner | None = None) -> None:
        self.ws = ws
        self.banner = banner if banner is not None else ErrorBanner()
        self.runner = Runner(self.banner, "lnb-executor")
        g = self.banner.guard
        self.state = css(W.HTML(""), "lnb-executor-state")
        self.address = css(W.Text(description="Ray cluster", placeholder="ray://HEAD-IP or http://HEAD-IP:8265",
                                  tooltip="The head node's address; its dashboard (Jobs API, port 8265) must be reachable from here.",
                                  style={"description_width": "initial"}, layout=W.Layout(width="330px")), "lnb-executor-address")
        self.files = css(W.Dropdown(options=_FILES, value="shared", description="files",
                                    tooltip="shared: the workspace is at the same path on every node; ship: inputs travel "
                                            "with each job (under 512 MiB), outputs come back checked by sha256.",
                                    style={"description_width": "initial"}, layout=W.Layout(width="300px")), "lnb-executor-files")
        self.apply_button = css(W.Button(description="Use cluster", icon="cloud", disabled=True,
                                         tooltip="type a Ray cluster's address first"), "lnb-executor-apply")
        self.local_button = css(W.Button(description="This machine", icon="desktop",
                                         tooltip="Run new jobs here, with this machine's supervisor"), "lnb-executor-local")
        self.apply_button.on_click(g(self.apply))
        self.local_button.on_click(g(self.use_local))
        self.address.observe(lambda ch: self._controls(), names="value")
        super().__init__([self.state, W.HBox([self.address, self.files, self.apply_button, self.local_button])])
        self.add_class("lnb-executor")
        self._busy = False
        self.refresh()

    def apply(self, _: Any = None) -> None:
        """Send new jobs to the cluster in the address field (checked off the kernel's thread first)."""
        address, files = self.address.value.strip(), self.files.value
        self._busy = True
        self.state.value = chip(f"checking {address}…", "run", "⟳")
        self._controls()

        def check_and_set() -> str:
            try:
                return self.ws.jobs.set_executor(address, files=files)
            finally:
                self._busy = False
                self.refresh()

        self.runner.submit(check_and_set, on_done=lambda executor: self.banner.info(
            f"New jobs run as Ray Jobs on {executor} (files: {files})."))

    def use_local(self, _: Any = None) -> None:
        """Run new jobs on this machine again."""
        self.ws.jobs.set_executor("local")
        self.banner.info("New jobs run on this machine.")
        self.refresh()

    def _controls(self) -> None:
        typed = bool(self.address.value.strip())
        remote = self.ws.jobs.executor != "local"
        self.apply_button.disabled = self._busy or not typed
        self.apply_button.tooltip = ("checking the cluster…" if self._busy else
                                     "Send new jobs to this Ray cluster" if typed else "type a Ray cluster's address first")
        self.files.disabled = self._busy or not (typed or remote)
        self.local_button.disabled = self._busy or not remote
        self.local_button.tooltip = "Run new jobs here, with this machine's supervisor" if remote else "jobs already run here"

    def refresh(self) -> None:
        """Redraw from the settings (a database read; the cluster is not asked)."""
        if self._busy:
            return
        executor, files = self.ws.jobs.executor, self.ws.jobs.ray_files
        if executor == "local":
            self.state.value = chip("jobs run on this machine", "idle", "🖥") + \
                "<span class='lnb-muted'> &nbsp;or send them to a Ray cluster (docs/scale.md)</span>"
        else:
            self.state.value = chip(f"jobs run on the Ray cluster at {executor}", "run", "☁") + \
                f"<span class='lnb-muted'> &nbsp;files: {html.escape(files)}</span>"
            if not self.address.value:
                self.address.value = executor
            self.files.value = files
        self._controls()
