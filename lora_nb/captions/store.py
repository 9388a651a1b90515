"""The caption file store of one dataset: where each image's caption lives, reading and writing one caption.

A caption is ``<image stem><ext>`` beside its image (``.txt`` unless the dataset uses ``.caption``),
UTF-8. One caption is written atomically (temporary file + rename). The store also owns the
dataset's undo journal (:mod:`lora_nb.captions.journal`) and caption cache
(:mod:`lora_nb.captions.cache`), both kept in the dataset's hidden metadata folder.

What it needs from a dataset is the small :class:`CaptionFolder` protocol, so this layer never
imports the datasets package.

>>> import tempfile, pathlib
>>> class Folder:                      # any object with these members will do
...     name, caption_extension, caption_separator = "demo", ".txt", None
...     path = pathlib.Path(tempfile.mkdtemp()); meta_dir = path / ".lora-nb"
...     def resolve_image(self, ref): return self.path / ref
...     def rel(self, p): return str(p.relative_to(self.path))
...     def image_files(self, sort=True): return sorted(str(p) for p in self.path.glob("*.png"))
>>> f = Folder(); (f.path / "a.png").write_bytes(b"")
0
>>> store = CaptionStore(f); store.set("a.png", "1girl, smile"); store.get("a.png")
'1girl, smile'
>>> store.path_for("a.png").name
'a.txt'
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol, Union

from ..errors import InvalidInput, NotFound
from ..files import atomic_write, read_or_none
from .cache import CaptionCache, cache_for
from .journal import UndoLog
from .text import decode_caption, encode_caption

__all__ = ["CaptionFolder", "CaptionStore", "ImageRef"]

ImageRef = Union[str, os.PathLike, Any]   # a path (absolute or relative to the dataset) or an ImageItem


class CaptionFolder(Protocol):
    """What the caption store needs from a dataset (``lora_nb.datasets.Dataset`` is one)."""

    name: str
    path: Path

    @property
    def meta_dir(self) -> Path: ...

    @property
    def caption_extension(self) -> str: ...

    @property
    def caption_separator(self) -> str | None: ...

    def resolve_image(self, image: ImageRef) -> Path: ...

    def rel(self, path: Path) -> str: ...

    def image_files(self, sort: bool = True) -> list[str]: ...


class CaptionStore:
    """Caption files of one :class:`CaptionFolder`: paths, one-caption reads and writes, journal and cache."""

    def __init__(self, folder: CaptionFolder) -> None:
        self.folder = folder

    @property
    def extension(self) -> str:
        return self.folder.caption_extension

    def path_for(self, image: ImageRef) -> Path:
        """The caption file of an image (which may not exist yet)."""
        return Path(self.cap_path(os.fspath(self.folder.resolve_image(image))))

    def cap_path(self, image_file: str) -> str:
        return os.path.splitext(image_file)[0] + self.extension

    def cap_paths(self, image_files: list[str]) -> list[str]:
        """Caption paths of many images (an image name always has an extension: cut at its last dot)."""
        ext = self.extension
        return [f[:f.rfind(".")] + ext for f in image_files]

    def image_file(self, image: ImageRef) -> str:
        return os.fspath(self.folder.resolve_image(image))

    def select(self, selection: Any, sort: bool = True) -> list[str]:
        """Image files of a selection (None: every image; one ref; or a list of refs)."""
        if selection is None:
            return self.folder.image_files(sort=sort)
        if isinstance(selection, (str, os.PathLike)) or hasattr(selection, "caption_path"):
            selection = [selection]
        return [self.image_file(s) for s in selection]

    # -- journal and cache -------------------------------------------------------------
    def undo_log(self) -> UndoLog:
        return UndoLog(self.folder.meta_dir / "undo", self.folder.path)

    def recovered(self) -> UndoLog:
        """The undo log, after finishing any bulk edit whose process died while writing."""
        log = self.undo_log()
        log.recover()
        return log

    def cache(self) -> CaptionCache:
        return cache_for(self.folder.meta_dir / "caption-cache.bin", self.folder.path)

    # -- one caption -----------------------------------------------------------------
    def get(self, image: ImageRef, default: str | None = None) -> str | None:
        """The caption text (decoded tolerantly, line ends normalised), or ``default`` when there is none."""
        data = read_or_none(self.path_for(image))
        return default if data is None else decode_caption(data)

    def set(self, image: ImageRef, text: str) -> None:
        """Write one caption atomically as UTF-8 (keeping a trailing newline if the old file had one)."""
        if not isinstance(text, str):
            raise InvalidInput(f"A caption must be text, not {type(text).__name__}.", fix="Pass a string.")
        path = self.path_for(image)
        img = self.folder.resolve_image(image)
        if not img.exists():
            raise NotFound(f"There is no image {self.folder.rel(img)!r} in dataset '{self.folder.name}'.",
                           fix="Use a path from ds.images().")
        old = read_or_none(path)
        atomic_write(path, encode_caption(text, newline=bool(old and old.endswith(b"\n"))))
