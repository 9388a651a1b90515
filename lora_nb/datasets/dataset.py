"""One dataset: a folder of images with same-stem caption files, possibly in kohya ``N_concept`` subsets.

>>> import lora_nb, tempfile, io
>>> from PIL import Image
>>> ws = lora_nb.Workspace(tempfile.mkdtemp())
>>> ds = ws.datasets.create("alice")
>>> buf = io.BytesIO(); Image.new("RGB", (640, 480)).save(buf, "JPEG")
>>> ds.add_images([("10_alice/001.jpg", buf.getvalue()), ("10_alice/001.txt", b"alice, smile")]).images
1
>>> item = ds.images()[0]
>>> (item.width, item.height, item.format, item.caption, item.subset)
(640, 480, 'jpeg', 'alice, smile', '10_alice')
>>> [(s.name, s.repeats, s.is_reg) for s in ds.subsets()]
[('10_alice', 10, False)]
"""
from __future__ import annotations

import functools
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence, Union

from ..errors import InvalidInput, InvalidName, NotFound
from ..paths import safe_join, safe_name
from . import listing
from .images import CAPTION_EXTS, BrokenImage, read_header
from .listing import natural_key as _natural_key

if TYPE_CHECKING:  # pragma: no cover
    from ..ports import DatasetsHome, JobHandle, JobSubmitter
    from ..captions import Captions
    from .doctor import Finding, FixResult
    from .importer import ImportResult
    from .report import DatasetReport, Problem

__all__ = ["Dataset", "ImageItem", "Subset", "REG_FOLDER_NAMES", "META_DIR"]

META_DIR = ".lora-nb"
REG_FOLDER_NAMES = {"reg", "regs", "regularization", "regularisation", "reg_images", "reg_data", "reg_data_dir"}
_REPEATS = re.compile(r"^(\d+)_(.*)$")


@dataclass(frozen=True)
class ImageItem:
    """One image of a dataset as ``ds.images()`` lists it."""

    path: Path
    caption_path: Path          # where its caption lives (the file may not exist)
    caption: str | None         # None: no caption file
    width: int                  # 0 when the header cannot be read
    height: int
    size: int                   # bytes on disk
    format: str                 # "jpeg", "png", ... or "broken"
    subset: str                 # folder relative to the dataset ("" for the top folder)

    @property
    def name(self) -> str:
        return self.path.name


@dataclass(frozen=True)
class Subset:
    """A folder of images: kohya's ``N_concept`` convention gives repeats N and class tokens."""

    name: str                   # folder relative to the dataset, "" for the top folder
    repeats: int
    path: Path
    is_reg: bool
    class_tokens: str | None
    image_count: int


def parse_subset_folder(name: str) -> tuple[int, str | None]:
    """``"10_alice woman"`` -> ``(10, "alice woman")``; other names repeat once."""
    m = _REPEATS.match(name)
    return (int(m.group(1)), m.group(2) or None) if m else (1, None)


ImageRef = Union[ImageItem, str, os.PathLike]


