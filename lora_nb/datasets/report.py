"""The dataset report ("doctor"): what the training panel checks before launch.

Counts, missing / empty / unreadable captions, corrupt images, exact duplicates (same
bytes) and near duplicates (perceptual hash), tiny images, the aspect-ratio buckets
kohya would form, trigger-word coverage, and every finding as one sentence in
``report.problems`` (``report.blocking`` holds the ones kohya would fail on).

Each image is decoded once (JPEG in draft mode) and what was learned is cached by
path + mtime + size, so a second report, or a report right after an import, is fast.
"""
from __future__ import annotations

import hashlib
import os
import re
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from ..captions.text import caption_problem, decode_caption, split_tags
from .images import CAPTION_EXTS, TRAINER_EXTS, BrokenImage, inspect_image

if TYPE_CHECKING:  # pragma: no cover
    from .dataset import Dataset, Subset

__all__ = ["DatasetReport", "Problem", "build_report"]


@dataclass(frozen=True)
class Problem:
    severity: str            # "error" (kohya would fail or misbehave), "warning", "info"
    code: str                # "corrupt", "missing_captions", ...
    message: str             # one sentence, with the fix
    paths: tuple[Path, ...] = ()
    detail: str = ""         # what a fix needs beyond the paths (the trigger word of "trigger_missing")


@dataclass
class DatasetReport:
    """What :meth:`Dataset.report` found. ``problems`` are sentences; ``ok`` is False when a problem blocks training."""

    dataset: str
    resolution: tuple[int, int]
    image_count: int = 0
    train_images: int = 0
    reg_images: int = 0
    samples_per_epoch: int = 0                    # train images x repeats
    subsets: list["Subset"] = field(default_factory=list)
    captioned: int = 0
    missing_captions: list[Path] = field(default_factory=list)
    empty_captions: list[Path] = field(default_factory=list)
    caption_issues: list[tuple[Path, str]] = field(default_factory=list)
    corrupt: list[tuple[Path, str]] = field(default_factory=list)
    exact_duplicates: list[list[Path]] = field(default_factory=list)
    near_duplicates: list[list[Path]] = field(default_factory=list)
    tiny: list[Path] = field(default_factory=list)
    rotated: list[Path] = field(default_factory=list)
    needs_conversion: list[tuple[Path, str]] = field(default_factory=list)
    orphan_captions: list[Path] = field(default_factory=list)
    other_files: list[Path] = field(default_factory=list)
    buckets: dict[tuple[int, int], int] | None = None
    trigger_coverage: dict[str, int] = field(default_factory=dict)
    missing_trigger: dict[str, list[Path]] = field(default_factory=dict)
    issues: list[Problem] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        return [p.message for p in self.issues]

    @property
    def blocking(self) -> list[str]:
        return [p.message for p in self.issues if p.severity == "error"]

    @property
    def ok(self) -> bool:
        return not self.blocking

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset, "resolution": list(self.resolution), "image_count": self.image_count,
            "train_images": self.train_images, "reg_images": self.reg_images, "samples_per_epoch": self.samples_per_epoch,
            "captioned": self.captioned, "missing_captions": len(self.missing_captions), "empty_captions": len(self.empty_captions),
            "corrupt": len(self.corrupt), "exact_duplicate_groups": len(self.exact_duplicates),
            "near_duplicate_groups": len(self.near_duplicates), "tiny": len(self.tiny),
            "buckets": None if self.buckets is None else {f"{w}x{h}": n for (w, h), n in sorted(self.buckets.items())},
            "trigger_coverage": self.trigger_coverage, "ok": self.ok,
            "problems": [{"severity": p.severity, "code": p.code, "message": p.message} for p in self.issues],
        }

    def __str__(self) -> str:
        lines = [f"Dataset '{self.dataset}': {self.image_count} images ({self.reg_images} regularisation), "
                 f"{self.captioned} captioned, {self.samples_per_epoch} samples per epoch at {self.resolution[0]}x{self.resolution[1]}."]
        if self.buckets:
            lines.append("Buckets: " + ", ".join(f"{w}x{h}: {n}" for (w, h), n in sorted(self.buckets.items())))
        for p in self.issues:
            lines.append(f"[{p.severity}] {p.message}")
        if not self.issues:
            lines.append("No problems found.")
        return "\n".join(lines)


