"""Bulk caption edits: the all-or-nothing write of many captions, its result, and the one-by-one writer.

:func:`apply` reads every caption through the cache, computes the new texts, and, unless it is a
preview, journals the old bytes of every caption it changes (:mod:`lora_nb.captions.journal`)
before rewriting them, so a crash part-way is rolled back the next time the captions are used.
:func:`tag_edit` turns a function on a tag list into a text function that keeps each caption's
separator. :class:`BulkWriter` is the tagger's variant: captions written one by one as one operation.

>>> fn = tag_edit(lambda tags: ["alice"] + tags, separator=", ")
>>> fn("a.png", "1girl,smile", ", ")
'alice,1girl,smile'
>>> fn("b.png", None, ", ") is None
True
"""
from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, NamedTuple

from ..gc_pause import gc_paused
from .journal import Step
from .store import CaptionStore
from .text import DEFAULT_SEPARATOR, decode_caption, detect_separator, encode_caption, split_tags

__all__ = ["CaptionChange", "EditResult", "BulkWriter", "TextFn", "apply", "tag_edit", "majority_separator"]

TextFn = Callable[[str, "str | None", str], "str | None"]   # (image file, old text or None, separator) -> new text or None


class CaptionChange(NamedTuple):
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


def tag_edit(fn: Callable[[list[str]], list[str]], separator: str | None, create: bool = False) -> TextFn:
    """A text function applying ``fn`` to each caption's tag list, keeping that caption's own separator.

    ``separator`` is the dataset's declared separator (None: detect per caption); with ``create``,
    images without a caption get ``fn([])``.
    """
    core = (separator or DEFAULT_SEPARATOR).strip() or separator or DEFAULT_SEPARATOR

    def text_fn(img: str, text: str | None, sep: str) -> str | None:
        if text is None:
            return sep.join(fn([])) if create else None
        own = detect_separator(text, None, core) if text else None
        tags = split_tags(text, core)
        new = fn(tags)
        if new == tags:
            return text
        return (own or sep).join(new)

    return text_fn


def majority_separator(texts: list[str | None]) -> str:
    """The separator most captions use (of the first 2,000 with a comma), else ``", "``."""
    votes = Counter(detect_separator(t, None) for t in texts[:2000] if t and "," in t)
    votes.pop(None, None)
    return votes.most_common(1)[0][0] if votes else DEFAULT_SEPARATOR


@gc_paused()
def apply(store: CaptionStore, op: str, images: list[str], fn: TextFn, preview: bool,
          compare_bytes: bool = False) -> EditResult:
    """Run ``fn`` over the captions of ``images`` as one journaled, undoable operation called ``op``."""
    log = store.recovered()
    cap_paths = store.cap_paths(images)
    raws = store.cache().read_many(cap_paths)
    texts = [None if r is None else decode_caption(r) for r in raws]
    sep = store.folder.caption_separator or majority_separator(texts)
    changes: list[CaptionChange] = []
    writes: list[tuple[str, bytes]] = []
    olds: list[bytes | None] = []
    add_change, add_write, add_old = changes.append, writes.append, olds.append
    for img, cap, raw, text in zip(images, cap_paths, raws, texts):
        new = fn(img, text, sep)
        if new is None or (new == text and not compare_bytes):
            continue
        data = encode_caption(new, newline=raw is not None and raw.endswith(b"\n"))
        if raw == data:
            continue
        add_change(CaptionChange(img, cap, text, new))
        add_write((cap, data))
        add_old(raw)
    result = EditResult(op, len(changes), len(images), preview, changes)
    if preview or not writes:
        return result
    step = log.begin(op, dict(zip([w[0] for w in writes], olds)), dict(writes))
    step.write(writes)
    step.commit()
    return result


class BulkWriter:
    """Captions written one by one as one undoable operation; made by :meth:`Captions.bulk_writer`."""

    def __init__(self, step: Step, targets: dict[str, str], before: dict[str, bytes | None]) -> None:
        self._step, self._targets, self._before = step, targets, before

    @property
    def written(self) -> int:
        return self._step.written

    def old(self, image_file: str) -> str | None:
        """The caption the image had when the writer started (None: no caption file)."""
        raw = self._before.get(self._targets[os.fspath(image_file)])
        return None if raw is None else decode_caption(raw)

    def write(self, image_file: str, text: str) -> bool:
        """Replace one image's caption (kept whole on disk); False when it already had exactly this text."""
        cap = self._targets[os.fspath(image_file)]
        data = encode_caption(text, newline=True)
        if self._before[cap] == data:
            return False
        self._step.write_replacing(cap, data)
        return True

    def finish(self) -> int:
        """Close the operation; with nothing written it leaves no undo step. Returns the number written."""
        self._step.commit()
        return self._step.written
