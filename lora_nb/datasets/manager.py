"""``ws.datasets``: create, list, rename, delete and import datasets.

Every import lands in a staging folder in the workspace's ``.tmp`` and is renamed
into place, so a failed import leaves nothing behind.

>>> import lora_nb, tempfile
>>> ws = lora_nb.Workspace(tempfile.mkdtemp())
>>> _ = ws.datasets.create("alice")
>>> [d.name for d in ws.datasets.list()]
['alice']
>>> ws.datasets.rename("alice", "alice_v2").name
'alice_v2'
"""
from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import IO, TYPE_CHECKING, Callable, Union

from ..errors import AlreadyExists, InvalidInput, InvalidName, NotFound
from ..paths import safe_name
from .dataset import Dataset
from .importer import (ImportLimits, ImportResult, commit_into, commit_new, folder_entries, new_staging, open_zip,
                       sanitize_part, stage, zip_entries)

if TYPE_CHECKING:  # pragma: no cover
    from ..ports import DatasetsHome, JobHandle

__all__ = ["Datasets"]

DEFAULT_MAX_DOWNLOAD = 8 * 1024**3
Progress = Callable[[int, int], None]


class Datasets:
    """The datasets of a workspace (folders under ``<workspace>/datasets``)."""

    def __init__(self, ws: "DatasetsHome") -> None:
        self.ws = ws

    # -- basics ----------------------------------------------------------------------
    def _path(self, name: str) -> Path:
        return self.ws.datasets_dir / safe_name(name, "dataset name")

    def names(self) -> list[str]:
        return sorted((p.name for p in self.ws.datasets_dir.iterdir() if p.is_dir() and not p.name.startswith(".")),
                      key=str.casefold)

    def list(self) -> list[Dataset]:
        """Every dataset, by name."""
        return [Dataset(self.ws, n) for n in self.names()]

    def __contains__(self, name: object) -> bool:
        try:
            return isinstance(name, str) and self._path(name).is_dir()
        except InvalidName:
            return False

    def get(self, name: str) -> Dataset:
        path = self._path(name)
        if not path.is_dir():
            known = ", ".join(self.names()[:10]) or "none yet"
            raise NotFound(f"There is no dataset named '{name}' (datasets: {known}).",
                           fix="Create it with ws.datasets.create(name) or import one.")
        return Dataset(self.ws, name)

    def create(self, name: str) -> Dataset:
        """A new, empty dataset."""
        path = self._path(name)
        try:
            path.mkdir()
        except FileExistsError:
            raise AlreadyExists(f"A dataset named '{name}' already exists.", fix="Pick another name, or use ws.datasets.get(name).") from None
        return Dataset(self.ws, name)

    def delete(self, name: str) -> None:
        """Delete a dataset with its captions and caches (linked source images are not touched)."""
        path = self.get(name).path
        trash = self.ws.tmp_dir / f"deleted-{uuid.uuid4().hex[:12]}"
        os.rename(path, trash)  # instant and atomic; the slow removal happens out of sight
        shutil.rmtree(trash, ignore_errors=True)

    def rename(self, old: str, new: str) -> Dataset:
        src = self.get(old).path
        dst = self._path(new)
        if dst.exists() and dst != src:
            raise AlreadyExists(f"A dataset named '{new}' already exists.", fix="Pick another name.")
        os.rename(src, dst)
        return Dataset(self.ws, new)

    # -- imports ---------------------------------------------------------------------
    def _import(self, entries_fn: Callable[[], list], name: str, merge: bool, link: bool,
                limits: ImportLimits, progress: Progress | None) -> ImportResult:
        dest = self._path(name)
        existing = dest.is_dir()
        if existing and not merge:
            raise AlreadyExists(f"A dataset named '{name}' already exists.",
                                fix="Pick another name, or pass merge=True to add the images to it.")
        staging = new_staging(self.ws)
        try:
            entries = entries_fn()
            target = staging / "data"
            target.mkdir()
            caption_ext = Dataset(self.ws, name).caption_extension if existing else None
            result, meta = stage(entries, target, caption_ext=caption_ext, existing=dest if existing else None,
                                 link=link, limits=limits, progress=progress)
            if existing:
                commit_into(target, dest, result, meta)
            else:
                commit_new(target, dest, meta)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        result.dataset = Dataset(self.ws, name)
        return result

    def import_zip(self, source: Union[str, os.PathLike, bytes, IO[bytes]], name: str, merge: bool = False,
                   limits: ImportLimits | None = None, progress: Progress | None = None, **limit_overrides: int) -> ImportResult:
        """Import a ZIP (a path, bytes or a binary file object) as dataset ``name``.

        Folders inside are kept (kohya ``10_concept`` subsets); one wrapper folder around
        everything is dropped. Hostile archives (``..``, absolute paths, links, bombs, too
        many entries) are refused whole; broken images and other files are skipped and listed.
        ``limit_overrides``: any :class:`ImportLimits` field, e.g. ``max_total_bytes=...``.
        """
        lim = _limits(limits, limit_overrides)
        zf = open_zip(source)
        with zf:
            return self._import(lambda: zip_entries(zf, lim), name, merge, False, lim, progress)

    def import_folder(self, path: Union[str, os.PathLike], name: str, link: bool = False, merge: bool = False,
                      progress: Progress | None = None) -> ImportResult:
        """Import a folder (recursively). ``link=True`` links images instead of copying them (captions are copied)."""
        folder = Path(path).expanduser()
        lim = ImportLimits(max_entries=10**9, max_total_bytes=2**62)
        return self._import(lambda: folder_entries(folder), name, merge, link, lim, progress)

    def import_url(self, url: str, name: str, max_bytes: int = DEFAULT_MAX_DOWNLOAD, progress: Callable[[int, int | None], None] | None = None,
                   merge: bool = False, timeout: float = 60.0, **limit_overrides: int) -> ImportResult:
        """Download a ZIP or a single image over plain HTTP(S) (streamed, at most ``max_bytes``) and import it.

        This runs in the calling thread; panels use :meth:`import_url_job` instead.
        """
        from .download import download
        from .images import BrokenImage, inspect_image

        self._path(name)
        if name in self and not merge:
            raise AlreadyExists(f"A dataset named '{name}' already exists.", fix="Pick another name, or pass merge=True.")
        tmp = self.ws.tmp_dir / f"download-{uuid.uuid4().hex[:12]}"
        try:
            filename = download(url, tmp, max_bytes, progress, timeout)
            with open(tmp, "rb") as f:
                head = f.read(4)
            if head[:2] == b"PK":
                return self.import_zip(tmp, name, merge=merge, **limit_overrides)
            try:
                info = inspect_image(tmp)
            except BrokenImage as e:
                raise InvalidInput(f"The download from {url[:100]} is neither a ZIP archive nor an image ({e}).",
                                   fix="Use the direct link of a .zip file or of an image.") from None
            stem = sanitize_part(os.path.splitext(filename)[0] or "image")
            lim = _limits(None, limit_overrides)
            return self._import(lambda: [_file_entry(tmp, stem + info.ext)], name, merge, False, lim, None)
        finally:
            tmp.unlink(missing_ok=True)

    def import_url_job(self, url: str, name: str, max_bytes: int = DEFAULT_MAX_DOWNLOAD, merge: bool = False) -> "JobHandle":
        """The same as :meth:`import_url`, run as a job (task ``import_url``) with live progress."""
        safe_name(name, "dataset name")
        return self.ws.jobs.submit_task("import_url", {"url": url, "name": name, "max_bytes": int(max_bytes), "merge": bool(merge)},
                                        name=f"import {name}", uses_gpu=False)

    def __repr__(self) -> str:
        return f"Datasets({self.names()!r})"


def _file_entry(path: Path, name: str):
    from .importer import Entry

    return Entry(name, path.read_bytes, path.stat().st_size)


def _limits(base: ImportLimits | None, overrides: dict) -> ImportLimits:
    import dataclasses

    base = base or ImportLimits()
    bad = set(overrides) - {f.name for f in dataclasses.fields(ImportLimits)}
    if bad:
        raise InvalidInput(f"Unknown import option(s): {', '.join(sorted(bad))}.",
                           fix="Use max_entries, max_total_bytes, max_file_bytes, max_ratio or max_pixels.")
    return dataclasses.replace(base, **overrides)

