"""Benchmark: bulk trigger-word add, undo, and tag-frequency counts over N caption files.

    .venv/bin/python bench/captions_bulk.py [--count 100000] [--repeat 3]

Goals (issue 3): add-trigger under 3 s and frequency count under 1 s for 100,000 captions.
Baseline, measured in the same run on the same files: the plain loop a script would
write (open/read/split, then ``open(path, "w").write`` for each changed file: no undo,
no crash safety, no preview data) and a plain read + Counter loop for the frequencies.
Each figure is the median of ``--repeat`` runs (the machines here are noisy).

The caption set (about 20 WD14-like tags each) is generated once under
/tmp/lora-nb-bench/ and copied for each run; the copies' captions are left to age past
the cache's racy window (0.1 s) before timing, as an imported dataset would be. Before
each timing the file system is synced (``settle``): on this 2-core machine the kernel's
write-back of the set-up's files otherwise lands in whichever step runs next.
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
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


def timed(fn):
    settle()
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def settle() -> None:
    """Flush what earlier steps wrote, so the kernel's write-back of the set-up (100,000 new
    files) or of the previous step does not land inside the next timing; then let the
    newest writes age past the cache's racy window, as on a dataset edited a moment ago."""
    os.sync()
    time.sleep(0.3)


def plain_frequencies(paths: list[str]) -> Counter:
    freq: Counter = Counter()
    for p in paths:
        with open(p, encoding="utf-8") as f:
            freq.update({x.strip() for x in f.read().split(",") if x.strip()})
    return freq


def plain_add_trigger(paths: list[str], word: str) -> int:
    n = 0
    for p in paths:
        with open(p, encoding="utf-8") as f:
            tags = [x.strip() for x in f.read().split(",") if x.strip()]
        if word not in tags:
            with open(p, "w", encoding="utf-8") as f:
                f.write(", ".join([word] + tags))
            n += 1
    return n


def one_run(src: Path, count: int) -> dict[str, float]:
    import lora_nb
    import lora_nb.captions.cache as cache_mod
    from lora_nb.datasets import listing

    def new_kernel() -> None:   # what a restarted kernel has: only what is on disk
        cache_mod._cache.clear()
        listing.forget()

    new_kernel()
    root = Path(tempfile.mkdtemp(prefix="lnb-caps-"))
    try:
        ws = lora_nb.Workspace(root / "ws")
        dst = ws.datasets_dir / "caps"
        shutil.copytree(src, dst, copy_function=os.link, ignore=shutil.ignore_patterns("done"))
        for p in dst.glob("*.txt"):   # own caption files (the image files stay hard links)
            data = p.read_bytes(); p.unlink(); p.write_bytes(data)
        ds = ws.datasets.get("caps")
        r: dict[str, float] = {}
        r["first count (builds the cache)"], freq = timed(ds.captions.frequencies)
        new_kernel()                  # the cache and the listing come from disk
        r["count, cache from disk"], freq2 = timed(ds.captions.frequencies)
        r["count, cache in memory"], _ = timed(ds.captions.frequencies)
        assert freq == freq2
        r["preview add_trigger"], prev = timed(lambda: ds.captions.add_trigger("ohwx", preview=True))
        assert prev.changed == count
        r["add_trigger"], res = timed(lambda: ds.captions.add_trigger("ohwx"))
        assert res.changed == count
        r["count after the edit"], after = timed(ds.captions.frequencies)
        assert after["ohwx"] == count
        r["undo"], u = timed(ds.captions.undo)
        assert u.changed == count
        paths = [os.path.join(dst, n) for n in sorted(os.listdir(dst)) if n.endswith(".txt")]
        r["plain count loop"], base = timed(lambda: plain_frequencies(paths))
        assert base == freq
        r["plain add loop"], n = timed(lambda: plain_add_trigger(paths, "ohwx"))
        assert n == count
        return r
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    src = corpus(args.count)
    runs = [one_run(src, args.count) for _ in range(args.repeat)]
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    print(f"{args.count} captions, {os.cpu_count()} CPU cores, median of {args.repeat} runs")
    for k, v in med.items():
        print(f"  {k:34s} {v:6.2f} s")
    print(f"add_trigger: {med['add_trigger']:.2f} s (goal < 3 s); plain loop {med['plain add loop']:.2f} s; "
          f"ratio x{med['plain add loop'] / med['add_trigger']:.2f}")
    print(f"frequencies: {med['count, cache from disk']:.2f} s with the cache (goal < 1 s), "
          f"{med['first count (builds the cache)']:.2f} s the first time; plain loop {med['plain count loop']:.2f} s; "
          f"ratio x{med['plain count loop'] / med['count, cache from disk']:.2f}")


if __name__ == "__main__":
    main()
