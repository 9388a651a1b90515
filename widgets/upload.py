"""ChunkedUpload: browser upload of files of any size, in slices, straight to disk in the workspace.

The stock FileUpload sends a whole file as one websocket message; behind a reverse proxy (the Vast.ai
portal, JupyterHub) that dies at about 10 MB. This widget reads the chosen file in slices in the
browser (2 MiB by default), sends each slice as one custom message with a binary buffer, and waits
for the kernel's acknowledgement before sending the next one (back-pressure: memory stays flat on both
sides). The kernel appends each slice to ``<dest>/.upload-<id>.part`` at the offset it expects, checks the
declared size against ``max_bytes`` before writing anything and against the bytes received at the end,
and renames the finished file into place; a cancel or an error removes the part file. Callbacks
registered with :meth:`on_done` get the final path (called from a background thread, so a long import
never blocks the kernel).

>>> import tempfile
>>> up = ChunkedUpload(dest_dir=tempfile.mkdtemp(), max_bytes=10)
>>> up._handle({"type": "start", "name": "big.zip", "size": 11}, [])["type"]
'error'
"""
from __future__ import annotations

import os
import threading
import uuid
from pathlib import Path
from typing import Any, Callable

import anywidget
import traitlets

__all__ = ["ChunkedUpload"]

_ESM = r"""
function render({ model, el }) {
  el.classList.add("lnb-chunked-upload");
  const input = document.createElement("input");
  input.type = "file";
  input.multiple = true;
  input.accept = model.get("accept") || "";
  input.className = "lnb-upload-input";
  const cancel = document.createElement("button");
  cancel.textContent = "Cancel";
  cancel.className = "lnb-upload-cancel jupyter-button";
  cancel.disabled = true;                 // enabled only while a file is being sent
  cancel.title = "cancel the upload in progress";
  const bar = document.createElement("progress");
  bar.max = 1; bar.value = 0; bar.className = "lnb-upload-bar";
  const status = document.createElement("span");
  status.className = "lnb-upload-status";
  el.append(input, cancel, bar, status);

  let seq = 0;
  let cancelled = false;
  let current = null;
  const pending = new Map();   // request number -> resolver: every reply finds the request it answers
  model.on("msg:custom", (msg) => { const r = pending.get(msg.seq); if (r) { pending.delete(msg.seq); r(msg); } });
  const ask = (content, buffers) => new Promise((resolve) => {
    const s = ++seq; pending.set(s, resolve); model.send({ ...content, seq: s }, undefined, buffers || []);
  });
  const show = () => { bar.value = model.get("progress"); status.textContent = model.get("status"); };
  model.on("change:progress", show);
  model.on("change:status", show);
  show();
  cancel.addEventListener("click", async () => {
    cancelled = true;
    cancel.disabled = true;
    if (current) { const id = current; current = null; await ask({ type: "cancel", id: id }); }
  });
  input.addEventListener("change", async () => {
    const files = Array.from(input.files || []);
    cancelled = false;
    for (const file of files) {
      if (cancelled) break;
      const start = await ask({ type: "start", name: file.name, size: file.size });
      if (start.type !== "ready") continue;          // the kernel refused it; its status says why
      const id = start.id;
      current = id;
      cancel.disabled = false;
      const step = model.get("chunk_size");
      let offset = 0;
      let ok = true;
      while (offset < file.size) {
        if (cancelled) { ok = false; break; }
        const buf = await file.slice(offset, Math.min(offset + step, file.size)).arrayBuffer();
        const ack = await ask({ type: "chunk", id: id, offset: offset }, [buf]);
        if (ack.type !== "ack") { ok = false; break; }
        offset = ack.received;
      }
      if (ok && !cancelled) { await ask({ type: "finish", id: id }); }
      else if (!cancelled) { await ask({ type: "abort", id: id }); }   // an error: the kernel drops the part file
      current = null;
      cancel.disabled = true;
    }
    input.value = "";
  });
}
export default { render };
"""

_CSS = """
.lnb-chunked-upload { display: flex; gap: 8px; align-items: center; flex-wrap: wrap; }
.lnb-chunked-upload progress { width: 220px; }
.lnb-chunked-upload .lnb-upload-status { font-size: 12px; color: #555; }
/* a button element does not look disabled by itself next to ipywidgets' buttons: say it */
.lnb-chunked-upload .lnb-upload-cancel:disabled { opacity: 0.45; cursor: not-allowed; box-shadow: none; }
"""


class _Upload:
    def __init__(self, name: str, size: int, part: Path) -> None:
        self.name, self.size, self.part, self.received = name, size, part, 0


