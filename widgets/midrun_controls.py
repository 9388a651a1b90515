"""MidRunControls: "Save now" and "Sample now" for a running training job, where its engine offers them.

Enabled only while the job runs and its engine polls a request (ai-toolkit's diffusion_trainer); otherwise
disabled with the reason as tooltip and as text beside them (sd-scripts has no such channel). Absent for jobs
that are not training runs. A click sets the flag off the kernel thread (``job.request_save()`` /
``job.request_sample()``); the checkpoint or samples then appear in the monitor's files like any other.

>>> import lora_nb, sys, tempfile
>>> ws = lora_nb.Workspace(tempfile.mkdtemp())
>>> job = ws.jobs.submit_command([sys.executable, "-c", "pass"], name="x"); _ = job.wait(30)
>>> c = MidRunControls(); c.update(job, job.snapshot())
>>> c.layout.display, c.save_button.disabled
('none', True)
"""
from __future__ import annotations

from typing import Any, Callable

import ipywidgets as W

from .common import Runner, css, esc

__all__ = ["MidRunControls"]


class MidRunControls(W.HBox):
    """Two buttons and the reason they are off; ``update(job, snap)`` from the monitor's frame."""

    def __init__(self, runner: Runner | None = None, on_info: Callable[[str], Any] | None = None) -> None:
        self.runner = runner or Runner(None, "lnb-midrun")
        self.on_info = on_info
        self.job: Any = None
        self.save_button = css(W.Button(description="Save now", icon="save", disabled=True), "lnb-job-save-now")
        self.sample_button = css(W.Button(description="Sample now", icon="image", disabled=True), "lnb-job-sample-now")
        self.reason = css(W.HTML(""), "lnb-job-midrun-reason")
        self.save_button.on_click(lambda _: self.request("save"))
        self.sample_button.on_click(lambda _: self.request("sample"))
        super().__init__([self.save_button, self.sample_button, self.reason], layout=W.Layout(display="none"))
        self.add_class("lnb-job-midrun")

    def update(self, job: Any, snap: Any) -> None:
        """Show the controls of ``job`` as of ``snap`` (no database read of its own)."""
        from lora_nb.jobs.control import reasons

        self.job = job
        if snap.kind != "training":
            self.layout.display = "none"
            self.save_button.disabled = self.sample_button.disabled = True
            return
        self.layout.display = ""
        why = reasons(snap)
        for button, action in ((self.save_button, "save"), (self.sample_button, "sample")):
            button.disabled = why[action] is not None
            button.tooltip = why[action] or ("Save a checkpoint after the current step" if action == "save"
                                             else "Make the sample images after the current step")
        shown = [w for w in dict.fromkeys(why.values()) if w and not w.startswith("The job is ")]
        self.reason.value = "".join(f'<span style="color:#777;font-size:12px">{esc(w)}</span> ' for w in shown)

    def request(self, action: str) -> None:
        """Ask the job (in the background); a refusal goes to the monitor's banner as one sentence."""
        job = self.job
        if job is None:
            return
        button = self.save_button if action == "save" else self.sample_button
        button.disabled = True                               # until the next frame: one request per click

        def done(_: Any) -> None:
            if self.on_info is not None:
                self.on_info("Asked the trainer to save a checkpoint after its current step." if action == "save"
                             else "Asked the trainer to make its samples after its current step.")
        self.runner.submit(job.request_save if action == "save" else job.request_sample, on_done=done)
