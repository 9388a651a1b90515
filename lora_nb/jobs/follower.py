"""Kernel-side following of one job: tail its log, parse it, publish events at a bounded rate.

The follower runs in a daemon thread (never the kernel's main thread). It reads the
log from a stored offset, splits on ``\\r`` and ``\\n`` (a bar that redraws 10,000
times is one line that changes), keeps a bounded tail, folds progress updates into
one snapshot, and calls subscribers at most ``rate`` times a second with whatever
accumulated: the newest progress, new artifacts/hints/messages, new log lines
(bounded) and status changes.
"""
from __future__ import annotations

import collections
import threading
import time
from pathlib import Path
from typing import Any, Callable

from .events import Event, EventKind, JobStatus, Progress
from .lines import LineSplitter

__all__ = ["Follower", "TAIL_LINES"]

TAIL_LINES = 2000
READ_CHUNK = 1 << 20


class Follower:
    """Follows one job's log file; ``subscribe`` callbacks get lists of events."""

    def __init__(self, job: Any, rate: float = 10.0, poll: float = 0.1) -> None:
        from .parsers import get_parser

        self.job = job
        self.log_path: Path = job.log_path
        self.interval = 1.0 / rate
        self.poll = poll
        rec = job._record()
        self.parser = get_parser(rec.parser, job.run_dir, rec.parser_options)
        self.offset = 0
        self.splitter = LineSplitter()
        self.tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self.partial: str | None = None           # the line being redrawn with \r
        self.progress = Progress.from_dict(rec.progress)
        self.status = rec.status
        self.lines_seen = 0
        self._subs: list[Callable[[list[Event]], None]] = []
        self._lock = threading.Lock()
        self._pending: list[Event] = []
        self._pending_lines: list[str] = []
        self._progress_dirty = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"follow-{job.id}", daemon=True)
        self._thread.start()

    # -- subscribers -------------------------------------------------------------
    def subscribe(self, callback: Callable[[list[Event]], None]) -> Callable[[], None]:
        with self._lock:
            self._subs.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subs:
                    self._subs.remove(callback)
        return unsubscribe

    def close(self) -> None:
        self._stop.set()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def snapshot_tail(self, n: int) -> list[str]:
        with self._lock:
            lines = list(self.tail)
            if self.partial:
                lines.append(self.partial)
        return lines[-n:]

    # -- the loop ----------------------------------------------------------------
    def _ingest(self, data: bytes) -> None:
        self._ingest_pieces(self.splitter.feed(data))

    def _ingest_pieces(self, pieces: Any) -> None:
        for text, redraw in pieces:
            self.lines_seen += 1
            with self._lock:
                if redraw:
                    self.partial = text
                else:
                    self.partial = None
                    self.tail.append(text)
                    if len(self._pending_lines) < TAIL_LINES:
                        self._pending_lines.append(text)
            for event in self.parser.feed(text):
                if event.kind is EventKind.PROGRESS:
                    self.progress = self.progress.merged(Progress.from_dict(event.data))
                    self._progress_dirty = True
                else:
                    self._pending.append(event)

    def _read_available(self) -> bool:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self.offset)
                data = f.read(READ_CHUNK)
        except FileNotFoundError:
            return False
        if not data:
            return False
        self.offset += len(data)
        self._ingest(data)
        return True

    def _publish(self) -> None:
        events: list[Event] = []
        if self._progress_dirty:
            events.append(Event(EventKind.PROGRESS, self.progress.to_dict(), self.job.id))
            self._progress_dirty = False
        with self._lock:
            if self._pending_lines:
                events.append(Event(EventKind.LOG, {"lines": self._pending_lines, "partial": self.partial}, self.job.id))
                self._pending_lines = []
            subs = list(self._subs)
        events.extend(self._pending)
        self._pending = []
        if not events:
            return
        for cb in subs:
            try:
                cb(events)
            except Exception:  # a broken subscriber must not kill the follower
                pass

    def _run(self) -> None:
        last_publish = 0.0
        last_status = 0.0
        while not self._stop.is_set():
            got = self._read_available()
            now = time.monotonic()
            if now - last_status > 0.5:
                last_status = now
                status = self.job._refresh_status()
                if status != self.status:
                    self.status = status
                    if status.is_final:
                        while self._read_available():
                            pass
                        self._ingest_pieces(self.splitter.flush())
                    self._pending.append(Event(EventKind.STATUS, {"status": status.value}, self.job.id))
            if now - last_publish >= self.interval:
                last_publish = now
                self._publish()
            if self.status.is_final and not got:
                self._publish()
                return
            if not got:
                self._stop.wait(self.poll)
