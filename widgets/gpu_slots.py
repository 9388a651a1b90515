"""GpuSlotsBox: the GPU slots jobs are pinned to, who holds each, and a field to change them.

Renders ``ws.jobs.slot_usage()``; Apply calls ``ws.jobs.set_gpu_slots("0,1")``, Auto goes back to the
GPUs NVML finds (``set_gpu_slots(None)``). The same as ``lora-nb jobs slots``.

>>> import lora_nb, tempfile
>>> box = GpuSlotsBox(lora_nb.Workspace(tempfile.mkdtemp()))
>>> box.devices.value
'0'
"""
from __future__ import annotations

import html
from typing import Any

import ipywidgets as W

from lora_nb import Workspace

from .common import ErrorBanner, css

__all__ = ["GpuSlotsBox"]


class GpuSlotsBox(W.VBox):
    """The GPU slots, their holders, and a field to set them (one device index per slot)."""

    def __init__(self, ws: Workspace, banner: ErrorBanner | None = None) -> None:
        self.ws = ws
        self.banner = banner if banner is not None else ErrorBanner()
        g = self.banner.guard
        self.devices = css(W.Text(description="GPU slots", placeholder="0,1", continuous_update=False,
                                  tooltip="The device index of every slot, as nvidia-smi numbers them; repeat one (0,0) to share a card.",
                                  style={"description_width": "initial"}, layout=W.Layout(width="220px")), "lnb-slots-devices")
        self.apply_button = css(W.Button(description="Apply", icon="check", tooltip="Pin jobs to these devices"), "lnb-slots-apply")
        self.auto_button = css(W.Button(description="Auto", icon="magic", tooltip="One slot per GPU that NVML finds"), "lnb-slots-auto")
        self.usage = css(W.HTML(""), "lnb-slots-usage")
        self.apply_button.on_click(g(self.apply))
        self.auto_button.on_click(g(self.auto))
        super().__init__([W.HBox([self.devices, self.apply_button, self.auto_button]), self.usage])
        self.add_class("lnb-slots")
        self.refresh(fill=True)

    def apply(self, _: Any = None) -> None:
        """Set the slots from the field (a clear error beside it when the list is not device numbers)."""
        self.ws.jobs.set_gpu_slots(self.devices.value)
        self.banner.info(f"GPU slots: {self.ws.jobs.gpu_slots}.")
        self.refresh(fill=True)

    def auto(self, _: Any = None) -> None:
        self.ws.jobs.set_gpu_slots(None)
        self.banner.info(f"GPU slots: one per GPU found: {self.ws.jobs.gpu_slots}.")
        self.refresh(fill=True)

    def refresh(self, fill: bool = False) -> None:
        """Redraw who holds each slot; ``fill`` also puts the slot list in the field (never while someone types)."""
        rows = self.ws.jobs.slot_usage()
        if fill:
            self.devices.value = ",".join(str(r["device"]) for r in rows)
        chips = []
        for r in rows:
            who = f"{html.escape(r['name'] or '')} ({r['job']})" if r["job"] else "free"
            state = "busy" if r["job"] else "free"
            chips.append(f"<span class='lnb-slot lnb-slot-{state}'>slot {r['slot']} · GPU {r['device']} · {who}</span>")
        self.usage.value = " ".join(chips)
