"""WD14 auto-tagging on onnxruntime: SmilingWolf's taggers, as a job or in-process.

- :func:`tag_dataset` tags a workspace dataset as a job (the kernel stays free) and writes captions;
- :func:`tag_images` tags a list of images in this process and returns tags with scores;
- :mod:`.registry` knows the WD14 v2/v3 repositories and downloads/caches them with huggingface_hub;
- :mod:`.tiny` builds a small real ONNX model with WD14's signature (tests, the demo).

Preprocessing and tag selection follow kohya sd-scripts' ``finetune/tag_images_by_wd14_tagger.py``
(ENGINES.md A10), so the captions are the ones that script writes for the same model and options.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .options import TagOptions
    from .pipeline import TagResult

__all__ = ["tag_dataset", "tag_images", "TagOptions", "MODELS"]


def __getattr__(name: str) -> Any:
    if name == "tag_dataset":
        from .dataset import tag_dataset

        return tag_dataset
    if name == "tag_images":
        from .pipeline import tag_images

        return tag_images
    if name == "TagOptions":
        from .options import TagOptions

        return TagOptions
    if name == "MODELS":
        from .registry import MODELS

        return MODELS
    raise AttributeError(name)
