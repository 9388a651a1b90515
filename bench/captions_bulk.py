"""Benchmark: bulk trigger-word add, undo, and a tag-frequency count over N caption files.

    .venv/bin/python bench/captions_bulk.py [--count 100000]

Goals (issue 3): add-trigger under 3 s and frequency count under 1 s for 100,000 captions.
Baseline, in the same run: the plain loop a script would write (open/read/split, then
open(path, "w").write for each changed file: no atomic rename, no undo snapshot, no
preview data), and a plain read + Counter loop for the frequencies.
The caption set (about 20 WD14-like tags each) is generated once under /tmp/lora-nb-bench/.
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

CACHE = Path("/tmp/lora-nb-bench")
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c6360000002000100e221bc330000000049454e44ae426082")


def corpus(count: int) -> Path:
    src = CACHE / f"captions-{count}"
    if (src / "done").exists():
        return src
    print(f"generating {count} captions in {src} (once) ...", file=sys.stderr)
    shutil.rmtree(src, ignore_errors=True)
    src.mkdir(parents=True)
    rng = random.Random(0)
    vocab = [f"tag_{i}" for i in range(800)] + ["1girl", "solo", "long hair", "smile", "looking at viewer"]
    for i in range(count):
        if i % 20_000 == 0:   # ext4 allows 65,000 links to one file; the copy below adds as many again
            proto = src / f".proto{i}.png"
            proto.write_bytes(PNG)
        os.link(proto, src / f"{i:06d}.png")
        (src / f"{i:06d}.txt").write_text(", ".join(rng.sample(vocab, 20)))
    (src / "done").write_text("ok")
    return src


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=100_000)
    args = ap.parse_args()
    import lora_nb

    src = corpus(args.count)
    root = Path(tempfile.mkdtemp(prefix="lnb-caps-"))
    try:
        ws = lora_nb.Workspace(root / "ws")
        shutil.copytree(src, ws.datasets_dir / "caps", copy_function=os.link, ignore=shutil.ignore_patterns("done"))
        # hard links share the caption files with the cache: break them so edits stay in this copy
        ds = ws.datasets.get("caps")
        for p in ds.path.glob("*.txt"):
            data = p.read_bytes(); p.unlink(); p.write_bytes(data)
        t = time.perf_counter(); freq = ds.captions.frequencies(); t_freq = time.perf_counter() - t
        t = time.perf_counter(); r = ws.datasets.get("caps").captions.add_trigger("ohwx"); t_add = time.perf_counter() - t
        assert r.changed == args.count
        t = time.perf_counter(); u = ds.captions.undo(); t_undo = time.perf_counter() - t
        assert u.changed == args.count
        t = time.perf_counter(); prev = ds.captions.add_trigger("ohwx", preview=True); t_prev = time.perf_counter() - t
        assert prev.changed == args.count
        paths = [p.with_suffix(".txt") for p in ds.image_paths()]
        t = time.perf_counter()
        base_freq: Counter = Counter()
        for p in paths:
            with open(p, encoding="utf-8") as f:
                base_freq.update({x.strip() for x in f.read().split(",") if x.strip()})
        b_freq = time.perf_counter() - t
        assert base_freq == freq
        t = time.perf_counter()
        for p in paths:
            with open(p, encoding="utf-8") as f:
                tags = [x.strip() for x in f.read().split(",") if x.strip()]
            if "ohwx" not in tags:
                with open(p, "w", encoding="utf-8") as f:
                    f.write(", ".join(["ohwx"] + tags))
        b_add = time.perf_counter() - t
    finally:
        shutil.rmtree(root, ignore_errors=True)
    n = args.count
    print(f"{n} captions, {os.cpu_count()} CPU cores")
    print(f"add_trigger (atomic writes + undo snapshot): {t_add:.2f} s (goal < 3 s); plain loop, in place: {b_add:.2f} s; ratio x{b_add / t_add:.2f}")
    print(f"preview of add_trigger (no writes): {t_prev:.2f} s; undo: {t_undo:.2f} s")
    print(f"frequencies: {t_freq:.2f} s (goal < 1 s); plain loop: {b_freq:.2f} s; ratio x{b_freq / t_freq:.2f}")


if __name__ == "__main__":
    main()
