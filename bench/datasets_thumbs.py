"""Benchmark: thumbnails for N JPEGs of 2-4 megapixels, cold and warm, against a naive loop.

    .venv/bin/python bench/datasets_thumbs.py [--count 2000] [--baseline-count 200]

The JPEGs are generated once and cached in /tmp/lora-nb-bench/. Baselines, measured in the
same run on the first --baseline-count images, one thread:
  naive-full:  Image.open(p); im.load(); im.thumbnail((256, 256)); save   (full decode)
  pillow-default: Image.open(p).thumbnail((256, 256)); save   (Pillow's own draft at 2x the size)
lora-nb: ds.thumbnails(size=256): draft mode at 1x, thread pool, disk cache.
"""
from __future__ import annotations

import argparse
import io
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

CACHE = Path("/tmp/lora-nb-bench")


def _make(args: tuple[Path, int]) -> None:
    import numpy as np
    from PIL import Image

    path, seed = args
    rng = np.random.default_rng(seed)
    mp = rng.uniform(2.0, 4.0) * 1e6
    aspect = rng.choice([4 / 3, 3 / 2, 1.0, 2 / 3, 3 / 4])
    w = int((mp * aspect) ** 0.5)
    h = int(mp / w)
    small = Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8), "RGB").resize((w, h), Image.BICUBIC)
    noise = rng.normal(0, 12, (h, w, 1)).astype(np.int16)   # photo-like grain keeps the files realistic in size
    arr = np.clip(np.asarray(small, dtype=np.int16) + noise, 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=90)
    tmp = path.with_suffix(".part")
    tmp.write_bytes(buf.getvalue())
    os.replace(tmp, path)


def corpus(count: int) -> list[Path]:
    folder = CACHE / "jpegs"
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"img{i:05d}.jpg" for i in range(count)]
    todo = [(p, i) for i, p in enumerate(paths) if not p.exists()]
    if todo:
        print(f"generating {len(todo)} JPEGs in {folder} (once) ...", file=sys.stderr)
        with ProcessPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            list(pool.map(_make, todo, chunksize=8))
    return paths


def naive(paths: list[Path], out: Path, full: bool) -> float:
    from PIL import Image

    out.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    for i, p in enumerate(paths):
        im = Image.open(p)
        if full:
            im.load()
        im.thumbnail((256, 256))
        im.convert("RGB").save(out / f"{i}.jpg", "JPEG", quality=85)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--baseline-count", type=int, default=200)
    ap.add_argument("--page", type=int, default=48)
    args = ap.parse_args()
    import lora_nb

    paths = corpus(args.count)
    mp = sum(_mp(p) for p in paths[:50]) / min(50, len(paths))
    size_mb = sum(p.stat().st_size for p in paths) / 1e6
    root = Path(tempfile.mkdtemp(prefix="lnb-thumbs-"))
    try:
        ws = lora_nb.Workspace(root / "ws")
        ds = ws.datasets.create("bench")
        for p in paths:
            os.symlink(p, ds.path / p.name)
        items = ds.image_paths()
        t = time.perf_counter(); ds.thumbnails(items[: args.page], size=256); page = time.perf_counter() - t
        shutil.rmtree(ds.meta_dir / "thumbs")
        t = time.perf_counter(); out = ds.thumbnails(size=256); cold = time.perf_counter() - t
        assert all(o is not None for o in out)
        t = time.perf_counter(); ds.thumbnails(size=256); warm = time.perf_counter() - t
        nb = min(args.baseline_count, len(paths))
        full = naive(paths[:nb], root / "naive-full", True) / nb
        default = naive(paths[:nb], root / "naive-default", False) / nb
    finally:
        shutil.rmtree(root, ignore_errors=True)
    n = len(paths)
    print(f"{n} JPEGs, {mp:.1f} MP average, {size_mb:.0f} MB, {os.cpu_count()} CPU cores")
    print(f"lora-nb first page ({args.page}) cold: {page:.2f} s")
    print(f"lora-nb cold: {cold:.2f} s ({cold / n * 1000:.1f} ms/image)")
    print(f"lora-nb warm: {warm:.3f} s ({warm / n * 1e6:.0f} us/image)")
    print(f"baseline naive full decode, 1 thread: {full * 1000:.1f} ms/image (x{n} = {full * n:.1f} s) -> cold speed-up x{full * n / cold:.1f}, warm x{full * n / warm:.0f}")
    print(f"baseline Pillow default thumbnail(), 1 thread: {default * 1000:.1f} ms/image -> cold speed-up x{default * n / cold:.1f}")


def _mp(p: Path) -> float:
    from PIL import Image

    with Image.open(p) as im:
        return im.size[0] * im.size[1] / 1e6


if __name__ == "__main__":
    main()
