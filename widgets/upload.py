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

Resuming: the kernel keeps the bytes received so far (the part file, and beside it
``.upload-<id>.json`` with the acknowledged offset and the CRC-32 of those bytes). When a reply does not
come within ``ack_timeout`` seconds (30, or ``$LORA_NB_UPLOAD_ACK_TIMEOUT``; a dropped connection, a kernel
websocket reconnecting), the browser
asks for the upload's ``status`` until the kernel answers, and goes on from the offset it reports: a
slice the kernel acknowledged is never sent again, one it did not get is. A slice that arrives twice
(queued by the page while offline) is acknowledged without being written again. A page reloaded after a
drop, or a new kernel, picks the same file up where it stopped (``start`` with the file's key: name, size
and modification time). At the end the browser's CRC-32 of the whole file must equal the kernel's, or
the file is removed with the reason, never kept half right.

>>> import tempfile
>>> up = ChunkedUpload(dest_dir=tempfile.mkdtemp(), max_bytes=10)
>>> up._handle({"type": "start", "name": "big.zip", "size": 11}, [])["type"]
'error'
"""
from __future__ import annotations

import json
import os
import threading
import uuid
import zlib
from pathlib import Path
from typing import Any, Callable

import anywidget
import traitlets

__all__ = ["ChunkedUpload"]

_ESM = r"""
// CRC-32 (IEEE, as zlib.crc32) of a slice, continuing from crc: the end-to-end check of a resumed upload
const CRC_TABLE = (() => { const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) { let c = n; for (let k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320 ^ (c >>> 1) : c >>> 1; t[n] = c >>> 0; }
  return t; })();
