"""Caption files of a dataset: read, write, bulk edits with preview and undo, tag statistics.

One caption per image, in ``<image stem><ext>`` beside it (``.txt`` unless the dataset
uses ``.caption``). Writes are atomic (temporary file + rename) and UTF-8. Bulk
operations work on the whole dataset or a selection, keep each caption's separator
(``", "`` or ``","``), return an :class:`EditResult`, can be previewed without
writing, and snapshot what they change so that :meth:`Captions.undo` restores it
byte for byte.

>>> import lora_nb, tempfile
>>> ws = lora_nb.Workspace(tempfile.mkdtemp())
>>> ds = ws.datasets.create("demo")
>>> from PIL import Image; import io
>>> buf = io.BytesIO(); Image.new("RGB", (8, 8)).save(buf, "PNG")
>>> _ = ds.add_images([("a.png", buf.getvalue()), ("a.txt", b"1girl, smile")])
>>> ds.captions.add_trigger("alice").changed
1
>>> ds.captions.get("a.png")
'alice, 1girl, smile'
>>> _ = ds.captions.undo(); ds.captions.get("a.png")
'1girl, smile'
"""
from __future__ import annotations

import json
import os
import re
import shutil
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Sequence, Union

from .captions_text import (DEFAULT_SEPARATOR, KAOMOJI, decode_caption, detect_separator, encode_caption,
                            normalize_text, split_tags)
from .errors import InvalidInput, LoraNbError, NotFound

if TYPE_CHECKING:  # pragma: no cover
    from .datasets.dataset import Dataset, ImageItem

__all__ = ["Captions", "EditResult", "CaptionChange", "atomic_write"]

ImageRef = Union["ImageItem", str, os.PathLike]
UNDO_KEEP = 20
KEEP_SEPARATOR = "|||"   # kohya's usual keep_tokens_separator: tags before it stay put when sorting
_PARALLEL_MIN = 512
_WORKERS = 4          # reading: CPU-bound in Python, a few threads are enough
_WRITE_WORKERS = 16   # writing: each rename over an existing file may wait for the disk (ext4 flushes it)


