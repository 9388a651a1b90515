"""Undo steps of bulk caption edits, kept as a journal so no edit is ever left half-done.

Each step is a folder ``<dataset>/.lora-nb/undo/<time in ns>/``:

- ``before.bin``: the old bytes of every caption the operation changes, one after another;
- ``files.bin``: which captions, as four marshalled lists: relative paths, offsets and
  lengths in ``before.bin`` (-1: the operation creates the caption), CRC-32 of the new bytes;
- ``record.json``: ``{"op", "time", "mode", "count"}``;
- ``lock``: present while the operation writes, held (``flock``) by the writing process
  (created locked under a private name, then renamed, so nobody sees it unheld).

A step is prepared in a hidden folder (``before.bin`` and the record flushed to disk),
locked, then renamed into place; only then are captions rewritten (in place, see
:func:`lora_nb.files.overwrite_small`) and the lock removed. A
step whose lock nobody holds belongs to a process that died while writing: the next
:meth:`UndoLog.recover` rolls it back, so every caption is as it was before
(``mode="rollback"``, the bulk operations), or keeps what was written and leaves the
step for undo (``mode="keep"``, the tagger, which writes one caption at a time with
atomic renames and whose partial work belongs to the user).

>>> import tempfile, pathlib
>>> root = pathlib.Path(tempfile.mkdtemp()); (root / "a.txt").write_bytes(b"old")
3
>>> log = UndoLog(root / ".undo", root)
>>> step = log.begin("demo", {str(root / "a.txt"): b"old"})
>>> step.write([(str(root / "a.txt"), b"new")]); step.commit()
>>> (root / "a.txt").read_bytes(), [h["op"] for h in log.history()]
(b'new', ['demo'])
>>> op, restored = log.undo_last(); (root / "a.txt").read_bytes()
b'old'
"""
from __future__ import annotations

import json
import marshal
import os
import shutil
import threading
import time
import zlib
from pathlib import Path

from ..errors import LoraNbError, NotFound
from ..files import atomic_write, fsync_path, overwrite_small, read_or_none

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: a lock then only protects within one process
    fcntl = None  # type: ignore[assignment]

__all__ = ["UndoLog", "Step", "UNDO_KEEP"]

UNDO_KEEP = 20
_PREP = ".prep-"
_DAMAGED = (OSError, ValueError, KeyError, EOFError, TypeError)


