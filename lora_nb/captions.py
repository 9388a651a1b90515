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

import base64
import json
import os
import re
import tempfile
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


@dataclass(frozen=True)
class CaptionChange:
    image: Path
    caption_path: Path
    before: str | None      # None: there was no caption file
    after: str | None       # None: the caption file is removed (undo of a created caption)


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


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    fd, tmp = tempfile.mkstemp(prefix="." + path.name[:40] + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _read(path: Path) -> bytes | None:
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
        img = self._ds.resolve_image(image)
        return img.with_name(img.stem + self.extension) if img.suffix else img.with_name(img.name + self.extension)

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
        if not self._ds.resolve_image(image).exists():
            raise NotFound(f"There is no image {self._ds.rel(path.with_suffix(''))!r} in dataset '{self._ds.name}'.",
                           fix="Use a path from ds.images().")
        old = _read(path)
        atomic_write(path, encode_caption(text, newline=bool(old and old.endswith(b"\n"))))

    def set_many(self, captions: dict, op: str = "set_many", preview: bool = False) -> EditResult:
        """Write many captions as one undoable bulk operation (the tagger uses this)."""
        wanted = {self._ds.resolve_image(k): v for k, v in captions.items()}
        return self._bulk(op, list(wanted), lambda img, text, sep: wanted[img], preview, text_level=True)

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

        def text_fn(img: Path, text: str | None, sep: str) -> str | None:
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
        for data in self._read_all([self.path_for(i) for i in self._select(selection)]):
            if data:
                counts.update(set(split_tags(decode_caption(data))))
        return counts

    def filter(self, with_tags: str | Sequence[str] = (), without_tags: str | Sequence[str] = (),
               any_of: bool = False, selection=None) -> list[Path]:
        """Images whose captions have all (or, with ``any_of=True``, any) of ``with_tags`` and none of ``without_tags``."""
        want, avoid = set(_as_list(with_tags)), set(_as_list(without_tags))
        images = self._select(selection)
        out = []
        for img, data in zip(images, self._read_all([self.path_for(i) for i in images])):
            tags = set(split_tags(decode_caption(data))) if data else set()
            if want and not ((tags & want) if any_of else want <= tags):
                continue
            if tags & avoid:
                continue
            out.append(img)
        return out

    # -- undo ------------------------------------------------------------------------
    def history(self) -> list[dict]:
        """The bulk operations that can be undone, newest last: ``{"op", "time", "count"}``."""
        out = []
        for p in self._snapshots():
            try:
                head = json.loads(p.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            out.append({"op": head.get("op"), "time": head.get("time"), "count": len(head.get("files", {}))})
        return out

    def undo(self) -> EditResult:
        """Restore, byte for byte, the caption files the last bulk operation changed."""
        snaps = self._snapshots()
        if not snaps:
            raise NotFound(f"Dataset '{self._ds.name}' has no caption edit to undo.",
                           fix="Undo works after a bulk operation such as add_trigger or replace.")
        snap = snaps[-1]
        try:
            record = json.loads(snap.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            snap.unlink(missing_ok=True)
            raise LoraNbError(f"The undo record {snap.name} is unreadable ({e}) and was removed.",
                              fix="Fix the remaining captions by hand or with another bulk operation.") from None
        changes = []
        for rel, b64 in record["files"].items():
            path = self._ds.path / rel
            now = _read(path)
            if b64 is None:
                path.unlink(missing_ok=True)
                after = None
            else:
                data = base64.b64decode(b64)
                atomic_write(path, data)
                after = decode_caption(data)
            changes.append(CaptionChange(path, path, None if now is None else decode_caption(now), after))
        snap.unlink()
        return EditResult(f"undo {record.get('op')}", len(changes), len(changes), False, changes)

    def _snapshots(self) -> list[Path]:
        d = self._undo_dir()
        return sorted(d.glob("*.json")) if d.is_dir() else []

    def _save_snapshot(self, op: str, before: dict[Path, bytes | None]) -> Path:
        d = self._undo_dir()
        d.mkdir(parents=True, exist_ok=True)
        files = {self._ds.rel(p): (None if b is None else base64.b64encode(b).decode("ascii")) for p, b in before.items()}
        path = d / f"{time.time_ns():020d}.json"
        atomic_write(path, json.dumps({"op": op, "time": time.time(), "files": files}).encode("utf-8"))
        for old in self._snapshots()[:-UNDO_KEEP]:
            old.unlink(missing_ok=True)
        return path

    # -- machinery -------------------------------------------------------------------
    def _select(self, selection) -> list[Path]:
        if selection is None:
            return self._ds.image_paths()
        if isinstance(selection, (str, os.PathLike)) or hasattr(selection, "caption_path"):
            selection = [selection]
        return [self._ds.resolve_image(s) for s in selection]

    def _read_all(self, paths: list[Path]) -> list[bytes | None]:
        if len(paths) < _PARALLEL_MIN:
            return [_read(p) for p in paths]
        with ThreadPoolExecutor(max_workers=4) as pool:
            return list(pool.map(_read, paths, chunksize=256))

    def _tag_op(self, name: str, fn: Callable[[list[str]], list[str]], selection, preview: bool,
                create: bool = False) -> EditResult:
        def text_fn(img: Path, text: str | None, sep: str) -> str | None:
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

    def _bulk(self, op: str, images: list[Path], fn: Callable[[Path, str | None, str], str | None],
              preview: bool, text_level: bool = False, compare_bytes: bool = False) -> EditResult:
        cap_paths = [self.path_for(i) for i in images]
        raws = self._read_all(cap_paths)
        texts = [None if r is None else decode_caption(r) for r in raws]
        sep = self._ds.caption_separator or self._majority_separator(texts)
        changes: list[CaptionChange] = []
        writes: list[tuple[Path, bytes]] = []
        before: dict[Path, bytes | None] = {}
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
        snap = self._save_snapshot(op, before)
        try:
            self._write_all(writes)
        except OSError as e:
            for path, old in before.items():  # roll back what was written
                try:
                    path.unlink(missing_ok=True) if old is None else atomic_write(path, old)
                except OSError:
                    pass
            snap.unlink(missing_ok=True)
            raise LoraNbError(f"Writing captions failed ({e}); every caption was put back as it was.",
                              fix="Check free disk space and file permissions, then try again.") from None
        return result

    def _write_all(self, writes: list[tuple[Path, bytes]]) -> None:
        if len(writes) < _PARALLEL_MIN:
            for path, data in writes:
                atomic_write(path, data)
            return
        with ThreadPoolExecutor(max_workers=4) as pool:
            for _ in pool.map(lambda w: atomic_write(*w), writes, chunksize=256):
                pass

    @staticmethod
    def _majority_separator(texts: list[str | None]) -> str:
        votes = Counter(detect_separator(t, None) for t in texts[:2000] if t and "," in t)
        votes.pop(None, None)
        return votes.most_common(1)[0][0] if votes else DEFAULT_SEPARATOR
