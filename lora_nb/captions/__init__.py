"""Captions: the caption files of a dataset and everything done to them.

One module each: :mod:`~lora_nb.captions.text` (parsing and encoding caption text),
:mod:`~lora_nb.captions.store` (where captions live; one caption read and written),
:mod:`~lora_nb.captions.cache` (the persisted caption cache behind statistics and bulk edits),
:mod:`~lora_nb.captions.journal` (the undo journal that makes bulk edits all-or-nothing),
:mod:`~lora_nb.captions.bulk` (bulk edits and the one-by-one writer) and
:mod:`~lora_nb.captions.api` with :class:`Captions`, the public face (``ds.captions``).

This package sits below ``lora_nb.datasets``: it needs only the small
:class:`~lora_nb.captions.store.CaptionFolder` protocol from a dataset.
"""
from .api import KEEP_SEPARATOR, Captions
from .bulk import BulkWriter, CaptionChange, EditResult

__all__ = ["Captions", "EditResult", "CaptionChange", "BulkWriter", "KEEP_SEPARATOR"]