function crc32(buf, crc) {
  const b = new Uint8Array(buf); let c = (crc ^ 0xFFFFFFFF) >>> 0;
  for (let i = 0; i < b.length; i++) c = CRC_TABLE[(c ^ b[i]) & 0xFF] ^ (c >>> 8);
  return (c ^ 0xFFFFFFFF) >>> 0;
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

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
  let local = "";              // a line of our own while the kernel cannot be reached
  const pending = new Map();   // request number -> resolver: every reply finds the request it answers
  model.on("msg:custom", (msg) => { const r = pending.get(msg.seq); if (r) { pending.delete(msg.seq); r(msg); } });
  // a request and its reply; null when none came in time (the connection dropped: the message or its reply is lost)
  const ask = (content, buffers, timeout) => new Promise((resolve) => {
    const s = ++seq; pending.set(s, resolve);
    const ms = (timeout || model.get("ack_timeout")) * 1000;
    setTimeout(() => { if (pending.delete(s)) resolve(null); }, ms);
    try { model.send({ ...content, seq: s }, undefined, buffers || []); } catch (e) { /* offline: the timeout answers */ }
  });
  // after a drop: ask the kernel what it has until it answers (it keeps the part file meanwhile)
  const resync = async (id) => {
    const until = Date.now() + model.get("resume_for") * 1000;
    for (let n = 1; !cancelled && Date.now() < until; n++) {
      local = `Connection lost; resuming (try ${n})…`; show();
      const r = await ask({ type: "status", id: id }, [], Math.min(model.get("ack_timeout"), 5));
      if (r) { local = ""; return r; }
      await sleep(1000);
    }
    local = "";
    return null;
  };
  const show = () => { bar.value = model.get("progress"); status.textContent = local || model.get("status"); };
  model.on("change:progress", show);
  model.on("change:status", show);
  show();
  cancel.addEventListener("click", async () => {
    cancelled = true;
    cancel.disabled = true;
    if (current) { const id = current; current = null; await ask({ type: "cancel", id: id }); }
  });
  const send = async (file) => {
    const key = `${file.name}|${file.size}|${file.lastModified}`;
    let start = await ask({ type: "start", name: file.name, size: file.size, key: key });
    if (start === null) start = await ask({ type: "start", name: file.name, size: file.size, key: key });   // one retry: same key, same part
    if (!start || start.type !== "ready") return;   // the kernel refused it; its status says why
    const id = start.id;
    current = id;
    cancel.disabled = false;
    const step = model.get("chunk_size");
    const crcAt = new Map([[0, 0]]);       // offset -> CRC-32 of the file's bytes before it
    let offset = start.received;
    if (!crcAt.has(offset)) {              // a part kept from before (a reload, a new kernel): check it is this file
      let c = 0;
      for (let o = 0; o < offset; o += step) c = crc32(await file.slice(o, Math.min(o + step, offset)).arrayBuffer(), c);
      crcAt.set(offset, c);
      if (c !== start.crc) { await ask({ type: "abort", id: id }); current = null; return send(file); }
    }
    let ok = true;
    while (offset < file.size) {
      if (cancelled) { ok = false; break; }
      const end = Math.min(offset + step, file.size);
      const buf = await file.slice(offset, end).arrayBuffer();
      if (!crcAt.has(end)) crcAt.set(end, crc32(buf, crcAt.get(offset)));
      let ack = await ask({ type: "chunk", id: id, offset: offset }, [buf]);
      if (ack === null) ack = await resync(id);                       // continue from what the kernel acknowledged
      if (!ack || (ack.type !== "ack" && ack.type !== "status")) { ok = false; break; }
      if (!crcAt.has(ack.received) || crcAt.get(ack.received) !== ack.crc) { ok = false; break; }   // not our bytes
      offset = ack.received;
    }
    if (ok && !cancelled) {
      let done = await ask({ type: "finish", id: id, crc: crcAt.get(file.size) });
      if (done === null) await resync(id);                            // a finished upload answers 'done' again
    } else if (!cancelled) { await ask({ type: "abort", id: id }); }   // an error: the kernel drops the part file
    current = null;
    cancel.disabled = true;
  };
  input.addEventListener("change", async () => {
    const files = Array.from(input.files || []);
    cancelled = false;
    for (const file of files) {
      if (cancelled) break;
      await send(file);
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
    """One upload in progress: its part file, the bytes acknowledged and their CRC-32 (saved beside it)."""

    def __init__(self, name: str, size: int, part: Path, key: str = "", received: int = 0, crc: int = 0) -> None:
        self.name, self.size, self.part, self.key, self.received, self.crc = name, size, part, key, received, crc

    @property
    def state_path(self) -> Path:
        return self.part.with_suffix(".json")

    def save_state(self) -> None:
        tmp = self.part.with_suffix(".json.tmp")
        tmp.write_text(json.dumps({"name": self.name, "size": self.size, "key": self.key, "received": self.received,
                                   "crc": self.crc}), encoding="utf-8")
        os.replace(tmp, self.state_path)

    @classmethod
    def load(cls, state: Path) -> "_Upload | None":
        """An upload kept on disk by an earlier widget or kernel; None if its files do not agree."""
        try:
            d = json.loads(state.read_text(encoding="utf-8"))
            up = cls(str(d["name"]), int(d["size"]), state.with_suffix(".part"), str(d.get("key", "")),
                     int(d["received"]), int(d["crc"]))
            if up.part.stat().st_size < up.received:
                return None
            with open(up.part, "r+b") as f:        # bytes written after the last saved offset were never acknowledged
                f.truncate(up.received)
            return up
        except (OSError, ValueError, KeyError, TypeError):
            return None


class ChunkedUpload(anywidget.AnyWidget):
    """Upload files of any size in acknowledged slices; see the module docstring."""

    _esm = _ESM
    _css = _CSS
    progress = traitlets.Float(0.0).tag(sync=True)
    status = traitlets.Unicode("").tag(sync=True)
    filename = traitlets.Unicode("").tag(sync=True)
    accept = traitlets.Unicode("").tag(sync=True)
    chunk_size = traitlets.Int(2 * 1024 * 1024).tag(sync=True)
    ack_timeout = traitlets.Float(30.0).tag(sync=True)   # seconds without a reply before the browser resynchronises
    resume_for = traitlets.Float(600.0).tag(sync=True)   # how long it keeps asking before it gives up

    def __init__(self, dest_dir: str | os.PathLike[str], max_bytes: int | None = None, accept: str = "", **kwargs: Any) -> None:
        if os.environ.get("LORA_NB_UPLOAD_ACK_TIMEOUT"):     # a slow link (or a test) can change the 30 s
            kwargs.setdefault("ack_timeout", float(os.environ["LORA_NB_UPLOAD_ACK_TIMEOUT"]))
        super().__init__(accept=accept, **kwargs)
        self.dest_dir = Path(dest_dir)
        self.max_bytes = max_bytes
        self._callbacks: list[Callable[[Path], Any]] = []
        self._uploads: dict[str, _Upload] = {}
        self._finished: dict[str, dict[str, Any]] = {}   # id -> its 'done' reply (a finish whose reply was lost asks again)
        self.resumed = 0                                  # uploads taken up again from a kept part (a reload, a new kernel)
        self.duplicates = 0                               # slices that arrived twice and were not written again
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
                return self._start(str(content.get("name", "")), content.get("size"), str(content.get("key") or ""))
            up = self._uploads.get(str(content.get("id")))
            if up is None:
                done = self._finished.get(str(content.get("id")))
                if done is not None and kind in ("status", "finish"):
                    return dict(done)
                return {"type": "error", "message": "Unknown or finished upload."}
            if kind == "status":
                return {"type": "status", "received": up.received, "crc": up.crc}
            if kind == "chunk":
                return self._chunk(str(content["id"]), up, int(content.get("offset", -1)), buffers)
            if kind == "finish":
                return self._finish(str(content["id"]), up, content.get("crc"))
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

    def _start(self, name: str, size: Any, key: str = "") -> dict[str, Any]:
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
        kept = self._kept(base, size, key) if key else None
        if kept is not None:                                # the same file, begun before a drop or a reload
            uid, up = kept
            self.resumed += 1
            self.filename, self.progress = base, (up.received / size if size else 0.0)
            self.status = f"Resuming {base} at {up.received:,} of {size:,} bytes"
            return {"type": "ready", "id": uid, "received": up.received, "crc": up.crc}
        uid = uuid.uuid4().hex
        part = self.dest_dir / f".upload-{uid}.part"
        part.write_bytes(b"")
        up = _Upload(base, size, part, key)
        up.save_state()
        with self._lock:
            self._uploads[uid] = up
        self.filename, self.progress, self.status = base, 0.0, f"Uploading {base} (0 of {size:,} bytes)"
        return {"type": "ready", "id": uid, "received": 0, "crc": 0}

    def _kept(self, name: str, size: int, key: str) -> tuple[str, _Upload] | None:
        """An unfinished upload of the same file (same key, name and size): this widget's, or one kept on disk."""
        with self._lock:
            for uid, up in self._uploads.items():
                if up.key == key and up.name == name and up.size == size:
                    return uid, up
        for state in sorted(self.dest_dir.glob(".upload-*.json")):
            uid = state.stem[len(".upload-"):]
            if uid in self._uploads:
                continue
            up = _Upload.load(state)
            if up is not None and up.key == key and up.name == name and up.size == size:
                with self._lock:
                    self._uploads[uid] = up
                return uid, up
        return None

    def _chunk(self, uid: str, up: _Upload, offset: int, buffers: list[Any]) -> dict[str, Any]:
        if offset > up.received or offset < 0 or not buffers:
            return {"type": "error", "message": f"Expected data at byte {up.received:,}, got {offset:,}."}
        data = bytes(buffers[0])
        if offset < up.received:                # sent again (queued while offline): keep only what is new
            data = data[up.received - offset:]
            if not data:
                self.duplicates += 1
                return {"type": "ack", "received": up.received, "crc": up.crc}
        if up.received + len(data) > up.size:
            self._drop(uid, up)
            self.status = f"{up.name}: more data arrived than the declared {up.size:,} bytes; the upload was dropped."
            return {"type": "error", "message": self.status}
        with open(up.part, "r+b") as f:
            f.seek(up.received)
            f.write(data)
        up.received += len(data)
        up.crc = zlib.crc32(data, up.crc)
        up.save_state()                         # the offset acknowledged below survives the kernel
        self.progress = up.received / up.size if up.size else 1.0
        self.status = f"Uploading {up.name} ({up.received:,} of {up.size:,} bytes)"
        return {"type": "ack", "received": up.received, "crc": up.crc}

    def _finish(self, uid: str, up: _Upload, crc: Any = None) -> dict[str, Any]:
        if up.received != up.size or up.part.stat().st_size != up.size:
            self._drop(uid, up)
            self.status = f"{up.name}: {up.received:,} of {up.size:,} bytes arrived; the incomplete file was removed. Try again."
            return {"type": "error", "message": self.status}
        if crc is not None and int(crc) != up.crc:
            self._drop(uid, up)
            self.status = (f"{up.name} arrived damaged (its checksum does not match the file in the browser); it was "
                           "removed. Upload it again.")
            return {"type": "error", "message": self.status}
        final = _unique(self.dest_dir / up.name)
        os.replace(up.part, final)
        _unlink(up.state_path)
        done = {"type": "done", "path": final.name}
        with self._lock:
            self._uploads.pop(uid, None)
            self._finished[uid] = done
        self.progress, self.status = 1.0, f"Uploaded {up.name} ({up.size:,} bytes)."
        for cb in list(self._callbacks):
            threading.Thread(target=cb, args=(final,), daemon=True, name="lnb-upload-done").start()
        return dict(done)

    def _drop(self, uid: str, up: _Upload) -> None:
        with self._lock:
            self._uploads.pop(uid, None)
        _unlink(up.part)
        _unlink(up.state_path)


def _unlink(path: Path) -> None:
    try:
        path.unlink()
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
    """Remove part files (and their saved offsets) left by a kernel that died mid-upload (a closed tab, a restart).
    A live upload writes its part file every few seconds, so one untouched for an hour belongs to nobody; a younger
    one can still be resumed."""
    import time

    try:
        parts = list(folder.glob(".upload-*.part")) + list(folder.glob(".upload-*.json"))
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
