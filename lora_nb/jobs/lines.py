"""Split a byte stream into logical console lines, the way a terminal shows them.

A progress bar redraws its line with ``\\r``; each redraw is one logical line that
*replaces* the previous one. ``LineSplitter`` yields ``(text, ends_with_cr)``
pairs; ``collapse`` turns raw log text into what a terminal would show.

>>> s = LineSplitter()
>>> list(s.feed(b"a 1/3\\ra 2/3\\ra 3/3\\ndone\\npart"))
[('a 1/3', True), ('a 2/3', True), ('a 3/3', False), ('done', False)]
>>> list(s.feed(b"ial\\n"))
[('partial', False)]
>>> collapse("x 1/2\\rx 2/2\\nok\\n")
['x 2/2', 'ok']
"""
from __future__ import annotations

import codecs
import re
from typing import Iterator

__all__ = ["LineSplitter", "collapse", "MAX_LINE"]

MAX_LINE = 64 * 1024          # a "line" longer than this is cut into pieces (binary junk, huge JSON)
_SPLIT = re.compile(r"(\r\n|\r|\n)")


class LineSplitter:
    """Incremental UTF-8 decoding plus splitting on ``\\r``, ``\\n`` and ``\\r\\n``."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buf = ""

    def feed(self, data: bytes) -> Iterator[tuple[str, bool]]:
        text = self._buf + self._decoder.decode(data)
        # a trailing "\r" may be the first half of "\r\n": keep it until the next chunk
        hold_cr = text.endswith("\r")
        if hold_cr:
            text = text[:-1]
        parts = _SPLIT.split(text)
        self._buf = parts[-1] + ("\r" if hold_cr else "")
        for i in range(0, len(parts) - 1, 2):
            yield parts[i], parts[i + 1] == "\r"
        while len(self._buf) > MAX_LINE and not self._buf.endswith("\r"):
            yield self._buf[:MAX_LINE], False
            self._buf = self._buf[MAX_LINE:]

    def flush(self) -> Iterator[tuple[str, bool]]:
        """Whatever is left at the end of the stream."""
        text = self._buf + self._decoder.decode(b"", final=True)
        self._buf = ""
        if text.endswith("\r"):
            text = text[:-1]
            if text:
                yield text, True
            return
        if text:
            yield text, False


def collapse(text: str) -> list[str]:
    """Lines as a terminal shows them: each ``\\r`` redraw replaces the line it redraws."""
    out = []
    for raw in text.replace("\r\n", "\n").split("\n"):
        segments = [s for s in raw.split("\r") if s]
        out.append(segments[-1] if segments else "")
    if out and out[-1] == "" and text.endswith(("\n", "\r")):
        out.pop()
    return out


class CoalescingFeeder:
    """Feeds logical lines to a parser, skipping ``\\r`` frames that a newer frame replaced.

    A bar that redraws 10,000 times a second needs parsing only when someone can
    see it: the newest frame is parsed on :meth:`tick` (called at the publishing
    rate) and before any newline-ended line, so the parser still sees every line
    that ends and the frames it sees are in order. Two frames are never skipped: a
    blank frame (tqdm clearing its bar to print a line) does not replace the frame
    before it, and the first frame after a printed line is parsed at once (tqdm redraws
    the bar there, showing the step that line belongs to, e.g. a Trainer's loss dict).

    >>> class P:
    ...     def __init__(self): self.seen = []
    ...     def feed(self, line): self.seen.append(line); return []
    >>> f = CoalescingFeeder(P())
    >>> for i in range(5): _ = f.feed(f"bar {i}/5", True)
    >>> _ = f.feed("done", False); f.parser.seen
    ['bar 4/5', 'done']
    >>> for t in ("bar 5/9", "   ", "", "loss 0.1"): _ = f.feed(t, t != "loss 0.1")
    >>> for i in (5, 6, 7): _ = f.feed(f"bar {i}/9", True)
    >>> f.parser.seen[2:]
    ['bar 5/9', 'loss 0.1', 'bar 5/9']
    """

    __slots__ = ("parser", "pending", "after_line")

    def __init__(self, parser: "object") -> None:
        self.parser = parser
        self.pending: str | None = None
        self.after_line = False

    def feed(self, text: str, redraw: bool) -> list:
        if redraw:
            if not text.strip():
                return []
            if self.after_line:
                self.after_line = False
                return list(self.parser.feed(text))  # type: ignore[attr-defined]
            self.pending = text
            return []
        self.after_line = True
        events = self.tick()
        events.extend(self.parser.feed(text))  # type: ignore[attr-defined]
        return events

    def tick(self) -> list:
        if self.pending is None:
            return []
        text, self.pending = self.pending, None
        return list(self.parser.feed(text))  # type: ignore[attr-defined]
