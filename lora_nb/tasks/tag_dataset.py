"""Task: tag every image of a dataset with a WD14 tagger and write the captions.

Run by ``lora_nb.tagging.tag_dataset`` as ``python -m lora_nb.tasks.tag_dataset <run_dir>/task.json``.
Progress per batch (images done/total, images per second, ETA). Each caption is replaced atomically
as its batch finishes, so a stopped job leaves every caption whole; all changes form one undo step.
Stop (SIGTERM) ends after the current batch.
"""
from __future__ import annotations

import sys
from collections import Counter
from typing import Any

from .progress_reporter import Reporter, StopFlag, load_params



def main(argv: list[str] | None = None) -> int:
    from ..errors import LoraNbError
    from ..tagging.options import TagOptions
    from ..tagging.pipeline import Tagger
    from ..workspace import Workspace

    stop = StopFlag()
    p = load_params(argv)
    ws = Workspace(p["workspace"])
    rep = Reporter(unit="img")
    try:
        ds = ws.datasets.get(p["dataset"])
        opts = TagOptions(**p["options"])
        files = ds.image_files()
        if not opts.recursive:
            files = [f for f in files if "/" not in ds.rel(f)]
        rep.progress(0, total=len(files), phase="loading model")
        tagger = Tagger(p["model"], opts)
    except LoraNbError as e:
        rep.message(str(e), "error")
        return 1
    rep.message(f"{len(files)} images; model input {tagger.session.size}px {tagger.session.layout}, batch {tagger.batch_size}, "
                f"providers {', '.join(tagger.session.providers)}")
    writer = ds.captions.bulk_writer("tag", files)
    if opts.existing == "skip":
        todo = [f for f in files if writer.old(f) is None or not writer.old(f).strip()]
        if len(todo) < len(files):
            rep.message(f"{len(files) - len(todo)} images already have a caption and are skipped")
    else:
        todo = files
    sep = opts.caption_separator
    counts: Counter = Counter()
    broken: list[str] = []
    done = 0
    rep = Reporter(total=len(todo), unit="img")
    rep.progress(0, phase="tagging")

    def on_batch(results: list, stats: Any) -> None:
        nonlocal done
        for r in results:
            if r.error:
                broken.append(r.error)
                rep.message(r.error, "warning")
                continue
            tags = list(r.tags)
            if opts.existing == "append":
                old = writer.old(r.path)
                if old and old.strip():
                    existing = [t.strip() for t in old.strip("\n").split(sep.strip() or sep) if t.strip()]
                    tags = existing + [t for t in tags if t not in existing]
            writer.write(r.path, sep.join(tags))
            counts.update(r.tags)
        done += len(results)
        rep.progress(done, phase="tagging", infer_s=round(stats.infer_s, 4), wait_s=round(stats.wait_s, 4))

    try:
        for _ in tagger.run(todo, on_batch=on_batch, should_stop=stop):
            pass
    finally:
        written = writer.finish()
    if stop:
        rep.message(f"stopped after {done} of {len(todo)} images; {written} captions written, each one whole", "warning")
        return 143
    top = ", ".join(f"{t} ({n})" for t, n in counts.most_common(15))
    rep.message(f"tagged {done - len(broken)} images, {written} captions changed, {len(broken)} unreadable; most frequent: {top}")
    rep.progress(done, phase="done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
