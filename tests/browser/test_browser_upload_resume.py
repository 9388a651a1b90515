"""An upload through the real dashboard (Voila, headless Debian Chromium) survives a dropped connection (issue 15).

The page's WebSocket is wrapped before any page script runs (Playwright init script), so the test can cut the
connection mid-upload: it closes the kernel's websocket (the page reconnects, as after a network blip) and, for a
moment, throws away the upload's slice messages the page sends (what a dead link does to them). The uploader must
notice the missing reply, ask the kernel where it stands, go on from the last acknowledged slice, and land the
file byte for byte. ``LORA_NB_UPLOAD_ACK_TIMEOUT=3`` makes it notice in 3 s instead of 30.
"""
from __future__ import annotations

import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import lora_nb
from support import CHROMIUM_ARGS, free_port, wait_for, wait_port

pytestmark = [pytest.mark.browser, pytest.mark.slow,
              pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="Debian's chromium is not installed (apt-get install chromium)")]

CHUNK = 2 * 1024 * 1024       # the uploader's slice size

# counts the upload's slice messages the page sends, and drops them while window.__lnbNet.drop is set
WRAP_WEBSOCKET = """
(() => {
  const net = window.__lnbNet = { drop: false, chunks: 0, dropped: 0, sockets: [] };
  const Orig = window.WebSocket;
  const probe = new TextDecoder();
  const isChunk = (data) => {
    let bytes = null;
    if (data instanceof ArrayBuffer) bytes = new Uint8Array(data, 0, Math.min(data.byteLength, 16384));
    else if (ArrayBuffer.isView(data)) bytes = new Uint8Array(data.buffer, data.byteOffset, Math.min(data.byteLength, 16384));
    const text = bytes ? probe.decode(bytes) : (typeof data === "string" ? data.slice(0, 16384) : "");
    return /"type":\\s*"chunk"/.test(text);
  };
  class Wrapped extends Orig {
    constructor(...args) { super(...args); net.sockets.push(this); }
    send(data) {
      if (isChunk(data)) {
        net.chunks++;
        if (net.drop) { net.dropped++; return; }
      }
      return super.send(data);
    }
  }
  window.WebSocket = Wrapped;
})();
"""


def _noise_png(seed: int, side: int = 900) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(buf, "PNG", compress_level=0)
    return buf.getvalue()


@pytest.fixture(scope="module")
def voila(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume") / "ws"
    ws = lora_nb.Workspace(root)
    ws.datasets.create("alice")
    port = free_port()
    log = tmp_path_factory.mktemp("logs") / "dashboard.log"
    env = dict(os.environ, PYTHONUNBUFFERED="1", LORA_NB_UPLOAD_ACK_TIMEOUT="3")
    proc = subprocess.Popen([sys.executable, "-m", "lora_nb.cli", "dashboard", "-w", str(root), "--port", str(port), "--no-browser"],
                            stdout=open(log, "w"), stderr=subprocess.STDOUT, env=env, start_new_session=True)
    wait_port(proc, port, log)
    yield f"http://127.0.0.1:{port}/", ws
    os.killpg(proc.pid, 15)
    proc.wait(30)


def test_an_upload_resumes_after_the_connection_drops(voila, tmp_path):
    from playwright.sync_api import sync_playwright

    url, ws = voila
    images = {f"noise_{i}.png": _noise_png(i) for i in range(4)}             # ~9.7 MB, incompressible
    archive = tmp_path / "noise.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as z:
        for name, data in images.items():
            z.writestr(name, data)
    slices = -(-archive.stat().st_size // CHUNK)
    assert slices >= 4
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(120_000)
            page.add_init_script(WRAP_WEBSOCKET)
            page.goto(url)
            page.wait_for_selector(".lnb-dataset-select select", timeout=240_000)
            page.wait_for_function("() => document.querySelector('.lnb-dataset-select select').value === 'alice'")
            page.locator(".lnb-upload input[type=file]").set_input_files(str(archive))
            page.wait_for_function("() => window.__lnbNet.chunks >= 2")           # a slice or two acknowledged
            # the link dies: the kernel's websocket closes and what the page sends meanwhile is lost
            page.evaluate("() => { window.__lnbNet.drop = true; window.__lnbNet.sockets.forEach((s) => s.close()); }")
            page.wait_for_function("() => window.__lnbNet.dropped >= 1", timeout=60_000)
            page.wait_for_timeout(1500)
            page.evaluate("() => { window.__lnbNet.drop = false; }")              # back online
            wait_for(lambda: len(ws.datasets.get("alice").images()) == len(images), timeout=180,
                     what="the uploaded images")
            net = page.evaluate("() => ({ chunks: window.__lnbNet.chunks, dropped: window.__lnbNet.dropped })")
        finally:
            browser.close()
    ds = ws.datasets.get("alice")
    got = {i.path.name: i.path.read_bytes() for i in ds.images()}
    assert got == images                                                     # byte for byte, nothing damaged
    # every slice went out once, plus once more for each one the dead link swallowed: none acknowledged was re-sent
    assert net["dropped"] >= 1 and net["chunks"] == slices + net["dropped"], (net, slices)
    assert not list((ws.tmp_dir / "uploads").glob(".upload-*"))             # no part file or saved offset left