def _lock(path: Path) -> int:
    """Create ``path`` already locked: the file is made and locked under a private name, then renamed,
    so a recoverer never finds it unlocked (and takes a live writer's step for a dead one's)."""
    private = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}")
    fd = os.open(private, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.rename(private, path)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _pid_alive(pid: int) -> bool:
    if pid <= 0:        # unknown: treat as alive, leave the folder
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _claim_orphan(lock: Path) -> int | None:
    """Lock ``lock`` when it belongs to a step whose writer died; returns the held descriptor, else None.

    A live writer holds the lock until it has unlinked the file (:meth:`Step.commit`), so a lock
    taken here is only an orphan's when the path still names the very file that was locked: a
    writer that committed between our ``open`` and our ``flock`` leaves us holding a removed file.
    """
    try:
        fd = os.open(lock, os.O_RDWR)
    except OSError:
        return None
    try:
        if fcntl is None:  # pragma: no cover
            raise OSError("no flock here")
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if os.stat(lock).st_ino != os.fstat(fd).st_ino:
            raise OSError("the lock was replaced")
    except OSError:
        os.close(fd)
        return None
    return fd


def _prep_pid(name: str) -> int:
    """The writer's pid from a ``.prep-<time>-<pid>`` folder name (-1 when unreadable)."""
    try:
        return int(name.rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return -1


def _load(step: Path) -> tuple[dict, bytes]:
    """The record of a step, with its file table under ``"files"``, and the old bytes."""
    record = json.loads((step / "record.json").read_text(encoding="utf-8"))
    table = marshal.loads(read_or_none(step / "files.bin") or b"")
    names, offsets, lengths, crcs = table
    if not (isinstance(names, list) and len(names) == len(offsets) == len(lengths) == len(crcs)):
        raise ValueError("damaged file table")
    record["files"] = table
    return record, (read_or_none(step / "before.bin") or b"")


class Step:
    """One bulk operation being written. Get it from :meth:`UndoLog.begin`."""

    def __init__(self, log: "UndoLog", folder: Path, lock_fd: int, before: dict[str, bytes | None]) -> None:
        self._log, self.folder, self._fd, self._before = log, folder, lock_fd, before
        self.written = 0

    def write(self, items: list[tuple[str, bytes]]) -> None:
        """Rewrite these captions (each one listed when the step began). On any error every
        caption is put back, the step removed, and a :class:`LoraNbError` raised."""
        try:
            for path, data in items:
                overwrite_small(path, data)
                self.written += 1
        except OSError as e:
            self.abort()
            raise LoraNbError(f"Writing captions failed ({e}); every caption was put back as it was.",
                              fix="Check free disk space and file permissions, then try again.") from None

    def write_replacing(self, path: str, data: bytes) -> None:
        """Replace one caption with a rename (the tagger: slow work between files, each one durable)."""
        atomic_write(path, data)
        self.written += 1

    def commit(self) -> None:
        """Close the step: it becomes the newest undo step (and the oldest beyond ``keep`` go);
        with nothing written it is removed."""
        if self.written:
            os.unlink(self.folder / "lock")
            for old_step in self._log.steps()[:-self._log.keep]:
                shutil.rmtree(old_step, ignore_errors=True)
        else:
            shutil.rmtree(self.folder, ignore_errors=True)
        self._release()

    def abort(self) -> None:
        """Put every listed caption back as it was and remove the step.

        When even that fails (a full disk), the step stays, unlocked, and the next
        :meth:`UndoLog.recover` finishes the rollback."""
        try:
            record, blob = _load(self.folder)
            self._log._restore(record, blob, rollback=True)
        except OSError as e:
            self._release()
            raise LoraNbError(f"Writing captions failed and putting them back failed too ({e}).",
                              fix="Free some disk space; the captions are put back the next time this "
                                  "dataset's captions are edited or counted.") from None
        shutil.rmtree(self.folder, ignore_errors=True)
        self._release()

    def _release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class UndoLog:
    """The undo steps of one dataset's captions (``root``), stored in ``folder``."""

    def __init__(self, folder: Path, root: Path, keep: int = UNDO_KEEP) -> None:
        self.folder, self.root, self.keep = Path(folder), Path(root), keep
        self._cut = len(str(self.root)) + 1

    # -- writing -------------------------------------------------------------------
    def begin(self, op: str, before: dict[str, bytes | None], after: dict[str, bytes] | None = None,
              mode: str = "rollback") -> Step:
        """Record the current bytes of the captions an operation is about to change.

        ``after`` (the new bytes, optional) lets a rollback tell the operation's own new
        files from ones someone else made meanwhile.
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns():020d}"
        prep = self.folder / f"{_PREP}{name}-{os.getpid()}"
        prep.mkdir()
        try:
            fd = _lock(prep / "lock")
            cut, crc32 = self._cut, zlib.crc32
            names = [p[cut:] for p in before]
            if os.sep != "/":
                names = [n.replace(os.sep, "/") for n in names]
            olds = list(before.values())
            lengths = [-1 if b is None else len(b) for b in olds]
            offsets, off = [], 0
            for n in lengths:
                offsets.append(off)
                off += max(n, 0)
            crcs = [-1] * len(names) if after is None else [crc32(after[p]) if p in after else -1 for p in before]
            for fname, data in (("before.bin", b"".join(b for b in olds if b)),
                                ("files.bin", marshal.dumps((names, offsets, lengths, crcs))),
                                ("record.json", json.dumps({"op": op, "time": time.time(), "mode": mode,
                                                            "count": len(names)}).encode("utf-8"))):
                with open(prep / fname, "wb") as f:
                    f.write(data)
                    os.fsync(f.fileno())
            fsync_path(prep)
            final = self.folder / name
            os.rename(prep, final)
            fsync_path(self.folder)
        except BaseException:
            shutil.rmtree(prep, ignore_errors=True)
            raise
        return Step(self, final, fd, before)

    # -- reading ---------------------------------------------------------------------
    def steps(self) -> list[Path]:
        """Finished steps, oldest first (a step still being written is not listed)."""
        try:
            names = sorted(e.name for e in os.scandir(self.folder) if e.is_dir() and not e.name.startswith("."))
        except FileNotFoundError:
            return []
        return [self.folder / n for n in names
                if (self.folder / n / "record.json").exists() and not (self.folder / n / "lock").exists()]

    def history(self) -> list[dict]:
        """``{"op", "time", "count"}`` of each finished step, newest last."""
        out = []
        for d in self.steps():
            try:
                head = json.loads((d / "record.json").read_text(encoding="utf-8"))
                out.append({"op": head.get("op"), "time": head.get("time"), "count": head.get("count")})
            except (OSError, ValueError, AttributeError):
                continue
        return out

    # -- undo and recovery -----------------------------------------------------------------
    def undo_last(self) -> tuple[str, list[tuple[str, bytes | None, bytes | None]]]:
        """Restore the captions of the newest finished step, byte for byte, and drop it.

        Returns the operation's name and ``(path, bytes before undo, bytes after undo)`` for
        each caption that changed. Safe to repeat after a crash: the step stays until done.
        """
        steps = self.steps()
        if not steps:
            raise NotFound("There is no caption edit to undo.",
                           fix="Undo works after a bulk operation such as add_trigger or replace.")
        step = steps[-1]
        try:
            record, blob = _load(step)
        except _DAMAGED as e:
            shutil.rmtree(step, ignore_errors=True)
            raise LoraNbError(f"The undo record {step.name} is unreadable ({e}) and was removed.",
                              fix="Fix the remaining captions by hand or with another bulk operation.") from None
        changes = self._restore(record, blob, rollback=False)
        shutil.rmtree(step, ignore_errors=True)
        return str(record.get("op")), changes

    def recover(self) -> list[str]:
        """Finish the steps of processes that died while writing; returns what was done to each."""
        out: list[str] = []
        try:
            entries = [e for e in os.scandir(self.folder) if e.is_dir()]
        except FileNotFoundError:
            return out
        for e in entries:
            step = Path(e.path)
            lock = step / "lock"
            fd = _claim_orphan(lock)
            if fd is None:      # no lock (a finished step, or one being prepared), or a live writer holds it
                if e.name.startswith(_PREP) and not lock.exists() and not _pid_alive(_prep_pid(e.name)):
                    shutil.rmtree(step, ignore_errors=True)     # its writer died before locking it
                continue
            try:
                out.extend(self._finish_orphan(step, lock, e.name.startswith(_PREP)))
            finally:
                os.close(fd)
        return out

    def _finish_orphan(self, step: Path, lock: Path, prepared_only: bool) -> list[str]:
        """Roll back (or keep) the step of a writer that died; the caller holds its lock."""
        if prepared_only:   # died before touching any caption
            shutil.rmtree(step, ignore_errors=True)
            return []
        try:
            record, blob = _load(step)
        except _DAMAGED:
            shutil.rmtree(step, ignore_errors=True)
            return []
        if record.get("mode") == "keep":
            os.unlink(lock)
            return [f"kept {record.get('op')}"]
        self._restore(record, blob, rollback=True)
        shutil.rmtree(step, ignore_errors=True)
        return [f"rolled back {record.get('op')}"]

    def _restore(self, record: dict, blob: bytes, rollback: bool) -> list[tuple[str, bytes | None, bytes | None]]:
        """Put the recorded bytes back. In a rollback a caption the operation created is only
        removed when it still holds what the operation wrote."""
        root = str(self.root)
        changes = []
        for rel, off, length, crc in zip(*record["files"]):
            path = os.path.join(root, *rel.split("/"))
            now = read_or_none(path)
            if length < 0:
                if now is None:
                    continue
                if rollback and crc >= 0 and zlib.crc32(now) != crc:
                    continue
                os.unlink(path)
                changes.append((path, now, None))
            else:
                old = blob[off:off + length]
                if now == old:
                    continue
                overwrite_small(path, old)
                changes.append((path, now, old))
        return changes
