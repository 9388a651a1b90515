"""A persisted cache of a dataset's caption files: their bytes and their tags.

Reading 100,000 small files costs an open, a read and a close each; checking that they
did not change costs one ``stat``. The cache lives in
``<dataset>/.lora-nb/caption-cache.bin`` and each entry carries a fingerprint of the
caption file's ``stat`` (inode, size, modification and change times): a caption whose
fingerprint differs is read again, so the cache can never serve bytes the file no longer
holds. A file changed within :data:`lora_nb.files.RACY_NS` of being read is kept
without a fingerprint (timestamps are coarse; git's "racily clean" rule), and every
entry's bytes carry a CRC-32 checked when they are used, so a damaged cache file costs
a re-read, never a wrong caption. Tags are parsed only when statistics ask for them,
and the number of captions holding each tag is kept up to date as entries change.

>>> import tempfile, pathlib
>>> root = pathlib.Path(tempfile.mkdtemp()); (root / "a.txt").write_text("1girl, smile")
12
>>> cache = CaptionCache(root / "cache.bin", root)
>>> sorted(cache.counts([str(root / "a.txt")], complete=True).items())
[('1girl', 1), ('smile', 1)]
>>> cache.read_many([str(root / "a.txt"), str(root / "b.txt")])
[b'1girl, smile', None]
"""
from __future__ import annotations

import marshal
import os
import threading
import time
import zlib
from array import array
from collections import Counter
from itertools import chain
from pathlib import Path
from typing import Iterable

from .text import decode_caption, split_tags
from ..files import RACY_NS, atomic_write, read_or_none
from ..gc_pause import gc_paused

__all__ = ["CaptionCache", "cache_for"]

_MAGIC = b"LNBCAPCACHE1\n"
_NO_FP = 0                # "read this caption again next time"
_cache: dict[str, "CaptionCache"] = {}
_cache_lock = threading.Lock()


def cache_for(path: Path, root: Path) -> "CaptionCache":
    """The process-wide cache object for this file (loaded once, reloaded when another process saved it)."""
    key = os.fspath(path)
    with _cache_lock:
        c = _cache.get(key)
        if c is None or c.root != Path(root):
            c = _cache[key] = CaptionCache(path, root)
        return c


