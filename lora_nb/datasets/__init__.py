"""Datasets: import (bytes, ZIP, folder, URL), browse, thumbnails, the pre-training report.

>>> import lora_nb, tempfile
>>> ws = lora_nb.Workspace(tempfile.mkdtemp())
>>> ds = ws.datasets.create("alice")
>>> ds.images()
[]

See :class:`Datasets` (``ws.datasets``), :class:`Dataset`, :mod:`lora_nb.captions`.
Pillow and numpy load only when an image is looked at.
"""
from __future__ import annotations

from .dataset import Dataset, ImageItem, Subset
from .importer import ImportLimits, ImportResult
from .manager import Datasets

__all__ = ["Datasets", "Dataset", "ImageItem", "Subset", "ImportResult", "ImportLimits", "DatasetReport"]


def __getattr__(name: str):
    if name in ("DatasetReport", "Problem"):
        from . import report

        return getattr(report, name)
    raise AttributeError(f"module 'lora_nb.datasets' has no attribute {name!r}")
