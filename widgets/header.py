"""SystemHeader: one line of system facts (GPU name and memory, RAM, free disk of the workspace)
from :func:`lora_nb.system.info`, refreshed every few seconds from a daemon thread.

>>> import lora_nb, tempfile
>>> from lora_nb.widgets import SystemHeader
>>> "RAM" in SystemHeader(lora_nb.Workspace(tempfile.mkdtemp()), interval=0).value
True
"""
from __future__ import annotations

import threading
from typing import Any

import ipywidgets as W

from lora_nb import Workspace

from .common import PRESENCE, esc, one_sentence

__all__ = ["SystemHeader"]


class SystemHeader(W.HTML):
    def __init__(self, ws: Workspace | None = None, interval: float = 5.0) -> None:
        import lora_nb

        self.ws = ws if ws is not None else lora_nb.Workspace()
        super().__init__(value="")
        self.add_class("lnb-header")
        self.facts: Any = None
        self._stop = threading.Event()
        self.refresh()
        if interval:
            threading.Thread(target=self._loop, args=(interval,), name="lnb-header", daemon=True).start()

    def _loop(self, interval: float) -> None:
        while not self._stop.wait(interval):
            if PRESENCE.watching():      # a closed tab's kernel stays quiet (and can be culled)
                self.refresh()

    def refresh(self) -> None:
        from lora_nb.system import info, summary

        try:
            self.facts = info(self.ws.root)
            text = summary(self.facts)
        except Exception as e:   # facts are nice to have; never break the dashboard over them
            text = one_sentence(e)
        self.value = (f'<div style="display:flex;gap:12px;align-items:center;padding:4px 8px;background:#263238;color:#eceff1;'
                      f'border-radius:4px;font-size:13px"><b>lora-nb</b><span class="lnb-sysinfo">{esc(text)}</span>'
                      f'<span style="margin-left:auto;opacity:.7">{esc(self.ws.root)}</span></div>')

    def close(self) -> None:
        if hasattr(self, "_stop"):
            self._stop.set()
        super().close()
