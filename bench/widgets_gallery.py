"""Benchmark: showing a gallery page costs the same for 20 images and for 20,000.

    .venv/bin/python bench/widgets_gallery.py [--big 20000] [--naive 1000]

Figures (one run, same machine, medians of 3):
  * drawing one page of 20 cells with cold thumbnails in a 20-image and in a ``--big``-image dataset;
    the ratio big/small is the claim (about 1);
  * opening a dataset (the one O(n) step: listing its files) for both sizes, and a warm page flip;
  * baseline: a naive gallery that makes one Image+caption widget per image, measured on ``--naive``
    images, against our paged gallery on the same images.
"""
from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path


def _png(i: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (96, 72), ((i * 37) % 256, (i * 91) % 256, (i * 53) % 256)).save(buf, "PNG")
    return buf.getvalue()


def _dataset(ws, name: str, n: int):
    ds = ws.datasets.create(name)
    sub = ds.path / "10_x"
    sub.mkdir()
    blobs = [_png(i) for i in range(64)]
    for i in range(n):
        (sub / f"img{i:06d}.png").write_bytes(blobs[i % 64])
        (sub / f"img{i:06d}.txt").write_text(f"x, tag{i % 17}, colour {i % 5}")
    return ds


def _open(ws, name: str) -> float:
    """Seconds from choosing ``name`` in a new panel to its first page drawn (cold thumbnails)."""
    from lora_nb.widgets import DatasetPanel

    p = DatasetPanel(ws, page_size=20)
    p.select.value = None
    p.runner.idle(120)
    t = time.perf_counter()
    p.select.value = name
    p.runner.idle(120)
    took = time.perf_counter() - t
    assert all(img.value for img in p.gallery.images), "thumbnails missing"
    return took


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--big", type=int, default=20000)
    ap.add_argument("--naive", type=int, default=1000)
    a = ap.parse_args()
    import lora_nb
    import ipywidgets as W

    root = Path(tempfile.mkdtemp(prefix="lnb-bench-gallery-"))
    ws = lora_nb.Workspace(root)
    t = time.perf_counter()
    _dataset(ws, "a_small", 20)
    _dataset(ws, "b_big", a.big)
    _dataset(ws, "c_naive", a.naive)
    print(f"made datasets ({a.big:,} + 20 + {a.naive:,} images) in {time.perf_counter() - t:.1f} s")

    import shutil

    from lora_nb.widgets import DatasetPanel

    def page_draw(name: str, page: int) -> tuple[float, float]:
        """(seconds to open the dataset in a panel, seconds to draw one unseen page with cold thumbnails)."""
        ds = ws.datasets.get(name)
        shutil.rmtree(ds.meta_dir, ignore_errors=True)        # no caches at all: listing, caption format, thumbnails
        p = DatasetPanel(ws, page_size=20)
        p.select.value = None
        p.runner.idle(120)
        t = time.perf_counter()
        p.select.value = name
        p.runner.idle(120)
        opened = time.perf_counter() - t
        shutil.rmtree(ds.meta_dir / "thumbs", ignore_errors=True)
        t = time.perf_counter()
        p.gallery.go(page)
        p.runner.idle(120)
        drawn = time.perf_counter() - t
        assert all(img.value for img in p.gallery.images)
        return opened, drawn

    runs_small = [page_draw("a_small", 0) for _ in range(3)]
    runs_big = [page_draw("b_big", a.big // 40) for _ in range(3)]
    o_s, d_s = (statistics.median(x) for x in zip(*runs_small))
    o_b, d_b = (statistics.median(x) for x in zip(*runs_big))
    print(f"draw one page (20 cells, cold thumbnails), 20-image dataset:      {d_s * 1000:6.0f} ms")
    print(f"draw one page (20 cells, cold thumbnails), {a.big:,}-image dataset: {d_b * 1000:6.0f} ms"
          f"   ratio = {d_b / d_s:.2f}x (goal: about 1)")
    print(f"open the dataset (list files, detect caption format, first page): 20 images {o_s * 1000:.0f} ms, "
          f"{a.big:,} images {o_b * 1000:.0f} ms (the one O(n) step: a directory listing)")
    p = DatasetPanel(ws, page_size=20)
    p.select.value = "b_big"
    p.runner.idle(120)
    p.gallery.go(3)
    p.runner.idle(120)
    p.gallery.go(0)
    p.runner.idle(120)
    t = time.perf_counter()
    p.gallery.go(3)
    p.runner.idle(120)
    print(f"flip back to a page seen before (warm thumbnails): {(time.perf_counter() - t) * 1000:.0f} ms")

    # baseline: one widget per image (what a gallery without paging does)
    ds = ws.datasets.get("c_naive")
    t = time.perf_counter()
    thumbs = ds.thumbnails(size=128)
    cells = [W.VBox([W.Image(value=Path(th).read_bytes() if th else b"", format="jpeg", width=128, height=128),
                     W.HTML(ds.captions.get(str(p_)) or "")]) for p_, th in zip(ds.image_paths(), thumbs)]
    W.Box(cells)
    naive = time.perf_counter() - t
    shutil.rmtree(ds.meta_dir / "thumbs", ignore_errors=True)
    ours = _open(ws, "c_naive")
    print(f"baseline, one widget per image, {a.naive:,} images: {naive * 1000:.0f} ms; paged gallery: {ours * 1000:.0f} ms "
          f"-> {naive / ours:.0f}x faster (and {a.naive // 20}x fewer widgets in the browser)")
    shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
