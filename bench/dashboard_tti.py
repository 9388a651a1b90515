"""Benchmark: time to an interactive dashboard against a bare Voila notebook, both served in the same run and
opened in headless Chromium (Playwright), median of 5 each; then the first gallery page of a 10,000-image
dataset against a 20-image one.

    .venv/bin/python bench/dashboard_tti.py [--rounds 5] [--images 10000] [--no-gallery]

- time to interactive (TTI): from navigation until the page's first controls can be used — the dashboard's
  dataset dropdown and *Try the demo* button are on screen and enabled; the bare notebook's one HTML widget is
  on screen. Each round loads the page afresh (a new kernel each time, as a user's first visit). Rounds are
  interleaved (bare, dashboard, bare, ...) so load on the machine hits both alike. Prints both medians and
  their ratio (the target: under 3 s and within 1.3x of the bare notebook).
- gallery: choosing the dataset until its first page of 20 thumbnails is drawn; 10,000 images vs. 20.
"""
from __future__ import annotations

import argparse
import io
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"]
BARE = ('{"cells": [{"cell_type": "code", "execution_count": null, "id": "b0", "metadata": {}, "outputs": [], '
        '"source": ["import ipywidgets as w\\nw.HTML(\\"<b class=\'ready\'>ready</b>\\")"]}], "metadata": {}, '
        '"nbformat": 4, "nbformat_minor": 5}')
DASH_READY = ("() => { const s = document.querySelector('.lnb-dataset-select select'), b = document.querySelector('.lnb-demo-btn');"
              " return !!(s && b && s.offsetParent && b.offsetParent && !b.disabled); }")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(argv: list[str], port: int, env: dict[str, str]) -> subprocess.Popen:
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    for _ in range(240):
        try:                                   # not a GET of the page: that would start a kernel of its own
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
            return proc
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"port {port} did not come up")


def make_dataset(ws, name: str, n: int) -> None:
    """``n`` tiny images (copies of 8 seeds) with captions, written directly: the benchmark is about showing them."""
    from PIL import Image

    ds = ws.datasets.create(name)
    folder = ds.path / "1_img"
    folder.mkdir()
    for i in range(8):
        buf = io.BytesIO()
        Image.new("RGB", (96, 64), (i * 30, 120, 200 - i * 20)).save(buf, "PNG")
        (folder / f"{name}-seed{i}.png").write_bytes(buf.getvalue())
    seeds = sorted(folder.glob("*-seed*.png"))
    for i in range(n - len(seeds)):
        shutil.copyfile(seeds[i % len(seeds)], folder / f"{name}-{i:06d}.png")
        (folder / f"{name}-{i:06d}.txt").write_text(f"{name}, tag{i % 50}, image {i}\n")


def tti(browser, url: str, ready: str) -> float:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(180_000)
    try:
        t = time.perf_counter()
        page.goto(url)
        page.wait_for_function(ready, polling=50)
        return time.perf_counter() - t
    finally:
        page.close()


def gallery(browser, url: str, images: int) -> tuple[list[float], list[float]]:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(180_000)
    small_t: list[float] = []
    big_t: list[float] = []
    try:
        page.goto(url)
        page.wait_for_function("() => { const s = document.querySelector('.lnb-dataset-select select'); return !!(s && s.offsetParent); }")
        for name, out in (("small", small_t), ("big", big_t)) * 3:
            t = time.perf_counter()
            page.locator(".lnb-dataset-select select").first.select_option(label=name)
            page.wait_for_function(
                "n => { const t = document.querySelector('.lnb-gallery-page'); return t && t.textContent.includes(n); }",
                arg=f"{20 if name == 'small' else images:,} images")
            page.wait_for_function(   # the page shows this dataset's files, thumbnails drawn
                "n => { const c = [...document.querySelectorAll('.lnb-gallery-cell')].filter(e => e.offsetParent);"
                " return c.length >= 20 && c.every(e => e.textContent.includes(n + '-') && e.querySelector('img')); }", arg=name)
            out.append(time.perf_counter() - t)
    finally:
        page.close()
    return small_t, big_t


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--images", type=int, default=10_000)
    ap.add_argument("--no-gallery", action="store_true")
    args = ap.parse_args()
    import lora_nb
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="bench-tti-"))
    empty = tmp / "empty"                      # TTI on an empty workspace: what a new user opens
    lora_nb.Workspace(empty)
    full = tmp / "full"
    if not args.no_gallery:
        ws = lora_nb.Workspace(full)
        make_dataset(ws, "small", 20)
        make_dataset(ws, "big", args.images)
    bare = tmp / "bare.ipynb"
    bare.write_text(BARE)
    env = dict(os.environ, LORA_NB_HOME=str(empty))
    pd, pb, pg = free_port(), free_port(), free_port()
    procs = [serve([sys.executable, "-m", "lora_nb.cli", "-w", str(empty), "dashboard", "--port", str(pd), "--no-browser"], pd, env),
             serve([sys.executable, "-m", "voila", str(bare), f"--port={pb}", "--no-browser", "--Voila.ip=127.0.0.1"], pb, env)]
    if not args.no_gallery:
        procs.append(serve([sys.executable, "-m", "lora_nb.cli", "-w", str(full), "dashboard", "--port", str(pg), "--no-browser"], pg,
                           dict(env, LORA_NB_HOME=str(full))))
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS, headless=True)
            tti(browser, f"http://127.0.0.1:{pb}/", "() => !!document.querySelector('.ready')")      # warm-up (disk caches)
            tti(browser, f"http://127.0.0.1:{pd}/", DASH_READY)
            bare_t, dash_t = [], []
            for _ in range(args.rounds):
                bare_t.append(tti(browser, f"http://127.0.0.1:{pb}/", "() => !!document.querySelector('.ready')"))
                dash_t.append(tti(browser, f"http://127.0.0.1:{pd}/", DASH_READY))
            small_t, big_t = ([], []) if args.no_gallery else gallery(browser, f"http://127.0.0.1:{pg}/", args.images)
            browser.close()
    finally:
        for proc in procs:
            os.killpg(proc.pid, 15)
    d, b = statistics.median(dash_t), statistics.median(bare_t)
    print(f"rounds: {args.rounds}; dashboard {', '.join(f'{x:.2f}' for x in dash_t)} s; bare {', '.join(f'{x:.2f}' for x in bare_t)} s")
    print(f"time to interactive (median of {args.rounds}): dashboard {d:.2f} s, bare Voila notebook {b:.2f} s -> ratio {d / b:.2f}"
          f" (target: < 3 s and <= 1.3)")
    if small_t:
        print(f"first gallery page (median of {len(big_t)}): {args.images:,} images {statistics.median(big_t):.2f} s, 20 images "
              f"{statistics.median(small_t):.2f} s -> ratio {statistics.median(big_t) / statistics.median(small_t):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
