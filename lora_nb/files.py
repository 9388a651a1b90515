"""Small-file primitives: atomic replace, fast in-place rewrite, whole-filesystem sync.

``atomic_write`` (temporary file + rename) is the safe default for one file. Renaming
over an existing file is slow on ext4 (its ``auto_da_alloc`` flushes the new data at
every replace: about 1 ms per file on our machines), so bulk edits of many captions
use :func:`overwrite_small` under a journal instead (see :mod:`lora_nb.captions.journal`):
a rewrite of an existing, unshared, single-page file in one ``write`` call, about
5 microseconds.

>>> import tempfile, os
>>> p = os.path.join(tempfile.mkdtemp(), "a.txt")
>>> atomic_write(p, b"alice, smile")
>>> overwrite_small(p, b"alice")
'in place'
>>> read_or_none(p)
b'alice'
>>> read_or_none(p + ".missing") is None
True
"""
from __future__ import annotations

import os
import stat
import threading

__all__ = ["atomic_write", "overwrite_small", "read_or_none", "fsync_path", "PAGE", "RACY_NS"]

# A file changed this recently may change again within the same timestamp tick, unseen by a
# later stat: caches keyed by stat do not trust such files (git's "racily clean" rule).
# 100 ms is well above ext4/xfs/overlayfs timestamp granularity.
RACY_NS = 100_000_000
PAGE = 4096   # a rewrite larger than one page could be torn by a crash between pages: such files are renamed
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)


def atomic_write(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    path = os.fspath(path)
    head, name = os.path.split(path)
    tmp = os.path.join(head, f".{name[:60]}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _CLOEXEC, 0o644)
        try:
            _write_all(fd, data)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def read_or_none(path: str | os.PathLike) -> bytes | None:
    """The bytes of a file, or None when it does not exist."""
    try:
        fd = os.open(path, os.O_RDONLY | _CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        data = os.read(fd, 1 << 16)
        if len(data) < 1 << 16:      # one read for any caption-sized file
            return data
        chunks = [data]
        while True:
            b = os.read(fd, 1 << 20)
            if not b:
                return b"".join(chunks)
            chunks.append(b)
    finally:
        os.close(fd)


def overwrite_small(path: str | os.PathLike, data: bytes, _open=os.open, _fstat=os.fstat, _write=os.write,
                    _close=os.close, _flags=os.O_WRONLY | _NOFOLLOW | _CLOEXEC | _NONBLOCK) -> str:
    """Rewrite a small file in place when that is safe, else replace it atomically.

    In place means: an existing regular file (not a symlink) with a single link (so
    nothing else sharing it, such as the source of a linked import, changes), and
    new content of at most one page written at offset 0 in one call, so a killed
    process leaves either the old or the new text. Returns ``"in place"``,
    ``"replaced"`` or ``"created"``. A crash part-way through many such writes is
    undone by the caller's journal. (O_NONBLOCK: opening a FIFO must not hang.)
    """
    try:
        fd = _open(path, _flags)
    except FileNotFoundError:
        atomic_write(path, data)
        return "created"
    except OSError:      # a symlink (ELOOP), a folder, a FIFO: the safe path decides
        atomic_write(path, data)
        return "replaced"
    try:
        st = _fstat(fd)
        if st.st_nlink != 1 or not 0 < len(data) <= PAGE or not stat.S_ISREG(st.st_mode):
            # shared or large file: never write through it; empty: truncating to 0 costs a flush anyway
            _close(fd)
            fd = -1
            atomic_write(path, data)
            return "replaced"
        n = _write(fd, data)
        if n != len(data):   # a short write of one page only happens when the disk is full
            _write_all(fd, memoryview(data)[n:])
        if st.st_size > len(data):
            os.ftruncate(fd, len(data))
        return "in place"
    finally:
        if fd >= 0:
            _close(fd)


def fsync_path(path: str | os.PathLike) -> None:
    """fsync a file or a folder (a folder's fsync makes renames and new names in it durable)."""
    try:
        fd = os.open(path, os.O_RDONLY | _CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:       # some filesystems refuse fsync on folders
        pass
    finally:
        os.close(fd)