def _few(paths: Sequence[Path], root: Path, n: int = 3) -> str:
    names = [p.relative_to(root).as_posix() if p.is_relative_to(root) else p.name for p in paths[:n]]
    more = f" and {len(paths) - n} more" if len(paths) > n else ""
    return ", ".join(names) + more


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _deep_info(ds: "Dataset", paths: list[Path], workers: int, progress: Callable[[int, int], None] | None) -> list[dict]:
    cache = ds._meta
    infos: list[dict | None] = [None] * len(paths)
    todo = []
    for i, p in enumerate(paths):
        try:
            st = p.stat()
        except OSError as e:
            infos[i] = {"err": f"it cannot be read ({e})", "w": 0, "h": 0}
            continue
        m = cache.get(ds.rel(p), st, deep=True)
        if m is not None:
            infos[i] = m
        else:
            todo.append((i, p, st))

    def work(job):
        i, p, st = job
        try:
            info = inspect_image(p)
            m = {"w": info.width, "h": info.height, "f": info.format, "deep": True, "ph": info.phash,
                 "o": info.orientation, "fix": info.needs_fix, "err": None}
        except (BrokenImage, OSError) as e:
            m = {"w": 0, "h": 0, "f": "broken", "deep": True, "err": str(e)}
        cache.put(ds.rel(p), st, m)
        return i, m

    if todo:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for n, (i, m) in enumerate(pool.map(work, todo), 1):
                infos[i] = m
                if progress:
                    progress(n, len(todo))
        cache.save()
    return infos  # type: ignore[return-value]


def _exact_groups(paths: list[Path]) -> list[list[Path]]:
    by_size: dict[int, list[Path]] = defaultdict(list)
    for p in paths:
        try:
            by_size[p.stat().st_size].append(p)
        except OSError:
            pass
    groups = []
    for same in by_size.values():
        if len(same) < 2:
            continue
        by_hash: dict[str, list[Path]] = defaultdict(list)
        for p in same:
            with open(p, "rb") as f:
                by_hash[hashlib.file_digest(f, "blake2b").hexdigest()].append(p)
        groups.extend(g for g in by_hash.values() if len(g) > 1)
    return groups


def _near_groups(paths: list[Path], hashes: list[int], threshold: int, exclude: set[frozenset]) -> list[list[Path]]:
    import numpy as np

    n = len(hashes)
    if n < 2:
        return []
    h = np.array(hashes, dtype=np.uint64)
    parent = list(range(n))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    linked = False
    for i in range(n - 1):  # row by row keeps memory at O(n)
        d = np.bitwise_count(h[i + 1:] ^ h[i])
        for j in np.nonzero(d <= threshold)[0]:
            j = int(j) + i + 1
            if frozenset((paths[i], paths[j])) in exclude:
                continue
            parent[find(j)] = find(i)
            linked = True
    if not linked:
        return []
    groups: dict[int, list[Path]] = defaultdict(list)
    for i in range(n):
        groups[find(i)].append(paths[i])
    return [g for g in groups.values() if len(g) > 1]


def _has_word(caption: str, word: str) -> bool:
    if word in split_tags(caption):
        return True
    return re.search(r"(?<!\w)" + re.escape(word) + r"(?!\w)", caption, re.IGNORECASE) is not None


