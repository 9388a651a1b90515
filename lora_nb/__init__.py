"""lora-nb: a Jupyter-native LoRA training manager.

>>> import lora_nb, tempfile
>>> ws = lora_nb.Workspace(tempfile.mkdtemp())
>>> ws.jobs.max_concurrent
1

Heavy parts (torch, onnxruntime, PIL, huggingface_hub, pydantic models) load on
first use, so ``import lora_nb`` stays fast.
"""
from __future__ import annotations

import importlib
from typing import Any

from .errors import LoraNbError
from .workspace import Workspace

__version__ = "0.1.0"

_LAZY = {
    "TrainingConfig": "lora_nb.config:TrainingConfig",
    "steps": "lora_nb.config:steps",
    "JobStatus": "lora_nb.progress.events:JobStatus",
    "Progress": "lora_nb.progress.events:Progress",
}
_SUBMODULES = {"errors", "paths", "store", "settings", "workspace", "jobs", "datasets", "captions", "tagging",
               "config", "engines", "lora", "models", "system", "demo", "tasks", "cli"}

__all__ = ["Workspace", "LoraNbError", "__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, _, attr = _LAZY[name].partition(":")
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"lora_nb.{name}")
    raise AttributeError(f"module 'lora_nb' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | _SUBMODULES)
