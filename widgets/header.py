"""SystemHeader: one compact line of system facts (GPU name and VRAM, RAM, free disk of the workspace, from
:func:`lora_nb.system.info`) and the running job, as status chips, refreshed every few seconds from a daemon thread.
On a Vast.ai instance a cost chip adds the price per hour, spend so far and the queue's estimated cost
(:func:`lora_nb.jobs.cost.cost_report`, read through the Vast API from the same thread, at most once a minute).

>>> import lora_nb, tempfile
>>> from lora_nb.widgets import SystemHeader
>>> "RAM" in SystemHeader(lora_nb.Workspace(tempfile.mkdtemp()), interval=0).value
True
"""
from __future__ import annotations

import threading
import time
from typing import Any

import ipywidgets as W

from lora_nb import Workspace

from .common import PRESENCE, chip, esc, one_sentence

__all__ = ["SystemHeader"]

COST_INTERVAL = 60.0   # seconds between Vast API reads for the cost chip
FIRST_WAIT = 3.0       # at most this long after the first paint before the first full read (see _loop)


class SystemHeader(W.HTML):
    """The compact header: GPU name and VRAM in use, RAM, free disk of the workspace, and the running job(s) as chips.

    With ``interval`` the facts are refreshed every ``interval`` seconds from a daemon thread (the first time at
    once, in that thread: the page shows RAM and disk without waiting for nvidia-smi); ``interval=0`` refreshes
    once, now."""

    def __init__(self, ws: Workspace | None = None, interval: float = 5.0) -> None:
        import lora_nb

        self.ws = ws if ws is not None else lora_nb.Workspace()
        super().__init__(value="")
        self.add_class("lnb-header")
        self.facts: Any = None
        self.cost_chip = ""            # price, spend and queue cost on Vast.ai ("" elsewhere)
        self._cost_at = float("-inf")
        self._stop = threading.Event()
        if interval:
            self.refresh(gpu=False)
            threading.Thread(target=self._loop, args=(interval,), name="lnb-header", daemon=True).start()
        else:
            self.refresh()

    def _loop(self, interval: float) -> None:
        # the first full read (nvidia-smi, the job manager's imports) waits until a browser has drawn the page (its first
        # presence ping), at most FIRST_WAIT seconds: done at once it competes with drawing the first page for the kernel
        deadline = time.monotonic() + FIRST_WAIT
        while PRESENCE.timeout is None and time.monotonic() < deadline:
            if self._stop.wait(0.05):
                return
        self.refresh()
        while not self._stop.wait(interval):
            if PRESENCE.watching():      # a closed tab's kernel stays quiet (and can be culled)
                self.refresh()

    def refresh(self, gpu: bool = True) -> None:
        """Re-read the facts (``gpu=False``: skip nvidia-smi, keep the last GPU line) and redraw."""
        from lora_nb.system import info

        parts: list[str] = []
        try:
            if gpu:
                self.facts = info(self.ws.root)
            else:
                facts = _quick_facts(self.ws.root)
                facts["gpus"] = (self.facts or {}).get("gpus", None)
                self.facts = facts
            parts = _fact_chips(self.facts)
            text = " · ".join(p for p, _ in parts)
        except Exception as e:   # facts are nice to have; never break the dashboard over them
            text = one_sentence(e)
        try:
            # the first, quick paint (kernel thread) does not load the job manager and its models: the thread does, at once
            running = (None if not gpu and "jobs" not in vars(self.ws)
                       else self.ws.jobs.snapshots(status=["starting", "running"]))
        except Exception:
            running = []
        jobs = (chip("jobs: checking…", "idle", "■") if running is None
                else "".join(chip(_job_text(s), "run", "▶") for s in running[:2]) or chip("no job running", "idle", "■"))
        if gpu:                       # off the kernel thread (the refresh thread), like nvidia-smi
            self._refresh_cost()
        jobs += self.cost_chip
        facts_html = " ".join(chip(p, k) for p, k in parts) if parts else esc(text)
        self.value = (f'<div class="lnb-bar"><span class="lnb-brand">lora-nb</span>'
                      f'<span class="lnb-sysinfo" title="{esc(text)}">{facts_html}</span>'
                      f'<span class="lnb-running">{jobs}</span>'
                      f'<span class="lnb-root" title="workspace">{esc(self.ws.root)}</span></div>')

    def _refresh_cost(self) -> None:
        """Re-read the Vast cost line if a minute has passed; nothing at all away from Vast.ai."""
        from lora_nb.jobs.cost import configured_instance, cost_report

        now = time.monotonic()
        if now - self._cost_at < COST_INTERVAL:
            return
        self._cost_at = now
        try:
            if configured_instance(self.ws) is None:
                self.cost_chip = ""
                return
            report = cost_report(self.ws)
        except Exception as e:      # nice to have: never break the header over it
            self.cost_chip = chip(one_sentence(e), "warn", "$")
            return
        self.cost_chip = "" if report is None else chip(report.summary(), "warn" if report.error else "idle", "$")

    def close(self) -> None:
        if hasattr(self, "_stop"):
            self._stop.set()
        super().close()


def _quick_facts(root: Any) -> dict[str, Any]:
    import os
    import shutil
    from pathlib import Path

    import psutil

    vm = psutil.virtual_memory()
    p = Path(root)
    while not p.exists() and p != p.parent:
        p = p.parent
    du = shutil.disk_usage(p)
    return {"ram_used": vm.total - vm.available, "ram_total": vm.total, "disk_free": du.free, "disk_total": du.total,
            "cpus": os.cpu_count()}


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB"


def _fact_chips(f: dict[str, Any]) -> list[tuple[str, str]]:
    """``(text, kind)`` for the GPU(s) (VRAM in use), RAM and free disk; a nearly full VRAM or disk is a warning."""
    out: list[tuple[str, str]] = []
    gpus = f.get("gpus")
    if gpus is None:
        out.append(("GPU: checking…", "idle"))
    elif not gpus:
        out.append(("no GPU", "idle"))
    for g in gpus or []:
        used, total = g["memory_used"] / 1024, g["memory_total"] / 1024
        out.append((f"{g['name']} VRAM {used:.1f}/{total:.1f} GiB", "warn" if total and used / total > 0.9 else "ok"))
    out.append((f"RAM {_gib(f['ram_used'])}/{_gib(f['ram_total'])}", "idle"))
    low = f["disk_free"] < 10 * 2**30
    out.append((f"disk {_gib(f['disk_free'])} free", "warn" if low else "idle"))
    return out


def _job_text(snap: Any) -> str:
    p = snap.progress
    step, total = getattr(p, "step", None), getattr(p, "total_steps", None)
    return f"{snap.name} {step}/{total}" if step and total else f"{snap.name} {snap.status.value}"
