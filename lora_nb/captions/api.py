"""``ds.captions``: the public face of a dataset's captions: read, write, bulk edits with preview and undo, tag statistics.

One caption per image, in ``<image stem><ext>`` beside it (``.txt`` unless the dataset
uses ``.caption``), written as UTF-8. One caption is written atomically (temporary
file + rename). Bulk operations work on the whole dataset or a selection, keep each
caption's separator (``", "`` or ``","``), return an :class:`EditResult` and can be
previewed without writing. They are all-or-nothing: the old bytes of every caption
they change are journaled first (:mod:`lora_nb.captions.journal`, run by :mod:`lora_nb.captions.bulk`), so a crash part-way is
rolled back the next time the dataset's captions are used, and :meth:`Captions.undo`
restores them byte for byte. Bulk operations and tag statistics read through a
persisted cache (:mod:`lora_nb.captions.cache`) that re-reads only changed captions.

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

import re
from collections import Counter
from pathlib import Path
from typing import Callable, Iterable, Sequence

from ..errors import InvalidInput, NotFound
from ..files import read_or_none
from ..gc_pause import gc_paused
from . import bulk
from .bulk import BulkWriter, CaptionChange, EditResult
from .journal import UNDO_KEEP
from .store import CaptionFolder, CaptionStore, ImageRef
from .text import KAOMOJI, decode_caption, normalize_text, split_tags

__all__ = ["Captions", "EditResult", "CaptionChange", "BulkWriter", "UNDO_KEEP", "KEEP_SEPARATOR"]

KEEP_SEPARATOR = "|||"   # kohya's usual keep_tokens_separator: tags before it stay put when sorting


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

    def __init__(self, dataset: CaptionFolder) -> None:
        self._ds = dataset
        self._store = CaptionStore(dataset)

    # -- paths -----------------------------------------------------------------------
    @property
    def extension(self) -> str:
        return self._store.extension

    def path_for(self, image: ImageRef) -> Path:
        """The caption file of an image (which may not exist yet)."""
        return self._store.path_for(image)

    def recover(self) -> list[str]:
        """Finish bulk edits whose process died while writing (rolled back; a tagging job's
        finished captions are kept). Every public operation does this first; returns what was done."""
        return self._store.undo_log().recover()

    # -- one caption -----------------------------------------------------------------
    def get(self, image: ImageRef, default: str | None = None) -> str | None:
        """The caption text (decoded tolerantly, line ends normalised), or ``default`` when there is none."""
        return self._store.get(image, default)

    def set(self, image: ImageRef, text: str) -> None:
        """Write one caption atomically as UTF-8 (keeping a trailing newline if the old file had one)."""
        self._store.set(image, text)

    def set_many(self, captions: dict, op: str = "set_many", preview: bool = False) -> EditResult:
        """Write many captions as one undoable bulk operation (the tagger uses this)."""
        wanted = {self._store.image_file(k): v for k, v in captions.items()}
        return bulk.apply(self._store, op, list(wanted), lambda img, text, sep: wanted[img], preview)

    def bulk_writer(self, op: str, images: Sequence[ImageRef]) -> BulkWriter:
        """Write captions one by one as a single undoable operation (the tagging job uses this).

        The current captions of ``images`` are recorded first; each :meth:`BulkWriter.write` then
        replaces one file atomically, so a stopped writer leaves every caption whole, and
        ``undo()`` puts back exactly the ones it changed.
        """
        files = [self._store.image_file(i) for i in images]
        caps = self._store.cap_paths(files)
        before = {c: read_or_none(c) for c in caps}
        step = self._store.recovered().begin(op, before, mode="keep")
        return BulkWriter(step, dict(zip(files, caps)), before)

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
            if where == "start" and tset.isdisjoint(tags):    # the usual case, without a scan per tag
                return trig + tags
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

        return bulk.apply(self._store, name, self._store.select(selection), text_fn, preview)

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
        return bulk.apply(self._store, "normalize_whitespace", self._store.select(selection),
                          lambda img, text, sep: None if text is None else normalize_text(text, sep),
                          preview, compare_bytes=True)

    def reencode_utf8(self, selection=None, encoding: str | None = None, preview: bool = False) -> EditResult:
        """Rewrite captions that are not clean UTF-8 (other encodings, byte-order marks, UTF-16) as UTF-8,
        text unchanged otherwise; undoable with :meth:`undo`, which puts the old bytes back.

        Without ``encoding``, valid UTF-8 stays and other bytes are read as Windows-1252 (see
        :func:`lora_nb.captions.text.decode_legacy`); pass ``encoding="shift_jis"`` (any Python codec) when
        you know the files were written in another one. A file that does not decode with it raises InvalidInput.
        """
        from .text import caption_problem, decode_legacy

        images = self._store.select(selection)
        if encoding is not None:
            import codecs

            try:
                codecs.lookup(encoding)
            except LookupError:
                raise InvalidInput(f"{encoding!r} is not a text encoding Python knows.",
                                   fix="Use a codec name such as 'cp1252', 'latin-1' or 'shift_jis', or leave it out.") from None

        def text_fn(img: str, text: str | None, sep: str) -> str | None:
            raw = None if text is None else read_or_none(self._store.cap_paths([img])[0])
            why = None if raw is None else caption_problem(raw)
            if why not in ("is not UTF-8", "starts with a byte-order mark"):
                return None          # clean, missing, empty or only multi-line: not this operation's business
            if encoding is None or why != "is not UTF-8":
                return text
            try:
                return decode_caption(decode_legacy(raw, encoding).encode("utf-8"))
            except UnicodeDecodeError as e:
                raise InvalidInput(f"The caption of {Path(img).name} is not {encoding} ({e.reason} at byte {e.start}).",
                                   fix="Leave encoding out to read it as Windows-1252, or name the right encoding.") from None

        return bulk.apply(self._store, "reencode_utf8", images, text_fn, preview, compare_bytes=True)

    # -- statistics ------------------------------------------------------------------
    def frequencies(self, selection=None) -> Counter:
        """How many captions contain each tag (a tag repeated in one caption counts once).

        ``.most_common()`` gives the table, most frequent first. Served from the dataset's
        caption cache (see :mod:`lora_nb.captions.cache`): only captions changed since the
        last count are read again.
        """
        self._store.recovered()
        files = self._store.cap_paths(self._store.select(selection, sort=False))
        return self._store.cache().counts(files, complete=selection is None)

    def filter(self, with_tags: str | Sequence[str] = (), without_tags: str | Sequence[str] = (),
               any_of: bool = False, selection=None) -> list[Path]:
        """Images whose captions have all (or, with ``any_of=True``, any) of ``with_tags`` and none of ``without_tags``."""
        want, avoid = set(_as_list(with_tags)), set(_as_list(without_tags))
        self._store.recovered()
        images = self._store.select(selection)
        out = []
        for img, tags in zip(images, self._store.cache().tag_sets(self._store.cap_paths(images))):
            if want and not ((tags & want) if any_of else want <= tags):
                continue
            if tags & avoid:
                continue
            out.append(Path(img))
        return out

    # -- undo ------------------------------------------------------------------------
    def history(self) -> list[dict]:
        """The bulk operations that can be undone, newest last: ``{"op", "time", "count"}``."""
        return self._store.recovered().history()

    @gc_paused()
    def undo(self) -> EditResult:
        """Restore, byte for byte, the caption files the last bulk operation changed.

        Safe to run again if it is interrupted: the undo step stays until every caption is back.
        """
        try:
            op, restored = self._store.recovered().undo_last()
        except NotFound:
            raise NotFound(f"Dataset '{self._ds.name}' has no caption edit to undo.",
                           fix="Undo works after a bulk operation such as add_trigger or replace.") from None
        changes = [CaptionChange(p, p, None if now is None else decode_caption(now),
                                 None if old is None else decode_caption(old)) for p, now, old in restored]
        return EditResult(f"undo {op}", len(changes), len(changes), False, changes)

    # -- machinery -------------------------------------------------------------------
    def _tag_op(self, name: str, fn: Callable[[list[str]], list[str]], selection, preview: bool,
                create: bool = False) -> EditResult:
        text_fn = bulk.tag_edit(fn, self._ds.caption_separator, create=create)
        return bulk.apply(self._store, name, self._store.select(selection), text_fn, preview)
