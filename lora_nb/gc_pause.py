"""Pause Python's cyclic garbage collector while bulk work creates many small objects.

Splitting 100,000 captions into tags makes millions of strings and lists; none of them
form reference cycles, yet the collector walks the young ones every 700 allocations and
costs a third of the time. :func:`gc_paused` turns it off for the duration of a block
and back on afterwards (only if it was on, and only when the last of several nested or
concurrent blocks ends). Reference counting still frees everything as usual.

>>> import gc
>>> with gc_paused():
...     gc.isenabled()
False
>>> gc.isenabled()
True
"""
from __future__ import annotations

import gc
import threading
from contextlib import contextmanager
from typing import Iterator

__all__ = ["gc_paused"]

_lock = threading.Lock()
_depth = 0
_was_enabled = False


@contextmanager
def gc_paused() -> Iterator[None]:
    """Run the block with the cyclic garbage collector off (process-wide, restored after)."""
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                gc.enable()
