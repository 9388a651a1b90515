"""Kernel-side following of one job: a bounded live log tail plus events, at a bounded rate.

The supervisor is the one place that parses a job's output (it must, to judge the
run when no kernel is alive) and it saves progress, artifacts and hints to the
database. So a follower stays cheap: in a daemon thread (never the kernel's main
thread) it

* tails the log file from a stored offset, keeping only the newest lines (a chunk
  of a million lines costs one ``bytes.count`` and the decoding of its end), with
  ``\\r`` redraws collapsed (a bar that redraws 10,000 times is one changing line);
* reads the newest progress snapshot, new events and the status from the database;
* calls subscribers at most ``rate`` times a second with what changed.
"""
from __future__ import annotations

import collections
import json
import threading
import time
from pathlib import Path
from typing import Any, Callable

from ..progress.events import Event, EventKind, JobStatus, Progress

__all__ = ["Follower", "TAIL_LINES"]

TAIL_LINES = 2000
READ_CHUNK = 4 << 20


class Follower:
    """Follows one job; ``subscribe`` callbacks get lists of events from a background thread."""

    def __init__(self, job: Any, rate: float = 10.0, poll: float = 0.05) -> None:
        self.job = job
        self.store = job._manager.home.store
        self.log_path: Path = job.log_path
        self.interval = 1.0 / rate
        self.poll = poll
        snap = job.snapshot(check=False)
        self.offset = 0
        self._carry = b""                         # bytes after the last newline
        self.tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self.partial: str | None = None            # the line being redrawn with \r
        self.progress = snap.progress
        self._progress_json = json.dumps(snap.progress.to_dict(), sort_keys=True)
        self.status: JobStatus = snap.status
        self.lines_seen = 0                        # logical lines read so far (\n or \r ended)
        self.bytes_seen = 0
        self._last_event_id = 0
        self._subs: list[Callable[[list[Event]], None]] = []
        self._lock = threading.Lock()
        self._new_lines: list[str] = []
        self._full_read = False
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
        return lines[-n:] if n else []

    # -- log ---------------------------------------------------------------------
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
        self.bytes_seen += len(data)
        self._full_read = len(data) == READ_CHUNK
        newlines = data.count(b"\n")
        self.lines_seen += newlines + data.count(b"\r")   # a \r redraw is a line that replaced the last
        buf = self._carry + data
        pieces = buf.split(b"\n")
        carry = pieces.pop()
        # a bar that never ends its line: keep only its newest frame
        cut = carry.rfind(b"\r", 0, len(carry) - 1)
        self._carry = carry[cut + 1:] if cut >= 0 else carry
        finished = [_last_frame(p) for p in pieces[-TAIL_LINES:]]
        partial = _last_frame(self._carry) or None
        with self._lock:
            self.tail.extend(finished)
            self._new_lines.extend(finished)
            if len(self._new_lines) > TAIL_LINES:
                del self._new_lines[:-TAIL_LINES]
            self.partial = partial
        return True

    # -- database ----------------------------------------------------------------
    def _poll_store(self, events: list[Event]) -> None:
        rows = self.store.query("SELECT progress FROM jobs WHERE id=?", (self.job.id,))
        if rows and rows[0][0] != self._progress_json:
            self._progress_json = rows[0][0]
            update = Progress.from_dict(json.loads(rows[0][0] or "{}"))
            if update != self.progress:
                self.progress = update
                events.append(Event(EventKind.PROGRESS, update.to_dict(), self.job.id))
        for event_id, when, kind, data in self.store.query(
                "SELECT id, time, kind, data FROM job_events WHERE job_id=? AND id>? AND kind != 'status' ORDER BY id",
                (self.job.id, self._last_event_id)):
            self._last_event_id = event_id
            events.append(Event(EventKind(kind), json.loads(data), self.job.id, when))

    def _publish(self, events: list[Event]) -> None:
        with self._lock:
            if self._new_lines:
                events.insert(0, Event(EventKind.LOG, {"lines": self._new_lines, "partial": self.partial}, self.job.id))
                self._new_lines = []
            subs = list(self._subs)
        if not events:
            return
        for cb in subs:
            try:
                cb(events)
            except Exception:  # a broken subscriber must not stop the follower
                pass

    def _run(self) -> None:
        from ..errors import LoraNbError           # StoreError and NotFound are LoraNbErrors

        try:
            self._follow()
        except (LoraNbError, OSError):
            # the job was deleted or its workspace went away while we followed it: nothing left to report
            self._stop.set()

    def _follow(self) -> None:
        last_publish = 0.0
        last_status = 0.0
        while not self._stop.is_set():
            got = self._read_available()
            now = time.monotonic()
            if now - last_publish < self.interval:
                # batch reads: a busy log is read ~20 times a second in big chunks, not line by line
                self._stop.wait(0 if got and self._full_read else self.poll)
                continue
            last_publish = now
            events: list[Event] = []
            final = False
            if now - last_status >= 0.5 or self.status.is_final:
                last_status = now
                status = self.job._refresh_status()
                if status.is_final:
                    while self._read_available():
                        pass
                    final = True
                self._poll_store(events)
                if status != self.status:
                    self.status = status
                    events.append(Event(EventKind.STATUS, {"status": status.value}, self.job.id))
            else:
                self._poll_store(events)
            self._publish(events)
            if final:
                return


def _last_frame(raw: bytes) -> str:
    """What a terminal shows for one line: its last non-empty ``\\r`` frame, decoded."""
    raw = raw.rstrip(b"\r")
    cut = raw.rfind(b"\r")
    return raw[cut + 1:].decode("utf-8", errors="replace")