class Dataset:
    """A dataset folder in the workspace. Get one from ``ws.datasets``."""

    def __init__(self, ws: "DatasetsHome", name: str) -> None:
        self.ws = ws
        self.name = safe_name(name, "dataset name")
        self.path: Path = ws.datasets_dir / self.name

    def __repr__(self) -> str:
        return f"Dataset({self.name!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Dataset) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)

    # -- settings --------------------------------------------------------------------
    @property
    def meta_dir(self) -> Path:
        """``<dataset>/.lora-nb``: caches, thumbnails, undo records (hidden, so trainers skip it)."""
        return self.path / META_DIR

    def _settings(self) -> dict[str, Any]:
        try:
            return json.loads((self.meta_dir / "dataset.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def _set_setting(self, key: str, value: Any) -> None:
        from ..files import atomic_write

        s = self._settings()
        s[key] = value
        self.meta_dir.mkdir(exist_ok=True)
        atomic_write(self.meta_dir / "dataset.json", json.dumps(s, indent=1).encode("utf-8"))
        self.__dict__.pop("_caption_ext", None)

    @property
    def caption_extension(self) -> str:
        """``.txt`` or ``.caption``: what this dataset's captions use (set it, or it is detected)."""
        ext = self.__dict__.get("_caption_ext")
        if ext is None:
            ext = self._settings().get("caption_extension") or self._detect_caption_ext()
            self.__dict__["_caption_ext"] = ext
        return ext

    @caption_extension.setter
    def caption_extension(self, ext: str) -> None:
        if ext not in CAPTION_EXTS:
            raise InvalidInput(f"{ext!r} is not a caption extension lora-nb writes.", fix="Use '.txt' or '.caption'.")
        self._set_setting("caption_extension", ext)

    @property
    def caption_separator(self) -> str | None:
        """The separator for new captions and captions without one; None: each caption's own, else the majority."""
        return self._settings().get("caption_separator")

    @caption_separator.setter
    def caption_separator(self, sep: str | None) -> None:
        if sep is not None and (not sep.strip() or len(sep) > 4):
            raise InvalidInput(f"{sep!r} is not a usable separator.", fix="Use ', ' or ','.")
        self._set_setting("caption_separator", sep)

    def _detect_caption_ext(self) -> str:
        counts = listing.caption_counts(str(self.path)) if self.path.is_dir() else {}
        return ".caption" if counts.get(".caption", 0) > counts.get(".txt", 0) else ".txt"

    # -- listing ---------------------------------------------------------------------
    def _walk(self):
        for dirpath, dirnames, filenames in os.walk(self.path, followlinks=False):
            dirnames[:] = [d for d in dirnames if not listing.skipped_dir(d)]
            yield dirpath, dirnames, [f for f in filenames if not f.startswith(".")]

    @property
    def jobs(self) -> "JobSubmitter":
        """The job submitter of the dataset's workspace (tagging and checks run as jobs)."""
        return self.ws.jobs

    def check_exists(self) -> None:
        if not self.path.is_dir():
            raise NotFound(f"Dataset '{self.name}' does not exist.", fix="Create it with ws.datasets.create(name).")

    def image_paths(self) -> list[Path]:
        """Every image file, in natural order (``img2`` before ``img10``), without opening any."""
        return [Path(p) for p in self.image_files()]

    def image_files(self, sort: bool = True) -> list[str]:
        """Like :meth:`image_paths`, as plain strings (cheaper for 100,000 files; the listing is
        reused while the dataset's folders do not change, see :mod:`lora_nb.datasets.listing`)."""
        self.check_exists()
        return listing.image_files(str(self.path), sort=sort)

    def __len__(self) -> int:
        return len(self.image_files(sort=False))

    def rel(self, path: Path | str) -> str:
        """A path inside the dataset, relative to it, with forward slashes."""
        return Path(os.path.abspath(path)).relative_to(self.path).as_posix()

    def resolve_image(self, ref: ImageRef) -> Path:
        """An image given as ImageItem, absolute path inside the dataset, or path relative to it."""
        if isinstance(ref, ImageItem):
            return ref.path
        if not isinstance(ref, (str, os.PathLike)):
            raise InvalidInput(f"Cannot find an image from a {type(ref).__name__}.", fix="Pass an ImageItem, a path or a file name.")
        p = Path(ref)
        if p.is_absolute():
            p = Path(os.path.abspath(p))
            try:
                p.relative_to(self.path)
            except ValueError:
                raise InvalidName(f"{str(ref)!r} is not inside dataset '{self.name}'.", fix="Use a path from ds.images().") from None
            return p
        return safe_join(self.path, os.fspath(ref), "image path") if ".." in Path(ref).parts else self.path / p

    @functools.cached_property
    def _meta(self):
        from .meta import MetaCache

        return MetaCache(self.meta_dir / "meta.json")

    def images(self) -> list["ImageItem"]:
        """Every image with its caption, size and format (headers are read once and cached)."""
        from ..files import read_or_none as _read
        from ..captions.text import decode_caption

        items = []
        ext = self.caption_extension
        for p in self.image_paths():
            rel = self.rel(p)
            try:
                st = p.stat()
            except OSError:
                continue
            m = self._meta.get(rel, st)
            if m is None:
                try:
                    w, h, fmt = read_header(p)
                except BrokenImage as e:
                    w, h, fmt = 0, 0, "broken"
                    m = {"w": 0, "h": 0, "f": "broken", "deep": True, "err": str(e)}
                else:
                    m = {"w": w, "h": h, "f": fmt, "deep": False}
                self._meta.put(rel, st, m)
            cap = p.with_name(p.stem + ext)
            data = _read(cap)
            folder = Path(rel).parent.as_posix()
            items.append(ImageItem(p, cap, None if data is None else decode_caption(data), m["w"], m["h"],
                                   st.st_size, m["f"], "" if folder == "." else folder))
        self._meta.save()
        return items

    def subsets(self) -> list[Subset]:
        """Each folder that holds images, with kohya repeats (``N_name``) and whether it is regularisation."""
        counts: dict[str, int] = {}
        for p in self.image_paths():
            folder = Path(self.rel(p)).parent.as_posix()
            counts["" if folder == "." else folder] = counts.get("" if folder == "." else folder, 0) + 1
        out = []
        for folder, n in sorted(counts.items(), key=lambda kv: _natural_key(kv[0])):
            parts = folder.split("/") if folder else []
            repeats, tokens = parse_subset_folder(parts[-1]) if parts else (1, None)
            is_reg = any(p.casefold() in REG_FOLDER_NAMES for p in parts)
            out.append(Subset(folder, repeats, self.path / folder if folder else self.path, is_reg, tokens, n))
        return out

    def set_repeats(self, subset: str, repeats: int) -> Subset:
        """Rename a subset folder to ``<repeats>_<name>`` (kohya's convention)."""
        if not isinstance(repeats, int) or repeats < 1:
            raise InvalidInput(f"repeats={repeats!r} is not a whole number of at least 1.", fix="Use 1 or more.")
        sub = next((s for s in self.subsets() if s.name == subset), None)
        if sub is None or not subset:
            raise NotFound(f"Dataset '{self.name}' has no subset folder {subset!r}.",
                           fix="Use a name from ds.subsets() (images in the top folder need a sub-folder first).")
        parts = subset.split("/")
        base = _REPEATS.match(parts[-1]).group(2) if _REPEATS.match(parts[-1]) else parts[-1]
        new_name = safe_name(f"{repeats}_{base}", "folder name")
        new_path = sub.path.with_name(new_name)
        if new_path != sub.path:
            if new_path.exists():
                raise InvalidInput(f"A folder {new_name!r} exists already.", fix="Merge or rename it first.")
            os.rename(sub.path, new_path)
        rel = "/".join(parts[:-1] + [new_name])
        return next(s for s in self.subsets() if s.name == rel)

    # -- changing --------------------------------------------------------------------
    def add_images(self, items: Iterable, subset: str | None = None, progress: Callable[[int, int], None] | None = None) -> "ImportResult":
        """Add images (paths, whose same-stem .txt/.caption come along, or ``(name, bytes)`` pairs).

        Names are sanitised and never overwrite: a clash gets ``_2``, ``_3``... Broken
        files are skipped and listed in the result; a failure adds nothing.
        """
        from .importer import ImportLimits, commit_into, item_entries, new_staging, sanitize_part, stage

        self.check_exists()
        prefix = tuple(sanitize_part(p, "folder") for p in subset.replace("\\", "/").split("/") if p) if subset else ()
        entries = item_entries(items)
        staging = new_staging(self.ws)
        try:
            result, meta = stage(entries, staging, caption_ext=self.caption_extension, existing=self.path,
                                 prefix=prefix, limits=ImportLimits(), progress=progress)
            commit_into(staging, self.path, result, meta)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        self.__dict__.pop("_meta", None)
        result.dataset = self
        return result

    def remove_images(self, images: Sequence[ImageRef]) -> int:
        """Delete images and their caption files; returns how many images were removed."""
        n = 0
        for ref in images:
            p = self.resolve_image(ref)
            if p.exists() or p.is_symlink():
                p.unlink()
                n += 1
            for ext in CAPTION_EXTS:
                p.with_name(p.stem + ext).unlink(missing_ok=True)
        return n

    def exclude_images(self, images: Sequence[ImageRef]) -> list[Path]:
        """Move images (with their captions) out of the dataset into ``.lora-nb/excluded``, deleting nothing;
        returns where they went (see :mod:`lora_nb.datasets.exclude`)."""
        from .exclude import exclude

        return exclude(self, images)

    def excluded(self) -> list[Path]:
        """The images :meth:`exclude_images` (or a doctor fix) moved out, in the quarantine."""
        from .exclude import excluded

        return excluded(self)

    def restore_excluded(self, images: Iterable[Path | str] | None = None) -> list[Path]:
        """Put excluded images (all, or some from :meth:`excluded`) back where they were."""
        from .exclude import restore

        return restore(self, images)

    # -- captions, report, thumbnails, tagging -------------------------------------------
    @functools.cached_property
    def captions(self) -> "Captions":
        from ..captions import Captions

        return Captions(self)

    def report(self, resolution: int | tuple[int, int] = 512, trigger_words: str | Sequence[str] | None = None,
               **options: Any) -> "DatasetReport":
        """Check the dataset before training (see :mod:`lora_nb.datasets.report`)."""
        from .report import build_report

        return build_report(self, resolution=resolution, trigger_words=trigger_words, **options)

    def doctor(self, folders: Iterable[str] | None = None) -> list["Finding"]:
        """The findings that block a training launch (the report's errors), each with its fix's label or None;
        ``folders``: only those about these subset folders. See :mod:`lora_nb.datasets.doctor`."""
        from .doctor import findings

        return findings(self, folders)

    def fix(self, finding: "Finding | Problem") -> "FixResult":
        """Apply the one-click fix of a finding from :meth:`doctor` (or a report Problem); it moves files into
        ``.lora-nb/excluded`` or rewrites captions as one undoable caption operation, never deletes."""
        from .doctor import apply_fix

        return apply_fix(self, finding)

    def report_job(self, resolution: int | tuple[int, int] = 512, trigger_words: str | Sequence[str] | None = None,
                   **options: Any) -> "JobHandle":
        """The same check as a job (task ``dataset_report``): for datasets whose images were never
        looked at, where decoding them all takes a while. Afterwards ``ds.report()`` is fast
        (the findings are cached); the job also writes ``report.json`` into its run folder."""
        params = {"dataset": self.name, "resolution": resolution, "trigger_words": trigger_words, **options}
        return self.ws.jobs.submit_task("dataset_report", params, name=f"check {self.name}", uses_gpu=False)

    def thumbnail(self, image: ImageRef, size: int = 256) -> Path:
        """A cached JPEG thumbnail (longest side ``size``); raises InvalidInput for a broken image."""
        from .thumbs import thumbnail

        return thumbnail(self, self.resolve_image(image), size)

    def thumbnails(self, images: Sequence[ImageRef] | None = None, size: int = 256, workers: int | None = None) -> list[Path | None]:
        """Thumbnails for many images at once (a thread pool); None where an image is broken."""
        from .thumbs import thumbnails

        paths = self.image_paths() if images is None else [self.resolve_image(i) for i in images]
        return thumbnails(self, paths, size, workers)

    def tag(self, model: str = "wd-vit-tagger-v3", **options: Any) -> "JobHandle":
        """Auto-tag every image with a WD14 tagger, as a job (see :mod:`lora_nb.tagging`)."""
        from ..tagging import tag_dataset

        return tag_dataset(self, model=model, **options)

    def caption(self, model: str = "florence-2-large", **options: Any) -> "JobHandle":
        """Natural-language captions (Florence-2, JoyCaption) for every image, as a job (see
        :mod:`lora_nb.tagging.caption_dataset`); ``preset="name"`` uses a saved prompt preset."""
        from ..tagging.caption_dataset import caption_dataset

        return caption_dataset(self, model=model, presets_dir=self.ws.presets_dir / "captions", **options)

    def preview_captions(self, model: str = "florence-2-large", n: int = 4, **options: Any) -> "JobHandle":
        """Caption ``n`` images as a job that writes nothing (``lora_nb.tagging.caption_dataset.read_preview(job)``)."""
        from ..tagging.caption_dataset import preview_captions

        return preview_captions(self, model=model, n=n, presets_dir=self.ws.presets_dir / "captions", **options)
