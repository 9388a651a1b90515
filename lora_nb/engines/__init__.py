"""Training engines: adapters that turn a TrainingConfig into what a real trainer needs.

>>> import lora_nb, tempfile
>>> ws = lora_nb.Workspace(tempfile.mkdtemp())
>>> sorted(ENGINES)
['ai-toolkit', 'kohya']
>>> get_engine("kohya", ws).check().installed
False
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import EngineError

if TYPE_CHECKING:  # pragma: no cover
    from ..ports import EngineHome
    from .base import Engine

__all__ = ["get_engine", "ENGINES"]

ENGINES = {"kohya": "lora_nb.engines.kohya:KohyaEngine", "ai-toolkit": "lora_nb.engines.aitoolkit:AIToolkitEngine"}


def get_engine(name: str, ws: "EngineHome") -> "Engine":
    """The engine adapter called ``name`` for workspace ``ws``."""
    import importlib

    target = ENGINES.get(name)
    if target is None:
        raise EngineError(f"There is no engine called '{name}'.", fix=f"Use one of: {', '.join(sorted(ENGINES))}.")
    module, _, cls = target.partition(":")
    return getattr(importlib.import_module(module), cls)(ws)
