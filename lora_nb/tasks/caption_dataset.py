"""Task: natural-language captions (Florence-2, JoyCaption) for every image of a dataset, or a preview of a few.

Run by ``lora_nb.tagging.caption_dataset`` as ``python -m lora_nb.tasks.caption_dataset <run_dir>/task.json``.
The tagging task's job model: progress per batch (images done/total, images per second, ETA); each caption
replaced atomically as its batch finishes, so a stopped job leaves every caption whole; all changes one undo
step (the captions journal, through ``ds.captions.bulk_writer``); Stop (SIGTERM) ends after the current batch.
With ``with_tags`` a WD14 tagger tags the same batch and its tags go into the caption with the sentence.
A preview (``"preview": true``) writes no caption: it saves ``preview.json`` in the run folder as an artifact.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from .progress_reporter import Reporter, StopFlag, load_params


def main(argv: list[str] | None = None) -> int:
    from ..errors import LoraNbError
    from ..tagging.caption_options import CaptionOptions, combine, finish_caption
    from ..tagging.captioner import Captioner
    from ..workspace import Workspace

    stop = StopFlag()
    args = sys.argv[1:] if argv is None else argv
    p = load_params(argv)
    run_dir = Path(args[0]).resolve().parent
    ws = Workspace(p["workspace"])
    rep = Reporter(unit="img")
    preview = bool(p.get("preview"))
    try:
        ds = ws.datasets.get(p["dataset"])
        opts = CaptionOptions(**p["options"])
        files = ds.image_files()
        if not opts.recursive:
            files = [f for f in files if "/" not in ds.rel(f)]
        wanted = p.get("images") or []
        if wanted and str(wanted[0]).startswith("#first:"):
            files = files[:int(str(wanted[0]).split(":", 1)[1])]
        elif wanted:
            files = [str(ds.resolve_image(w)) for w in wanted]
        rep.progress(0, total=len(files), phase="loading model")
        captioner = Captioner(p["model"], opts)
        tagger = None
        if opts.with_tags:
            from ..tagging.options import TagOptions
            from ..tagging.pipeline import Tagger

            tagger = Tagger(opts.with_tags, TagOptions(general_threshold=opts.tags_threshold, character_threshold=max(0.85, opts.tags_threshold),
                                                       batch_size=opts.batch_size, workers=1))
    except LoraNbError as e:
        rep.message(str(e), "error")
        return 1
    rep.message(f"{len(files)} images; {captioner.family} ({captioner.mode}) on {captioner.device} in "
                f"{str(captioner.dtype).replace('torch.', '')}, batch {captioner.batch_size}, up to {captioner.max_new_tokens} new tokens"
                + (f"; WD14 tags from {Path(opts.with_tags).name}" if tagger else ""))
    writer = None if preview else ds.captions.bulk_writer("caption", files)

    def old(path: str) -> str | None:
        return writer.old(path) if writer is not None else ds.captions.get(ds.rel(path))

    if opts.existing == "skip" and not preview:
        todo = [f for f in files if not (old(f) or "").strip()]
        if len(todo) < len(files):
            rep.message(f"{len(files) - len(todo)} images already have a caption and are skipped")
    else:
        todo = files
    broken: list[str] = []
    shown: list[tuple[str, str]] = []
    done = 0
    rep = Reporter(total=len(todo), unit="img")
    rep.progress(0, phase="captioning")

    def on_batch(results: list, stats: Any) -> None:
        nonlocal done
        tags: dict[str, list[str]] = {}
        if tagger is not None:
            ok = [r.path for r in results if not r.error]
            tags = {t.path: list(t.tags) for t in tagger.run(ok) if not t.error}
        for r in results:
            if r.error:
                broken.append(r.error)
                rep.message(r.error, "warning")
                continue
            sentence = combine(r.text, tags.get(r.path, []), opts.tags_position)
            text = finish_caption(sentence, opts.trigger_words, opts.max_length, old(r.path), opts.existing)
            if writer is not None:
                writer.write(r.path, text)
            else:
                shown.append((ds.rel(r.path), text))
                rep.message(f"{ds.rel(r.path)}: {text}")
        done += len(results)
        rep.progress(done, phase="captioning", infer_s=round(stats.infer_s, 4), wait_s=round(stats.wait_s, 4))

    try:
        for _ in captioner.run(todo, on_batch=on_batch, should_stop=stop):
            pass
    finally:
        written = writer.finish() if writer is not None else 0
    if preview:
        out = run_dir / "preview.json"
        out.write_text(json.dumps(shown, ensure_ascii=False, indent=1), encoding="utf-8")
        rep.artifact(str(out), "file")
    if stop:
        rep.message(f"stopped after {done} of {len(todo)} images; {written} captions written, each one whole", "warning")
        return 143
    verb = f"previewed {len(shown)} images (nothing written)" if preview else f"captioned {done - len(broken)} images, {written} captions changed"
    rep.message(f"{verb}, {len(broken)} unreadable")
    rep.progress(done, phase="done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