def build_report(ds: "Dataset", resolution: int | tuple[int, int] = 512, trigger_words: str | Sequence[str] | None = None,
                 *, enable_bucket: bool = True, min_bucket_reso: int = 256, max_bucket_reso: int = 1024,
                 bucket_reso_steps: int = 64, bucket_no_upscale: bool = False, near_threshold: int = 4,
                 tiny_fraction: float = 0.25, workers: int | None = None,
                 progress: Callable[[int, int], None] | None = None, duplicates: bool = True) -> DatasetReport:
    """Build a :class:`DatasetReport`. ``near_threshold``: most differing bits (of 64) for near duplicates;
    ``tiny_fraction``: images under this share of the training area are "tiny"; ``duplicates=False`` skips
    the duplicate search (it reads every same-sized file; no blocking finding depends on it)."""
    from ..files import read_or_none as _read

    ds.captions.recover()      # a bulk edit cut short by a crash is rolled back before anything is judged
    res = (resolution, resolution) if isinstance(resolution, int) else (int(resolution[0]), int(resolution[1]))
    rep = DatasetReport(ds.name, res)
    root = ds.path
    paths = ds.image_paths()
    subsets = ds.subsets()
    rep.subsets = subsets
    rep.image_count = len(paths)
    sub_of = {s.name: s for s in subsets}
    infos = _deep_info(ds, paths, workers or min(8, (os.cpu_count() or 2) * 2), progress)
    cap_ext = ds.caption_extension

    def subset_of(p: Path):
        folder = Path(ds.rel(p)).parent.as_posix()
        return sub_of.get("" if folder == "." else folder)

    usable: list[tuple[Path, dict]] = []
    captions: dict[Path, str] = {}
    for p, m in zip(paths, infos):
        sub = subset_of(p)
        if m.get("err"):
            rep.corrupt.append((p, m["err"]))
            continue
        usable.append((p, m))
        if sub is not None and sub.is_reg:
            rep.reg_images += 1
        else:
            rep.train_images += 1
            rep.samples_per_epoch += max(sub.repeats if sub else 1, 0)
        if m.get("o", 1) not in (0, 1, None):
            rep.rotated.append(p)
        elif m.get("fix"):
            rep.needs_conversion.append((p, m["fix"]))
        if os.path.splitext(p.name)[1].lower() not in TRAINER_EXTS:
            rep.needs_conversion.append((p, f"{p.suffix} files are not read by kohya"))
        if m["w"] * m["h"] < tiny_fraction * res[0] * res[1]:
            rep.tiny.append(p)
        data = _read(p.with_name(p.stem + cap_ext))
        if data is None:
            if sub is None or not sub.is_reg:
                rep.missing_captions.append(p)
            continue
        why = caption_problem(data)
        if why == "is empty":
            rep.empty_captions.append(p)
        elif why:
            rep.caption_issues.append((p, why))
        text = decode_caption(data)
        if text.strip():
            rep.captioned += 1
            captions[p] = text.split("\n")[0]
    # files that are neither images nor their captions
    image_stems = {p.with_suffix("") for p in paths}
    image_set = set(paths)
    for dirpath, _, filenames in ds._walk():
        for fn in filenames:
            f = Path(dirpath) / fn
            ext = os.path.splitext(fn)[1].lower()
            if ext in CAPTION_EXTS:
                if f.with_suffix("") not in image_stems:
                    rep.orphan_captions.append(f)
            elif f not in image_set and ext not in (".npz", ".json", ".toml"):
                rep.other_files.append(f)
    # duplicates
    usable_paths = [p for p, _ in usable]
    if duplicates:
        rep.exact_duplicates = _exact_groups(usable_paths)
        exclude = {frozenset((a, b)) for g in rep.exact_duplicates for a in g for b in g if a != b}
        hashed = [(p, m["ph"]) for p, m in usable if m.get("ph") is not None]
        rep.near_duplicates = _near_groups([p for p, _ in hashed], [h for _, h in hashed], near_threshold, exclude)
    # buckets: the same function the step calculator uses, so that both agree with kohya
    try:
        from ..config.buckets import bucket_counts
    except ImportError:
        bucket_counts = None
    if bucket_counts is not None and usable:
        rep.buckets = dict(bucket_counts([(m["w"], m["h"]) for _, m in usable], resolution=res, enable_bucket=enable_bucket,
                                         min_bucket_reso=min_bucket_reso, max_bucket_reso=max_bucket_reso,
                                         bucket_reso_steps=bucket_reso_steps, bucket_no_upscale=bucket_no_upscale))
    # trigger words
    words = split_tags(trigger_words) if isinstance(trigger_words, str) else list(trigger_words or [])
    train_captioned = [p for p, _ in usable if not (subset_of(p) and subset_of(p).is_reg)]
    for w in words:
        missing = [p for p in train_captioned if not (p in captions and _has_word(captions[p], w))]
        rep.trigger_coverage[w] = len(train_captioned) - len(missing)
        rep.missing_trigger[w] = missing
    _add_problems(rep, root, words)
    return rep


