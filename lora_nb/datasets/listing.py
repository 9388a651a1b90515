"""The image files of a dataset folder, listed once and reused while its folders do not change.

A listing remembers each folder's inode and modification time; adding, removing or
renaming an entry changes the folder's modification time, so one ``stat`` per folder
tells whether the listing still holds. It is kept in memory and in
``<dataset>/.lora-nb/listing.bin`` (a new kernel lists 100,000 images without a scan).
Listings of folders changed within :data:`lora_nb.files.RACY_NS` of the scan, or
holding symlinks (whose targets can change without touching the folder), are not reused.

>>> import tempfile, pathlib
>>> root = pathlib.Path(tempfile.mkdtemp()); (root / "b10.png").touch(); (root / "b2.png").touch()
>>> [pathlib.Path(p).name for p in image_files(str(root))]
['b2.png', 'b10.png']
"""
from __future__ import annotations

import marshal
import os
import re
import threading
import time
from dataclasses import dataclass, field

from ..files import RACY_NS, atomic_write, read_or_none
from .images import IMAGE_EXTS

__all__ = ["image_files", "caption_counts", "natural_key", "forget"]

_DIGITS = re.compile(r"(\d+)")
_cache: dict[str, "_Listing"] = {}
_FILE = os.path.join(".lora-nb", "listing.bin")
_MAGIC = b"LNBLIST1\n"
_lock = threading.Lock()


def natural_key(s: str) -> list:
    """Sort key putting ``img2`` before ``img10`` (case-insensitive)."""
    return [int(t) if t.isdigit() else t.casefold() for t in _DIGITS.split(s)]


@dataclass
class _Listing:
    images: list[str]
    captions: dict[str, int]
    folders: list[tuple[str, int, int]]        # (path, inode, mtime_ns)
    reusable: bool
    natural: list[str] | None = field(default=None)

    def still_valid(self) -> bool:
        for path, ino, mtime in self.folders:
            try:
                st = os.stat(path)
            except OSError:
                return False
            if st.st_ino != ino or st.st_mtime_ns != mtime:
                return False
        return True


# folders trainers write beside the images (ai-toolkit's latent, text-embedding and CLIP-vision caches):
# never part of the dataset
ENGINE_CACHE_DIRS = frozenset({"_latent_cache", "_t_e_cache", "_clip_vision_cache"})


def skipped_dir(name: str) -> bool:
    """A folder inside a dataset that holds no training images: hidden (ours, ``.lora-nb``) or an engine's cache."""
    return name[:1] == "." or name in ENGINE_CACHE_DIRS


def _scan(root: str) -> _Listing:
    racy_after = time.time_ns() - RACY_NS
    images: list[str] = []
    captions = {".txt": 0, ".caption": 0}
    folders: list[tuple[str, int, int]] = []
    reusable = True
    try:    # made before the root is looked at: saving the listing there later leaves the root as it was
        os.mkdir(os.path.join(root, ".lora-nb"))
    except OSError:
        pass
    stack = [root]
    exts = IMAGE_EXTS
    while stack:
        folder = stack.pop()
        st = os.stat(folder)
        folders.append((folder, st.st_ino, st.st_mtime_ns))
        if st.st_mtime_ns >= racy_after:
            reusable = False
        with os.scandir(folder) as it:
            for e in it:
                name = e.name
                if name[0] == ".":
                    continue
                if e.is_symlink():
                    reusable = False
                dot = name.rfind(".")
                ext = name[dot:].lower() if dot > 0 else ""
                if ext in exts:
                    if e.is_file():
                        images.append(e.path)
                elif ext in captions:
                    captions[ext] += 1
                elif e.is_dir(follow_symlinks=False) and name not in ENGINE_CACHE_DIRS:
                    stack.append(e.path)
    return _Listing(images, captions, folders, reusable)


def _load(root: str) -> _Listing | None:
    raw = read_or_none(os.path.join(root, _FILE))
    if not raw or not raw.startswith(_MAGIC):
        return None
    try:
        images, captions, folders, natural = marshal.loads(raw[len(_MAGIC):])
        listing = _Listing(list(images), dict(captions), [tuple(f) for f in folders], True,
                           None if natural is None else list(natural))
        if listing.folders[0][0] != root or (natural is not None and len(natural) != len(images)):
            return None
    except Exception:      # damaged: scan again
        return None
    return listing


def _save(root: str, listing: _Listing) -> None:
    try:
        atomic_write(os.path.join(root, _FILE), _MAGIC + marshal.dumps(
            (listing.images, listing.captions, listing.folders, listing.natural)))
    except OSError:        # a read-only dataset: kept in memory only
        pass


def _get(root: str) -> _Listing:
    with _lock:
        cached = _cache.get(root)
    if cached is None:
        cached = _load(root)
    if cached is not None and cached.still_valid():
        with _lock:
            _cache[root] = cached
        return cached
    listing = _scan(root)
    with _lock:
        if listing.reusable:
            _cache[root] = listing
        else:
            _cache.pop(root, None)
    if listing.reusable:
        _save(root, listing)
    return listing


def image_files(root: str, sort: bool = True) -> list[str]:
    """Paths of the image files under ``root`` (hidden files and folders skipped), a new list each call."""
    listing = _get(root)
    if not sort:
        return list(listing.images)
    if listing.natural is None:
        cut = len(root) + 1
        listing.natural = sorted(listing.images, key=lambda p: natural_key(p[cut:]))
        if listing.reusable:
            _save(root, listing)
    return list(listing.natural)


def caption_counts(root: str) -> dict[str, int]:
    """How many ``.txt`` and ``.caption`` files the dataset holds."""
    return dict(_get(root).captions)


def forget(root: str | None = None) -> None:
    """Drop the listings kept in memory (all of them without ``root``); the files on disk stay."""
    with _lock:
        if root is None:
            _cache.clear()
        else:
            _cache.pop(root, None)