class ChunkedUpload(anywidget.AnyWidget):
    """Upload files of any size in acknowledged slices; see the module docstring."""

    _esm = _ESM
    _css = _CSS
    progress = traitlets.Float(0.0).tag(sync=True)
    status = traitlets.Unicode("").tag(sync=True)
    filename = traitlets.Unicode("").tag(sync=True)
    accept = traitlets.Unicode("").tag(sync=True)
    chunk_size = traitlets.Int(2 * 1024 * 1024).tag(sync=True)

    def __init__(self, dest_dir: str | os.PathLike[str], max_bytes: int | None = None, accept: str = "", **kwargs: Any) -> None:
        super().__init__(accept=accept, **kwargs)
        self.dest_dir = Path(dest_dir)
        self.max_bytes = max_bytes
        self._callbacks: list[Callable[[Path], Any]] = []
        self._uploads: dict[str, _Upload] = {}
        self._lock = threading.Lock()
        self.on_msg(self._on_msg)
        _sweep_stale(self.dest_dir)

    def on_done(self, callback: Callable[[Path], Any]) -> None:
        """Call ``callback(path)`` (in a background thread) for every finished file."""
        self._callbacks.append(callback)

    # -- the protocol -----------------------------------------------------------------------
    def _on_msg(self, _widget: Any, content: dict[str, Any], buffers: list[Any]) -> None:
        reply = self._handle(content, buffers)
        reply["seq"] = content.get("seq")          # the browser matches replies to requests by this number
        self.send(reply)

    def _handle(self, content: dict[str, Any], buffers: list[Any]) -> dict[str, Any]:
        """One message from the browser -> the reply (kept separate so tests drive it without a browser)."""
        kind = content.get("type")
        try:
            if kind == "start":
                return self._start(str(content.get("name", "")), content.get("size"))
            up = self._uploads.get(str(content.get("id")))
            if up is None:
                return {"type": "error", "message": "Unknown or finished upload."}
            if kind == "chunk":
                return self._chunk(str(content["id"]), up, int(content.get("offset", -1)), buffers)
            if kind == "finish":
                return self._finish(str(content["id"]), up)
            if kind == "cancel":
                self._drop(str(content["id"]), up)
                self.status = f"Cancelled {up.name}; nothing was kept."
                self.progress = 0.0
                return {"type": "cancelled"}
            if kind == "abort":                          # the browser gave up after an error: keep its message
                self._drop(str(content["id"]), up)
                return {"type": "aborted"}
        except OSError as e:
            up = self._uploads.get(str(content.get("id")))
            if up is not None:
                self._drop(str(content["id"]), up)
            self.status = f"The upload failed: {e.strerror or e}. Check the free disk space."
            return {"type": "error", "message": self.status}
        return {"type": "error", "message": f"Unknown message {kind!r}."}

    def _start(self, name: str, size: Any) -> dict[str, Any]:
        from lora_nb.errors import InvalidName
        from lora_nb.paths import safe_name

        base = os.path.basename(name.replace("\\", "/"))
        try:
            safe_name(base, "file name")
        except InvalidName as e:
            self.status = str(e)
            return {"type": "error", "message": self.status}
        if not isinstance(size, int) or size < 0:
            self.status = f"{base}: the browser did not say how big the file is."
            return {"type": "error", "message": self.status}
        if self.max_bytes is not None and size > self.max_bytes:
            self.status = f"{base} is {size:,} bytes, more than the {self.max_bytes:,} allowed here. Import it from a path or URL instead."
            return {"type": "error", "message": self.status}
        self.dest_dir.mkdir(parents=True, exist_ok=True)
        free = _free_bytes(self.dest_dir)
        if free is not None and size > free:
            self.status = f"{base} needs {size:,} bytes but only {free:,} are free. Free some space first."
            return {"type": "error", "message": self.status}
        uid = uuid.uuid4().hex
        part = self.dest_dir / f".upload-{uid}.part"
        part.write_bytes(b"")
        with self._lock:
            self._uploads[uid] = _Upload(base, size, part)
        self.filename, self.progress, self.status = base, 0.0, f"Uploading {base} (0 of {size:,} bytes)"
        return {"type": "ready", "id": uid}

    def _chunk(self, uid: str, up: _Upload, offset: int, buffers: list[Any]) -> dict[str, Any]:
        if offset != up.received or not buffers:
            return {"type": "error", "message": f"Expected data at byte {up.received:,}, got {offset:,}."}
        data = bytes(buffers[0])
        if up.received + len(data) > up.size:
            self._drop(uid, up)
            self.status = f"{up.name}: more data arrived than the declared {up.size:,} bytes; the upload was dropped."
            return {"type": "error", "message": self.status}
        with open(up.part, "r+b") as f:
            f.seek(offset)
            f.write(data)
        up.received += len(data)
        self.progress = up.received / up.size if up.size else 1.0
        self.status = f"Uploading {up.name} ({up.received:,} of {up.size:,} bytes)"
        return {"type": "ack", "received": up.received}

    def _finish(self, uid: str, up: _Upload) -> dict[str, Any]:
        if up.received != up.size or up.part.stat().st_size != up.size:
            self._drop(uid, up)
            self.status = f"{up.name}: {up.received:,} of {up.size:,} bytes arrived; the incomplete file was removed. Try again."
            return {"type": "error", "message": self.status}
        final = _unique(self.dest_dir / up.name)
        os.replace(up.part, final)
        with self._lock:
            self._uploads.pop(uid, None)
        self.progress, self.status = 1.0, f"Uploaded {up.name} ({up.size:,} bytes)."
        for cb in list(self._callbacks):
            threading.Thread(target=cb, args=(final,), daemon=True, name="lnb-upload-done").start()
        return {"type": "done", "path": final.name}

    def _drop(self, uid: str, up: _Upload) -> None:
        with self._lock:
            self._uploads.pop(uid, None)
        try:
            up.part.unlink()
        except FileNotFoundError:
            pass


def _unique(path: Path) -> Path:
    if not path.exists():
        return path
    for n in range(2, 10_000):
        candidate = path.with_name(f"{path.stem}_{n}{path.suffix}")
        if not candidate.exists():
            return candidate
    raise OSError(f"too many files named like {path.name}")


STALE_SECONDS = 3600


def _sweep_stale(folder: Path, max_age: float = STALE_SECONDS) -> None:
    """Remove part files left by a kernel that died mid-upload (a closed tab, a restart). A live upload
    writes its part file every few seconds, so one untouched for an hour belongs to nobody."""
    import time

    try:
        parts = list(folder.glob(".upload-*.part"))
    except OSError:
        return
    for part in parts:
        try:
            if time.time() - part.stat().st_mtime > max_age:
                part.unlink()
        except OSError:
            pass


def _free_bytes(folder: Path) -> int | None:
    import shutil

    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None