class CaptionCache:
    """Bytes and tag sets of the caption files under ``root``, persisted to ``path``. Thread-safe."""

    def __init__(self, path: Path, root: Path) -> None:
        self.path, self.root = Path(path), Path(root)
        self._cut = len(str(self.root)) + 1
        self._lock = threading.Lock()
        self._loaded_sig: tuple | None = None
        self._reset()

    def _reset(self) -> None:
        self.vocab: list[str] = []
        self._ids: dict[str, int] = {}
        self._pos: dict[str, int] = {}               # relative caption path -> entry number
        self._fp: list[int] = []                     # stat fingerprint per entry (0: read again)
        self._data: list[bytes | None] = []          # bytes per entry (None: entry dropped)
        self._tags: list[tuple[int, ...] | None] = []   # tag ids per entry (None: not parsed yet)
        self._pending: set[int] = set()              # live entries not parsed yet
        self._totals: list[int] = []                 # parsed live entries holding each tag
        self._packed: tuple | None = None            # bytes and tags as loaded, unpacked on first need
        self._dirty = False

    # -- persistence ---------------------------------------------------------------------
    def _file_sig(self) -> tuple | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def _load(self) -> None:
        sig = self._file_sig()
        if sig == self._loaded_sig:      # unchanged since we loaded or saved it (or still absent)
            return
        self._reset()
        self._loaded_sig = sig
        raw = read_or_none(self.path) if sig is not None else None
        if not raw or not raw.startswith(_MAGIC):
            return
        try:
            vocab, names, fps, crcs, blob, lens, flat, tlens, totals = marshal.loads(raw[len(_MAGIC):])
            fp, crc, ln, fl, tl, tot = (array(t) for t in "qqqIqq")
            for arr, b in ((fp, fps), (crc, crcs), (ln, lens), (fl, flat), (tl, tlens), (tot, totals)):
                arr.frombytes(b)
            n = len(names)
            if not (len(fp) == len(crc) == len(ln) == len(tl) == n and sum(ln) == len(blob)
                    and sum(x for x in tl if x > 0) == len(fl) and len(tot) == len(vocab)):
                raise ValueError("inconsistent lengths")
            self.vocab, self._fp, self._totals = list(vocab), fp.tolist(), tot.tolist()
            self._packed = (blob, ln, crc, fl, tl)
            self._ids = {t: i for i, t in enumerate(self.vocab)}
            self._pos = dict(zip(names, range(n)))
        except Exception:     # any damage: start again from the captions themselves
            self._reset()

    def _unpack(self) -> None:
        """Per-entry bytes and tags from the loaded file (a count with nothing changed never needs them)."""
        if self._packed is None:
            return
        blob, ln, crc, fl, tl = self._packed
        self._packed = None
        data, tags, pending, a, b = [], [], set(), 0, 0
        fp = self._fp
        for i, (size, ntags, c) in enumerate(zip(ln, tl, crc)):
            d = blob[a:a + size]
            a += size
            data.append(d)
            if zlib.crc32(d) != c:
                fp[i] = _NO_FP           # damaged: the file is read again
            if ntags < 0:
                tags.append(None)
                pending.add(i)
            else:
                tags.append(tuple(fl[b:b + ntags]))
                b += ntags
        self._data, self._tags, self._pending = data, tags, pending

    def _save(self) -> None:
        if not self._dirty:
            return
        self._unpack()
        names = list(self._pos)
        order = list(self._pos.values())
        data = [self._data[i] for i in order]
        tags = [self._tags[i] for i in order]
        fps = array("q", [self._fp[i] for i in order])
        payload = marshal.dumps((
            self.vocab, names, fps.tobytes(), array("q", [zlib.crc32(d) for d in data]).tobytes(),
            b"".join(data), array("q", [len(d) for d in data]).tobytes(),
            array("I", chain.from_iterable(t for t in tags if t)).tobytes(),
            array("q", [-1 if t is None else len(t) for t in tags]).tobytes(),
            array("q", self._totals).tobytes()))
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(self.path, _MAGIC + payload)
        except OSError:       # a read-only dataset: the cache simply stays in memory
            return
        self._data, self._tags, self._fp = data, tags, fps.tolist()
        self._pending = {k for k, i in enumerate(order) if i in self._pending}
        self._pos = dict(zip(names, range(len(names))))
        self._dirty = False
        self._loaded_sig = self._file_sig()

    # -- queries -----------------------------------------------------------------------
    @gc_paused()
    def read_many(self, caption_files: list[str]) -> list[bytes | None]:
        """The current bytes of these captions (None: no caption file), reading only changed ones.

        What it learns stays in memory; the next count saves it."""
        with self._lock:
            self._load()
            self._unpack()
            data = self._data
            return [None if i is None else data[i] for i in self._refresh(caption_files, False)]

    @gc_paused()
    def counts(self, caption_files: Iterable[str], complete: bool = False) -> Counter:
        """How many of these captions hold each tag. ``complete=True`` says the list is every
        caption of the dataset, so entries of captions no longer there are dropped."""
        with self._lock:
            self._load()
            entries = [i for i in self._refresh(caption_files, complete) if i is not None]
            if not complete:
                self._unpack()
            self._parse_pending()
            if complete:
                out = Counter({self.vocab[i]: n for i, n in enumerate(self._totals) if n})
            else:
                c = Counter(chain.from_iterable(self._tags[i] for i in entries))
                out = Counter({self.vocab[i]: n for i, n in c.items()})
            self._save()
            return out

    @gc_paused()
    def tag_sets(self, caption_files: list[str]) -> list[frozenset[str]]:
        """The tags of each caption (an empty set when there is no caption file)."""
        with self._lock:
            self._load()
            entries = self._refresh(caption_files, False)
            self._unpack()
            self._parse_pending()
            vocab, tags = self.vocab, self._tags
            out = [frozenset() if i is None else frozenset(vocab[t] for t in tags[i]) for i in entries]
            self._save()
            return out

    # -- machinery ---------------------------------------------------------------------
    def _refresh(self, caption_files: Iterable[str], complete: bool) -> list[int | None]:
        """Entry numbers for these files (None: no caption), re-reading any whose stat changed."""
        racy_after = time.time_ns() - RACY_NS
        pos, fp, stat, cut = self._pos, self._fp, os.stat, self._cut
        out: list[int | None] = []
        for path in caption_files:
            try:
                st = stat(path)
            except (FileNotFoundError, NotADirectoryError):
                out.append(None)
                continue
            rel = path[cut:]
            i = pos.get(rel)
            f = hash((st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)) or 1
            if i is None or fp[i] != f:
                i = self._reread(rel, i, path, f if st.st_ctime_ns < racy_after else _NO_FP)
            out.append(i)
        if complete:
            seen = set(out)
            for name, i in [(name, i) for name, i in pos.items() if i not in seen]:
                self._forget(i)
                del pos[name]
        return out

    def _reread(self, rel: str, i: int | None, path: str, fingerprint: int) -> int | None:
        self._unpack()
        data = read_or_none(path)
        if data is None:
            return None
        if i is None:
            i = self._pos[rel] = len(self._data)
            self._data.append(None)
            self._tags.append(None)
            self._fp.append(_NO_FP)
        if self._data[i] != data:
            self._forget(i)
            self._data[i] = data
            self._pending.add(i)
        if self._fp[i] != fingerprint:
            self._fp[i] = fingerprint
            self._dirty = True
        return i

    def _forget(self, i: int) -> None:
        """Take an entry's tags out of the totals (its bytes changed or its caption is gone)."""
        self._unpack()
        tags = self._tags[i]
        if tags is not None:
            totals = self._totals
            for n in tags:
                totals[n] -= 1
        self._tags[i] = None
        self._pending.discard(i)
        self._dirty = True

    def _parse_pending(self) -> None:
        """Parse the tags of entries read since the last parse, and count them in the totals."""
        if self._packed is not None and -1 in self._packed[4]:
            self._unpack()
        if not self._pending:
            return
        ids, vocab, totals, tags_of, data = self._ids, self.vocab, self._totals, self._tags, self._data
        added: list[int] = []
        for i in self._pending:
            new = []
            for t in set(split_tags(decode_caption(data[i] or b""))):
                n = ids.get(t)
                if n is None:
                    n = ids[t] = len(vocab)
                    vocab.append(t)
                    totals.append(0)
                new.append(n)
            tags_of[i] = tuple(sorted(new))
            added.extend(new)
        for n, k in Counter(added).items():
            totals[n] += k
        self._pending.clear()
        self._dirty = True
