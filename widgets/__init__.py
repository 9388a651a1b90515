"""ipywidgets panels over the lora_nb API (installed as ``lora_nb.widgets``). UI only.

Each panel works on its own (``DatasetPanel(ws)``, ``TrainingPanel(ws)`` ...); ``Dashboard()``
shows them all in tabs under a header of system facts.
"""
from __future__ import annotations

from typing import Any

__all__ = ["Dashboard", "DatasetPanel", "TaggingPanel", "CaptionGrid", "TrainingPanel", "JobsPanel", "JobMonitor",
           "LoraPanel", "ModelsPanel", "SystemHeader"]

_WHERE = {"Dashboard": ".dashboard", "DatasetPanel": ".datasets", "TaggingPanel": ".tagging", "CaptionGrid": ".captions",
          "TrainingPanel": ".training", "JobsPanel": ".jobs_panel", "JobMonitor": ".job_monitor", "LoraPanel": ".lora",
          "ModelsPanel": ".models", "SystemHeader": ".header"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name], __name__), name)
    raise AttributeError(name)
