"""AutostopBox: "Stop this instance when the queue drains" (Vast.ai), its grace period and what it is doing.

The checkbox and the grace call :func:`lora_nb.jobs.autostop.configure` (the same as ``lora-nb jobs autostop
--on/--off --grace MIN``). Away from a Vast.ai instance (no ``CONTAINER_ID`` and no ``vast_instance_id``
setting) the controls are disabled and say why.

>>> import lora_nb, tempfile
>>> box = AutostopBox(lora_nb.Workspace(tempfile.mkdtemp()), env={})
>>> box.enabled.value, box.enabled.disabled
(False, True)
"""
from __future__ import annotations

import html
import os
import time
from typing import Mapping

import ipywidgets as W

from lora_nb import Workspace
from lora_nb.jobs.autostop import configure, status
from lora_nb.jobs.cost import configured_instance

from .common import ErrorBanner, css

__all__ = ["AutostopBox"]


class AutostopBox(W.HBox):
    """The auto-stop checkbox, the grace period in minutes, and the current state in one line."""

    def __init__(self, ws: Workspace, banner: ErrorBanner | None = None, env: Mapping[str, str] | None = None) -> None:
        self.ws = ws
        self.env = os.environ if env is None else env
        self.banner = banner if banner is not None else ErrorBanner()
        g = self.banner.guard
        self.enabled = css(W.Checkbox(description="Stop this instance when the queue drains", indent=False,
                                      tooltip="After the last job ends and nothing is queued for the grace period, stop this "
                                              "Vast.ai instance through the Vast API (its disk is kept and still billed)."),
                           "lnb-autostop-enabled")
        self.grace = css(W.BoundedFloatText(description="grace (min)", min=0, max=1440, step=1, continuous_update=False,
                                            style={"description_width": "initial"}, layout=W.Layout(width="150px")), "lnb-autostop-grace")
        self.state = css(W.HTML(""), "lnb-autostop-state")
        self._updating = False
        super().__init__([self.enabled, self.grace, self.state])
        self.add_class("lnb-autostop")
        self.refresh()
        self.enabled.observe(lambda ch: g(self._apply)(), names="value")
        self.grace.observe(lambda ch: g(self._apply)(), names="value")

    def _apply(self) -> None:
        if self._updating:
            return
        configure(self.ws, bool(self.enabled.value), float(self.grace.value) * 60)
        self.refresh()

    def refresh(self) -> None:
        """Redraw from the settings and the auto-stop row (a database read; no API call)."""
        st = status(self.ws)
        on_vast = configured_instance(self.ws, self.env) is not None
        self._updating = True
        try:
            self.enabled.value = bool(st["enabled"])
            self.grace.value = round(st["grace_seconds"] / 60, 2)
        finally:
            self._updating = False
        self.enabled.disabled = self.grace.disabled = not on_vast and not st["enabled"]
        if not on_vast and not st["enabled"]:
            text = "not a Vast.ai instance (no CONTAINER_ID): nothing to stop"
        elif st["state"] == "armed" and st["act_at"]:
            text = f"armed: stops at {time.strftime('%H:%M:%S', time.localtime(st['act_at']))} unless a job is submitted"
        else:
            text = st["message"] or st["state"]
        self.state.value = f"<span class='lnb-autostop-{html.escape(st['state'])}'>{html.escape(text)}</span>"