def _chunks(items: list, n: int) -> list[list]:
    size = -(-len(items) // n)
    return [items[i:i + size] for i in range(0, len(items), size)]


@dataclass(frozen=True)
class CaptionChange:
    """One caption's text before and after (``image`` and ``caption_path`` are Paths)."""

    image_file: str
    caption_file: str
    before: str | None      # None: there was no caption file
    after: str | None       # None: the caption file is removed (undo of a created caption)

    @property
    def image(self) -> Path:
        return Path(self.image_file)

    @property
    def caption_path(self) -> Path:
        return Path(self.caption_file)


@dataclass
class EditResult:
    """What a bulk operation changed (or would change, with ``preview=True``)."""

    op: str
    changed: int
    total: int
    preview: bool = False
    changes: list[CaptionChange] = field(default_factory=list, repr=False)

    def __repr__(self) -> str:
        verb = "would change" if self.preview else "changed"
        return f"EditResult({self.op!r}: {verb} {self.changed} of {self.total} captions)"


def atomic_write(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    path = os.fspath(path)
    head, name = os.path.split(path)
    tmp = os.path.join(head, f".{name[:60]}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _read(path: str | os.PathLike) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        chunks = []
        while True:
            b = os.read(fd, 1 << 16)
            if not b:
                break
            chunks.append(b)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _replace_one(jobs: list) -> list:
    """For each (caption, new bytes, snapshot path, old bytes): keep the old file in the snapshot, write the new one."""
    for path, data, keep, old in jobs:
        if keep is not None:
            try:
                os.link(path, keep)          # the old file itself: exact, and its blocks are not freed now
            except OSError:
                atomic_write(keep, old)      # no hard links here: a copy
        atomic_write(path, data)
    return []


def _rollback_one(jobs: list) -> list:
    for path, data, keep, old in jobs:
        try:
            if old is None:
                if _read(path) == data:
                    os.unlink(path)
            elif _read(path) != old:
                atomic_write(path, old)
        except OSError:
            pass
    return []


def _restore_one(jobs: list) -> list:
    out = []
    for path, keep in jobs:
        now = _read(path)
        if keep is None:
            if now is not None:
                os.unlink(path)
            out.append(CaptionChange(path, path, decode_caption(now) if now is not None else None, None))
        elif os.path.exists(keep):
            data = _read(keep)
            os.replace(keep, path)
            out.append(CaptionChange(path, path, None if now is None else decode_caption(now), decode_caption(data or b"")))
    return out


def _as_list(tags: str | Iterable[str]) -> list[str]:
    if isinstance(tags, str):
        return split_tags(tags)
    return [t.strip() for t in tags if t and t.strip()]


def _matcher(patterns: list[str], regex: bool) -> Callable[[str], bool]:
    if not regex:
        wanted = set(patterns)
        return wanted.__contains__
    compiled = [_compile(p) for p in patterns]
    return lambda t: any(c.fullmatch(t) for c in compiled)


def _compile(pattern: str) -> re.Pattern:
    try:
        return re.compile(pattern)
    except re.error as e:
        raise InvalidInput(f"{pattern!r} is not a valid regular expression ({e}).",
                           fix="Fix the pattern, or pass regex=False to match it literally.") from None


class Captions:
    """The captions of one dataset. Get it as ``ds.captions``."""

    def __init__(self, dataset: "Dataset") -> None:
        self._ds = dataset

    # -- paths -----------------------------------------------------------------------
    @property
    def extension(self) -> str:
        return self._ds.caption_extension

    def path_for(self, image: ImageRef) -> Path:
        """The caption file of an image (which may not exist yet)."""
        return Path(self._cap(os.fspath(self._ds.resolve_image(image))))

    def _cap(self, image_file: str) -> str:
        return os.path.splitext(image_file)[0] + self.extension

    def _undo_dir(self) -> Path:
        return self._ds.meta_dir / "undo"

    # -- one caption -----------------------------------------------------------------
    def get(self, image: ImageRef, default: str | None = None) -> str | None:
        """The caption text (decoded tolerantly, line ends normalised), or ``default`` when there is none."""
        data = _read(self.path_for(image))
        return default if data is None else decode_caption(data)

    def set(self, image: ImageRef, text: str) -> None:
        """Write one caption atomically as UTF-8 (keeping a trailing newline if the old file had one)."""
        if not isinstance(text, str):
            raise InvalidInput(f"A caption must be text, not {type(text).__name__}.", fix="Pass a string.")
        path = self.path_for(image)
        img = self._ds.resolve_image(image)
        if not img.exists():
            raise NotFound(f"There is no image {self._ds.rel(img)!r} in dataset '{self._ds.name}'.",
                           fix="Use a path from ds.images().")
        old = _read(path)
        atomic_write(path, encode_caption(text, newline=bool(old and old.endswith(b"\n"))))

    def set_many(self, captions: dict, op: str = "set_many", preview: bool = False) -> EditResult:
        """Write many captions as one undoable bulk operation (the tagger uses this)."""
        wanted = {os.fspath(self._ds.resolve_image(k)): v for k, v in captions.items()}
        return self._bulk(op, list(wanted), lambda img, text, sep: wanted[img], preview, text_level=True)

    def bulk_writer(self, op: str, images: Sequence[ImageRef]) -> "BulkWriter":
        """Write captions one by one as a single undoable operation (the tagging job uses this).

        The current captions of ``images`` are recorded first; each :meth:`BulkWriter.write` then
        replaces one file atomically, so a stopped writer leaves every caption whole, and
        ``undo()`` puts back exactly the ones it changed.
        """
        files = [os.fspath(self._ds.resolve_image(i)) for i in images]
        caps = [self._cap(f) for f in files]
        before = dict(zip(caps, self._read_all(caps)))
        snap, keep = self._start_snapshot(op, before)
        return BulkWriter(self, snap, dict(zip(files, zip(caps, keep))), before)

    # -- bulk operations ---------------------------------------------------------------
    def add_trigger(self, words: str | Sequence[str], where: str = "start", selection=None,
                    preview: bool = False) -> EditResult:
        """Put trigger word(s) at the start, the end or both, without duplicating them.

        A trigger already present elsewhere in a caption is moved, so the operation is
        idempotent. Images without a caption get one holding just the trigger(s).
        """
        trig = _as_list(words)
        if not trig:
            raise InvalidInput("No trigger word was given.", fix="Pass a word such as 'alice', or a list of words.")
        if where not in ("start", "end", "both"):
            raise InvalidInput(f"where={where!r} is not one of 'start', 'end', 'both'.", fix="Use where='start'.")
        tset = set(trig)

        def fn(tags: list[str]) -> list[str]:
            rest = [t for t in tags if t not in tset]
            if where == "start":
                return trig + rest
            if where == "end":
                return rest + trig
            return trig + rest + trig if rest else list(trig)

        return self._tag_op(f"add_trigger {', '.join(trig)} ({where})", fn, selection, preview, create=True)

    def replace(self, old: str, new: str, regex: bool = False, whole_tag: bool = True, selection=None,
                preview: bool = False) -> EditResult:
        """Search and replace: whole tags (default) or any substring; literal (default) or regex.

        With ``whole_tag=True`` a tag equal to ``old`` (or fully matching the pattern)
        becomes ``new``; an empty ``new`` removes it. ``\\1`` groups work with regex.
        """
        if not old:
            raise InvalidInput("The text to search for is empty.", fix="Give the tag or text to replace.")
        name = f"replace {old!r} -> {new!r}"
        if whole_tag:
            pattern = _compile(old) if regex else None

            def fn(tags: list[str]) -> list[str]:
                out: list[str] = []
                for t in tags:
                    if pattern is not None:
                        m = pattern.fullmatch(t)
                        t = m.expand(new) if m else t
                    elif t == old:
                        t = new
                    out.extend(split_tags(t))
                return out

            return self._tag_op(name, fn, selection, preview)
        pattern = _compile(old) if regex else None

        def text_fn(img: str, text: str | None, sep: str) -> str | None:
            if text is None:
                return None
            return pattern.sub(new, text) if pattern is not None else text.replace(old, new)

        return self._bulk(name, self._select(selection), text_fn, preview, text_level=True)

    def remove(self, tags: str | Sequence[str], regex: bool = False, selection=None,
               preview: bool = False) -> EditResult:
        """Remove whole tags (exact, or full regex matches with ``regex=True``)."""
        match = _matcher(_as_list(tags), regex)
        return self._tag_op(f"remove {_as_list(tags)}", lambda ts: [t for t in ts if not match(t)], selection, preview)

    def keep_only(self, tags: str | Sequence[str], regex: bool = False, selection=None,
                  preview: bool = False) -> EditResult:
        """Remove every tag except these."""
        match = _matcher(_as_list(tags), regex)
        return self._tag_op(f"keep_only {_as_list(tags)}", lambda ts: [t for t in ts if match(t)], selection, preview)

    def sort(self, key: str = "alpha", keep: int = 0, selection=None, preview: bool = False) -> EditResult:
        """Sort tags alphabetically (``key="alpha"``) or by dataset frequency (``key="frequency"``).

        The first ``keep`` tags (kohya's keep_tokens) and everything up to a ``|||`` tag stay in place.
        """
        if key not in ("alpha", "frequency"):
            raise InvalidInput(f"key={key!r} is not 'alpha' or 'frequency'.", fix="Use key='alpha'.")
        freq = self.frequencies(selection) if key == "frequency" else None

        def order(t: str):
            return (-freq[t], t.casefold(), t) if freq is not None else (t.casefold(), t)

        def fn(tags: list[str]) -> list[str]:
            n = max(0, keep)
            if KEEP_SEPARATOR in tags:
                n = max(n, tags.index(KEEP_SEPARATOR) + 1)
            return tags[:n] + sorted(tags[n:], key=order)

        return self._tag_op(f"sort by {key}", fn, selection, preview)

    def dedupe(self, selection=None, preview: bool = False) -> EditResult:
        """Drop repeated tags, keeping the first occurrence."""
        return self._tag_op("dedupe", lambda ts: list(dict.fromkeys(ts)), selection, preview)

    def underscores_to_spaces(self, selection=None, preview: bool = False) -> EditResult:
        """``long_hair`` -> ``long hair`` (kaomoji such as ``^_^`` are left alone)."""
        return self._tag_op("underscores_to_spaces",
                            lambda ts: [t if t in KAOMOJI else t.replace("_", " ") for t in ts], selection, preview)

    def spaces_to_underscores(self, selection=None, preview: bool = False) -> EditResult:
        """``long hair`` -> ``long_hair``."""
        return self._tag_op("spaces_to_underscores", lambda ts: [re.sub(r"\s+", "_", t) for t in ts],
                            selection, preview)

    def normalize_whitespace(self, selection=None, preview: bool = False) -> EditResult:
        """One line, single spaces, no empty tags; also rewrites BOM, CRLF or non-UTF-8 files as clean UTF-8."""
        return self._bulk("normalize_whitespace", self._select(selection),
                          lambda img, text, sep: None if text is None else normalize_text(text, sep),
                          preview, text_level=True, compare_bytes=True)

    # -- statistics ------------------------------------------------------------------
    def frequencies(self, selection=None) -> Counter:
        """How many captions contain each tag (a tag repeated in one caption counts once).

        ``.most_common()`` gives the table, most frequent first.
        """
        counts: Counter = Counter()
        for data in self._read_all([self._cap(i) for i in self._select(selection, sort=False)]):
            if data:
                counts.update(set(split_tags(decode_caption(data))))
        return counts

    def filter(self, with_tags: str | Sequence[str] = (), without_tags: str | Sequence[str] = (),
               any_of: bool = False, selection=None) -> list[Path]:
        """Images whose captions have all (or, with ``any_of=True``, any) of ``with_tags`` and none of ``without_tags``."""
        want, avoid = set(_as_list(with_tags)), set(_as_list(without_tags))
        images = self._select(selection)
        out = []
        for img, data in zip(images, self._read_all([self._cap(i) for i in images])):
            tags = set(split_tags(decode_caption(data))) if data else set()
            if want and not ((tags & want) if any_of else want <= tags):
                continue
            if tags & avoid:
                continue
            out.append(Path(img))
        return out

    # -- undo ------------------------------------------------------------------------
    def history(self) -> list[dict]:
        """The bulk operations that can be undone, newest last: ``{"op", "time", "count"}``."""
        out = []
        for d in self._snapshots():
            try:
                head = json.loads((d / "record.json").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            out.append({"op": head.get("op"), "time": head.get("time"), "count": len(head.get("files", {}))})
        return out

    def undo(self) -> EditResult:
        """Restore, byte for byte, the caption files the last bulk operation changed.

        The snapshot holds the old files themselves (hard links, else copies), so each one
        is put back with a single rename.
        """
        snaps = self._snapshots()
        if not snaps:
            raise NotFound(f"Dataset '{self._ds.name}' has no caption edit to undo.",
                           fix="Undo works after a bulk operation such as add_trigger or replace.")
        snap = snaps[-1]
        try:
            record = json.loads((snap / "record.json").read_text(encoding="utf-8"))
            files = record["files"]
        except (OSError, ValueError, KeyError) as e:
            shutil.rmtree(snap, ignore_errors=True)
            raise LoraNbError(f"The undo record {snap.name} is unreadable ({e}) and was removed.",
                              fix="Fix the remaining captions by hand or with another bulk operation.") from None
        root = str(self._ds.path)
        jobs = [(os.path.join(root, rel), None if key is None else os.path.join(snap, key)) for rel, key in files.items()]
        changes = [c for part in self._map(_restore_one, jobs) for c in part if c is not None]
        shutil.rmtree(snap, ignore_errors=True)
        return EditResult(f"undo {record.get('op')}", len(changes), len(changes), False, changes)

    def _snapshots(self) -> list[Path]:
        d = self._undo_dir()
        return sorted(p.parent for p in d.glob("*/record.json")) if d.is_dir() else []

    def _start_snapshot(self, op: str, before: dict[str, bytes | None]) -> tuple[Path, list[str | None]]:
        """Write the record of an operation about to change these files; the old files are
        linked into it one by one as they are replaced (see :func:`_replace_one`)."""
        d = self._undo_dir() / f"{time.time_ns():020d}"
        d.mkdir(parents=True)
        cut = len(str(self._ds.path)) + 1
        keys = [None if b is None else str(i) for i, b in enumerate(before.values())]
        files = {p[cut:].replace(os.sep, "/"): k for p, k in zip(before, keys)}
        atomic_write(d / "record.json", json.dumps({"op": op, "time": time.time(), "files": files}).encode("utf-8"))
        for old in self._snapshots()[:-UNDO_KEEP]:
            shutil.rmtree(old, ignore_errors=True)
        return d, [None if k is None else os.path.join(d, k) for k in keys]

    # -- machinery -------------------------------------------------------------------
    def _select(self, selection, sort: bool = True) -> list[str]:
        if selection is None:
            return self._ds.image_files(sort=sort)
        if isinstance(selection, (str, os.PathLike)) or hasattr(selection, "caption_path"):
            selection = [selection]
        return [os.fspath(self._ds.resolve_image(s)) for s in selection]

    def _read_all(self, paths: list[str]) -> list[bytes | None]:
        if len(paths) < _PARALLEL_MIN:
            return [_read(p) for p in paths]
        chunks = _chunks(paths, _WORKERS)
        with ThreadPoolExecutor(max_workers=len(chunks)) as pool:
            return [d for part in pool.map(lambda c: [_read(p) for p in c], chunks) for d in part]

    def _tag_op(self, name: str, fn: Callable[[list[str]], list[str]], selection, preview: bool,
                create: bool = False) -> EditResult:
        def text_fn(img: str, text: str | None, sep: str) -> str | None:
            if text is None and not create:
                return None
            core = sep.strip() or sep
            own = detect_separator(text, None, core) if text else None
            tags = split_tags(text or "", core)
            new = fn(tags)
            if new == tags and text is not None:
                return text
            return (own or sep).join(new)

        return self._bulk(name, self._select(selection), text_fn, preview)

    def _bulk(self, op: str, images: list[str], fn: Callable[[str, str | None, str], str | None],
              preview: bool, text_level: bool = False, compare_bytes: bool = False) -> EditResult:
        cap_paths = [self._cap(i) for i in images]
        raws = self._read_all(cap_paths)
        texts = [None if r is None else decode_caption(r) for r in raws]
        sep = self._ds.caption_separator or self._majority_separator(texts)
        changes: list[CaptionChange] = []
        writes: list[tuple[str, bytes]] = []
        before: dict[str, bytes | None] = {}
        for img, cap, raw, text in zip(images, cap_paths, raws, texts):
            new = fn(img, text, sep)
            if new is None:
                continue
            data = encode_caption(new, newline=bool(raw and raw.endswith(b"\n")))
            if (raw == data) if compare_bytes or raw is None else (new == text):
                continue
            changes.append(CaptionChange(img, cap, text, new))
            writes.append((cap, data))
            before[cap] = raw
        result = EditResult(op, len(changes), len(images), preview, changes)
        if preview or not writes:
            return result
        snap, keep = self._start_snapshot(op, before)
        jobs = [(path, data, k, old) for (path, data), k, old in zip(writes, keep, before.values())]
        try:
            self._map(_replace_one, jobs)
        except OSError as e:
            self._map(_rollback_one, jobs)
            shutil.rmtree(snap, ignore_errors=True)
            raise LoraNbError(f"Writing captions failed ({e}); every caption was put back as it was.",
                              fix="Check free disk space and file permissions, then try again.") from None
        return result

    def _map(self, fn: Callable[[list], list], items: list) -> list[list]:
        """Run ``fn`` over chunks of ``items`` on threads (file writes wait on the disk, not the CPU)."""
        if len(items) < _PARALLEL_MIN:
            return [fn(items)]
        chunks = _chunks(items, _WRITE_WORKERS)
        with ThreadPoolExecutor(max_workers=len(chunks)) as pool:
            return list(pool.map(fn, chunks))

    @staticmethod
    def _majority_separator(texts: list[str | None]) -> str:
        votes = Counter(detect_separator(t, None) for t in texts[:2000] if t and "," in t)
        votes.pop(None, None)
        return votes.most_common(1)[0][0] if votes else DEFAULT_SEPARATOR


class BulkWriter:
    """See :meth:`Captions.bulk_writer`."""

    def __init__(self, captions: "Captions", snapshot: Path, targets: dict[str, tuple[str, str | None]], before: dict[str, bytes | None]) -> None:
        self._captions, self._snapshot, self._targets, self._before = captions, snapshot, targets, before
        self.written = 0

    def old(self, image_file: str) -> str | None:
        """The caption the image had when the writer started (None: no caption file)."""
        raw = self._before.get(self._targets[os.fspath(image_file)][0])
        return None if raw is None else decode_caption(raw)

    def write(self, image_file: str, text: str) -> bool:
        """Replace one image's caption (kept whole on disk); False when it already had exactly this text."""
        cap, keep = self._targets[os.fspath(image_file)]
        old = self._before[cap]
        data = encode_caption(text, newline=True)
        if old == data:
            return False
        _replace_one([(cap, data, keep, old)])
        self.written += 1
        return True

    def finish(self) -> int:
        """Close the operation; with nothing written it leaves no undo step. Returns the number written."""
        if self.written == 0:
            shutil.rmtree(self._snapshot, ignore_errors=True)
        return self.written
