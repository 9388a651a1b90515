"""Benchmark: time to an interactive dashboard, and time to show a gallery page of a 10,000-image dataset,
each against a baseline measured in the same run, in headless Chromium (Playwright) against the real
`lora-nb dashboard` (Voila).

    .venv/bin/python bench/dashboard_load.py [--images 10000]

- time to interactive: page load until the dashboard's widgets are on screen, vs. the same Voila
  serving a one-cell notebook (the cost of Voila + a kernel itself);
- gallery: choosing the dataset until its first page of thumbnails is shown, 10,000 images vs. 20
  (the gallery re-uses a fixed number of cells, so the two should be close).
"""
from __future__ import annotations

import argparse
import io
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"]


def port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(argv: list[str], url: str, env: dict[str, str]) -> subprocess.Popen:
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    port = int(url.rstrip("/").rsplit(":", 1)[1])
    for _ in range(240):
        try:                                   # not a GET of the page: that would start a kernel of its own
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
            return proc
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"{url} did not come up")


def make_dataset(ws, name: str, n: int) -> None:
    from PIL import Image

    ds = ws.datasets.create(name)
    folder = ds.path / "1_img"
    folder.mkdir()
    buf = io.BytesIO()
    for i in range(8):
        buf = io.BytesIO()
        Image.new("RGB", (96, 64), (i * 30, 120, 200 - i * 20)).save(buf, "PNG")
        (folder / f"{name}-seed{i}.png").write_bytes(buf.getvalue())
    seeds = sorted(folder.glob("*-seed*.png"))
    for i in range(n - len(seeds)):                    # files written directly: the benchmark is about showing them
        shutil.copyfile(seeds[i % len(seeds)], folder / f"{name}-{i:06d}.png")
        (folder / f"{name}-{i:06d}.txt").write_text(f"{name}, tag{i % 50}, image {i}\n")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=10_000)
    args = ap.parse_args()
    import lora_nb
    from playwright.sync_api import sync_playwright

    root = Path(tempfile.mkdtemp(prefix="bench-dash-")) / "ws"
    ws = lora_nb.Workspace(root)
    t0 = time.time()
    make_dataset(ws, "small", 20)
    make_dataset(ws, "big", args.images)
    print(f"datasets: 20 and {args.images:,} images (made in {time.time() - t0:.0f} s)")
    blank = root.parent / "blank.ipynb"
    blank.write_text('{"cells": [{"cell_type": "code", "execution_count": null, "id": "b0", "metadata": {}, "outputs": [], '
                     '"source": ["import ipywidgets as w\\nw.HTML(\\"<b class=\'ready\'>ready</b>\\")"]}], "metadata": {}, '
                     '"nbformat": 4, "nbformat_minor": 5}')
    env = dict(os.environ, LORA_NB_HOME=str(root))
    pd, pb = port(), port()
    dash = serve([sys.executable, "-m", "lora_nb.cli", "-w", str(root), "dashboard", "--port", str(pd), "--no-browser"], f"http://127.0.0.1:{pd}/", env)
    base = serve([sys.executable, "-m", "voila", str(blank), f"--port={pb}", "--no-browser", "--Voila.ip=127.0.0.1"], f"http://127.0.0.1:{pb}/", env)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS, headless=True)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(180_000)
            tti, blank_t, small_t, big_t = [], [], [], []
            for _ in range(2):                                   # interleaved rounds; the best of each counts
                t = time.perf_counter()
                page.goto(f"http://127.0.0.1:{pb}/")
                page.wait_for_selector(".ready")
                blank_t.append(time.perf_counter() - t)
                t = time.perf_counter()
                page.goto(f"http://127.0.0.1:{pd}/")
                page.wait_for_selector(".lnb-dashboard")
                page.wait_for_selector(".lnb-dataset-select select")
                tti.append(time.perf_counter() - t)
                for name, out in (("small", small_t), ("big", big_t), ("small", []), ("big", [])):
                    t = time.perf_counter()
                    page.locator(".lnb-dataset-select select").first.select_option(label=name)
                    page.wait_for_function(
                        "n => { const t = document.querySelector('.lnb-gallery-page'); return t && t.textContent.includes(n); }",
                        arg=f"{20 if name == 'small' else args.images:,} images")
                    page.wait_for_function(   # the page shows this dataset's files, thumbnails drawn
                        "n => { const c = [...document.querySelectorAll('.lnb-gallery-cell')].filter(e => e.offsetParent);"
                        " return c.length >= 20 && c.every(e => e.textContent.includes(n + '-') && e.querySelector('img')); }", arg=name)
                    out.append(time.perf_counter() - t)
            browser.close()
    finally:
        for proc in (dash, base):
            os.killpg(proc.pid, 15)
    print(f"time to interactive: dashboard {min(tti):.1f} s, one-cell Voila notebook {min(blank_t):.1f} s "
          f"-> ratio {min(tti) / min(blank_t):.2f}")
    print(f"first gallery page: {args.images:,} images {min(big_t):.2f} s, 20 images {min(small_t):.2f} s "
          f"-> ratio {min(big_t) / min(small_t):.2f} (the page itself is the same 20 cells; the difference is listing the files once)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
