"""The model library: local base models (family detected from headers), starters, downloads as jobs.

>>> from lora_nb.models import STARTERS
>>> "flux" in STARTERS
True
"""
from __future__ import annotations

from .library import ModelEntry, ModelLibrary
from .starters import STARTERS, Starter

__all__ = ["ModelLibrary", "ModelEntry", "STARTERS", "Starter"]
