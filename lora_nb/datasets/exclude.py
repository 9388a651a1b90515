"""Moving images out of a dataset without deleting them: the ``.lora-nb/excluded`` quarantine.

An excluded image (with its caption files) moves to ``<dataset>/.lora-nb/excluded/<its path in the
dataset>``. The folder is hidden, so lora-nb's listing and the trainers skip it, and nothing is
deleted: :func:`restore` puts the files back where they were.

>>> import lora_nb, tempfile, io
>>> from PIL import Image
>>> ws = lora_nb.Workspace(tempfile.mkdtemp())
>>> ds = ws.datasets.create("demo")
>>> buf = io.BytesIO(); Image.new("RGB", (8, 8)).save(buf, "PNG")
>>> _ = ds.add_images([("a.png", buf.getvalue()), ("a.txt", b"cat"), ("b.png", buf.getvalue())])
>>> [p.name for p in ds.exclude_images(["a.png"])], len(ds)
(['a.png'], 1)
>>> [p.name for p in ds.excluded()], [p.name for p in ds.restore_excluded()], len(ds)
(['a.png'], ['a.png'], 2)
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

from ..errors import AlreadyExists, NotFound
from .images import CAPTION_EXTS, IMAGE_EXTS

if TYPE_CHECKING:  # pragma: no cover
    from .dataset import Dataset, ImageRef

__all__ = ["EXCLUDED_DIR", "exclude", "excluded", "restore"]

EXCLUDED_DIR = "excluded"     # inside the dataset's .lora-nb folder


def _root(ds: "Dataset") -> Path:
    return ds.meta_dir / EXCLUDED_DIR


def _companions(image: Path) -> list[Path]:
    return [image.with_name(image.stem + ext) for ext in CAPTION_EXTS]


def _free(target: Path) -> Path:
    if not target.exists():
        return target
    n = 2
    while True:
        cand = target.with_name(f"{target.stem}_{n}{target.suffix}")
        if not cand.exists() and not any(c.exists() for c in _companions(cand)):
            return cand
        n += 1


def exclude(ds: "Dataset", images: Sequence["ImageRef"]) -> list[Path]:
    """Move ``images`` and their caption files into the quarantine; returns where each image went.

    A name already in the quarantine gets ``_2``, ``_3``...; an image that is gone raises NotFound
    before anything moves."""
    paths = [ds.resolve_image(i) for i in images]
    gone = [p for p in paths if not (p.exists() or p.is_symlink())]
    if gone:
        raise NotFound(f"{gone[0].name} is not in dataset '{ds.name}' any more.", fix="Check the dataset again (ds.report()).")
    moved: list[Path] = []
    for p in dict.fromkeys(paths):
        target = _free(_root(ds) / ds.rel(p))
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(p, target)
        for cap, dest in zip(_companions(p), _companions(target)):
            if cap.exists():
                os.replace(cap, dest)
        moved.append(target)
    return moved


def excluded(ds: "Dataset") -> list[Path]:
    """Every image in the quarantine, sorted."""
    root = _root(ds)
    if not root.is_dir():
        return []
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTS)


def restore(ds: "Dataset", images: Iterable[Path | str] | None = None) -> list[Path]:
    """Move quarantined images (all, or those given as paths in the quarantine or relative to it) back to
    where they were; returns their paths in the dataset. Refuses, moving nothing, when one would overwrite a file."""
    root = _root(ds)
    chosen = excluded(ds) if images is None else [p if Path(p).is_absolute() else root / p for p in map(Path, images)]
    plan = []
    for q in chosen:
        if not q.is_file() or not q.resolve().is_relative_to(root.resolve()):
            raise NotFound(f"{q} is not an excluded image of dataset '{ds.name}'.", fix="Use a path from ds.excluded().")
        back = ds.path / q.relative_to(root)
        if back.exists():
            raise AlreadyExists(f"{ds.rel(back)} exists again in dataset '{ds.name}', so the excluded copy cannot go back.",
                                fix="Rename or remove the file in the dataset first.")
        plan.append((q, back))
    for q, back in plan:
        back.parent.mkdir(parents=True, exist_ok=True)
        os.replace(q, back)
        for cap, dest in zip(_companions(q), _companions(back)):
            if cap.exists() and not dest.exists():
                os.replace(cap, dest)
    return [b for _, b in plan]