def _add_problems(rep: DatasetReport, root: Path, words: list[str]) -> None:
    add = rep.issues.append
    if rep.image_count == 0:
        add(Problem("error", "empty", "The dataset has no images; import some before training."))
    if rep.image_count and not rep.train_images:
        add(Problem("error", "no_train_images", "Every image is unreadable or a regularisation image, so there is nothing to train on."))
    if rep.corrupt:
        ps = [p for p, _ in rep.corrupt]
        add(Problem("error", "corrupt", f"{_plural(len(ps), 'image')} cannot be decoded ({_few(ps, root)}: {rep.corrupt[0][1]}); "
                    "move them out of the dataset (ds.fix(problem) puts them in .lora-nb/excluded) or replace them, "
                    "or training stops when it reaches them.", tuple(ps)))
    if rep.empty_captions:
        add(Problem("error", "empty_captions", f"{_plural(len(rep.empty_captions), 'caption file')} "
                    f"{'is' if len(rep.empty_captions) == 1 else 'are'} empty ({_few(rep.empty_captions, root)}), which kohya refuses; "
                    "write a caption or delete the file.", tuple(rep.empty_captions)))
    not_utf8 = [p for p, why in rep.caption_issues if why == "is not UTF-8"]
    if not_utf8:
        add(Problem("error", "caption_encoding", f"{_plural(len(not_utf8), 'caption')} {'is' if len(not_utf8) == 1 else 'are'} not UTF-8 "
                    f"({_few(not_utf8, root)}), which kohya cannot read; re-encode them as UTF-8 (ds.fix(problem), undoable with ds.captions.undo()).", tuple(not_utf8)))
    bom = [p for p, why in rep.caption_issues if "byte-order" in why]
    if bom:
        add(Problem("warning", "caption_bom", f"{_plural(len(bom), 'caption')} start with a byte-order mark ({_few(bom, root)}) that ends up "
                    "glued to the first tag; run ds.captions.normalize_whitespace() to remove it.", tuple(bom)))
    multi = [p for p, why in rep.caption_issues if "more than one line" in why]
    if multi:
        add(Problem("warning", "caption_lines", f"{_plural(len(multi), 'caption')} have several lines and kohya reads only the first "
                    f"({_few(multi, root)}); run ds.captions.normalize_whitespace() to join them.", tuple(multi)))
    for sub in rep.subsets:
        if sub.repeats < 1:
            add(Problem("warning", "zero_repeats", f"The folder '{sub.name}' has 0 repeats, so kohya skips it; rename it to 1_... or more."))
    if rep.missing_captions:
        add(Problem("warning", "missing_captions", f"{_plural(len(rep.missing_captions), 'image')} {'has' if len(rep.missing_captions) == 1 else 'have'} no caption "
                    f"({_few(rep.missing_captions, root)}); tag them (ds.tag()) or write captions, or they train on the folder's class tokens only.",
                    tuple(rep.missing_captions)))
    if rep.exact_duplicates:
        n = sum(len(g) - 1 for g in rep.exact_duplicates)
        add(Problem("warning", "exact_duplicates", f"{_plural(n, 'image')} {'is an exact copy' if n == 1 else 'are exact copies'} of another "
                    f"({_few(rep.exact_duplicates[0], root)}); delete the copies so they do not weigh double.",
                    tuple(p for g in rep.exact_duplicates for p in g[1:])))
    if rep.near_duplicates:
        add(Problem("warning", "near_duplicates", f"{_plural(len(rep.near_duplicates), 'group')} of images look almost the same "
                    f"({_few(rep.near_duplicates[0], root)}); keep the best of each group.",
                    tuple(p for g in rep.near_duplicates for p in g)))
    if rep.tiny:
        add(Problem("warning", "tiny", f"{_plural(len(rep.tiny), 'image')} {'is' if len(rep.tiny) == 1 else 'are'} far smaller than "
                    f"{rep.resolution[0]}x{rep.resolution[1]} ({_few(rep.tiny, root)}) and will be upscaled and blurry; replace them with larger ones.",
                    tuple(rep.tiny)))
    if rep.rotated:
        add(Problem("warning", "exif_rotation", f"{_plural(len(rep.rotated), 'image')} {'is' if len(rep.rotated) == 1 else 'are'} rotated only by an EXIF tag "
                    f"({_few(rep.rotated, root)}), which trainers ignore, so they train sideways; re-import them (imports apply the rotation).",
                    tuple(rep.rotated)))
    if rep.needs_conversion:
        ps = [p for p, _ in rep.needs_conversion]
        add(Problem("warning", "needs_conversion", f"{_plural(len(ps), 'image')} would be misread by the trainer ({_few(ps, root)}: "
                    f"{rep.needs_conversion[0][1]}); re-import them to convert.", tuple(ps)))
    for w in words:
        missing = rep.missing_trigger.get(w, [])
        if missing:
            add(Problem("warning", "trigger_missing", f"The trigger word '{w}' is missing from {_plural(len(missing), 'caption')} "
                        f"({_few(missing, root)}); run ds.captions.add_trigger({w!r}).", tuple(missing), detail=w))
    if rep.orphan_captions:
        add(Problem("info", "orphan_captions", f"{_plural(len(rep.orphan_captions), 'caption file')} have no image ({_few(rep.orphan_captions, root)}) and are ignored.",
                    tuple(rep.orphan_captions)))
    if rep.other_files:
        add(Problem("info", "other_files", f"{_plural(len(rep.other_files), 'file')} {'is' if len(rep.other_files) == 1 else 'are'} neither an image nor a caption "
                    f"({_few(rep.other_files, root)}) and {'is' if len(rep.other_files) == 1 else 'are'} ignored.", tuple(rep.other_files)))
    if rep.buckets is not None and rep.buckets:
        single = sum(1 for n in rep.buckets.values() if n == 1)
        if single and len(rep.buckets) > 1:
            add(Problem("info", "small_buckets", f"{_plural(single, 'bucket')} hold a single image, so batches there stay small."))
