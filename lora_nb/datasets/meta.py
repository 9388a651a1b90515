"""Per-dataset cache of what is known about each image file, keyed by relative path + mtime + size.

Lives in ``<dataset>/.lora-nb/meta.json`` (kohya ignores hidden folders), so it moves
with the dataset on rename and goes with it on delete. A changed file (new mtime or
size) is simply looked at again.
"""
from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

__all__ = ["MetaCache"]


class MetaCache:
    """``get(rel, stat)`` / ``put(rel, stat, info)`` / ``save()``; info is a small JSON dict."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._data: dict[str, dict[str, Any]] | None = None
        self._dirty = False
        self._lock = threading.Lock()

    def _load(self) -> dict[str, dict[str, Any]]:
        if self._data is None:
            try:
                self._data = json.loads(self.path.read_text(encoding="utf-8"))
                if not isinstance(self._data, dict):
                    self._data = {}
            except (OSError, ValueError):
                self._data = {}
        return self._data

    def get(self, rel: str, st: os.stat_result, deep: bool = False) -> dict[str, Any] | None:
        e = self._load().get(rel)
        if not e or e.get("m") != st.st_mtime_ns or e.get("s") != st.st_size:
            return None
        if deep and not e.get("deep"):
            return None
        return e

    def put(self, rel: str, st: os.stat_result, info: dict[str, Any]) -> None:
        with self._lock:
            self._load()[rel] = {"m": st.st_mtime_ns, "s": st.st_size, **info}
            self._dirty = True

    def prune(self, keep: set[str]) -> None:
        with self._lock:
            data = self._load()
            for k in [k for k in data if k not in keep]:
                del data[k]
                self._dirty = True

    def save(self) -> None:
        """Write if anything changed (atomically; a lost race only loses cache entries)."""
        from ..files import atomic_write

        with self._lock:
            if not self._dirty or self._data is None:
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(self.path, json.dumps(self._data, separators=(",", ":")).encode("utf-8"))
            self._dirty = False
