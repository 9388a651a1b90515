"""``ds.caption(...)``: natural-language captions for a workspace dataset, as a job (Florence-2, JoyCaption).

The same job model as ``ds.tag(...)``: batched, pipelined decode, progress per batch with images/s and ETA,
Stop ends after the current batch with every caption whole, the captions the job changes form one undo
step (``ds.captions.undo()``), and the existing-caption policies overwrite / append / skip.
``preview_captions`` runs the same job on a few images and writes nothing: the captions come back in
``job.artifacts`` (a ``preview.json``) and in the log.

>>> import lora_nb, tempfile
>>> from lora_nb import demo
>>> from lora_nb.tagging.caption_tiny import build_tiny_florence2
>>> ws = lora_nb.Workspace(tempfile.mkdtemp())
>>> ds = demo.make_dataset(ws, n=2, size=(64, 64), captions=False)
>>> job = caption_dataset(ds, model=str(build_tiny_florence2(ws.root / "flo")), trigger_words="ohwx", max_new_tokens=6)
>>> job.wait(180).value, ds.images()[0].caption.startswith("ohwx, ")
('succeeded', True)
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .caption_options import CaptionOptions, PromptPresets

if TYPE_CHECKING:  # pragma: no cover
    from ..ports import JobHandle
    from .dataset import TagTarget

__all__ = ["caption_dataset", "preview_captions", "read_preview"]

_ENV = ("HF_TOKEN", "HF_HOME", "HF_HUB_CACHE", "HF_HUB_OFFLINE", "HF_ENDPOINT", "LORA_NB_CAPTION_DEVICE")


def _check(model: str, options: dict[str, Any], presets_dir: str | Path | None) -> tuple[str, CaptionOptions]:
    from ..errors import InvalidInput
    from .caption_models import is_captioner_folder, resolve_captioner

    preset = options.pop("preset", None)
    if preset:
        if presets_dir is None:
            raise InvalidInput("A preset was named but there is no presets folder.", fix="Call ds.caption(...) on a workspace dataset.")
        options = {**PromptPresets(presets_dir).load(str(preset)), **options}
    opts = CaptionOptions(**options)
    path = Path(str(model)).expanduser()
    if path.is_dir() or str(model).startswith((".", "/", "~")):
        if not is_captioner_folder(path):
            from ..errors import TaggerError

            raise TaggerError(f"The captioner folder {path} has no config.json and *.safetensors weights.",
                              fix="Point model= at a folder written by save_pretrained (model and processor), or use a registry name.")
        model = str(path.resolve())
    else:
        resolve_captioner(str(model))   # a clear error for an unknown name, before queueing
    if opts.with_tags:
        from ..errors import TaggerError
        from .registry import FILES, resolve_name

        tp = Path(opts.with_tags).expanduser()
        if tp.is_dir() or opts.with_tags.startswith((".", "/", "~")):
            if not all((tp / f).is_file() for f in FILES):
                raise TaggerError(f"with_tags: the tagger folder {tp} has no model.onnx and selected_tags.csv.",
                                  fix="Name a WD14 tagger (e.g. wd-vit-tagger-v3) or its folder.")
            opts = opts.model_copy(update={"with_tags": str(tp.resolve())})
        else:
            resolve_name(opts.with_tags)
    return str(model), opts


def _submit(ds: "TagTarget", model: str, opts: CaptionOptions, images: list[str] | None, preview: bool) -> "JobHandle":
    from .captioner import runs_on_gpu

    ds.check_exists()
    env = {k: os.environ[k] for k in _ENV if k in os.environ}
    params = {"dataset": ds.name, "model": model, "options": opts.model_dump(), "preview": preview, "images": images}
    what = "preview captions" if preview else "caption"
    return ds.jobs.submit_task("caption_dataset", params, name=f"{what} {ds.name}", gpus=1 if runs_on_gpu() else 0, env=env,
                               meta={"dataset": ds.name, "model": model, "preview": preview})


def caption_dataset(ds: "TagTarget", model: str = "florence-2-large", presets_dir: str | Path | None = None,
                    **options: Any) -> "JobHandle":
    """Queue a captioning job for every image of ``ds``; returns the Job (progress per batch, images/s, ETA).

    ``model``: a registry name (``lora_nb.tagging.caption_models.CAPTIONERS``), a Hub repo id, or a local
    folder. ``options``: :class:`~lora_nb.tagging.caption_options.CaptionOptions` fields, checked here before
    anything is queued, or ``preset="name"`` (a saved prompt preset; explicit options win). The model is
    downloaded (when needed) inside the job, not in the kernel.
    """
    model, opts = _check(model, dict(options), presets_dir)
    return _submit(ds, model, opts, None, False)


def preview_captions(ds: "TagTarget", model: str = "florence-2-large", images: list[str] | None = None, n: int = 4,
                     presets_dir: str | Path | None = None, **options: Any) -> "JobHandle":
    """Caption ``n`` images (the first ones, or ``images``: paths relative to the dataset) as a job that writes
    no caption; :func:`read_preview` gives ``[(image, caption)]`` once it has finished."""
    from ..errors import InvalidInput

    if not 1 <= n <= 64:
        raise InvalidInput(f"A preview captions 1 to 64 images, not {n}.", fix="Use n=4.")
    model, opts = _check(model, dict(options), presets_dir)
    return _submit(ds, model, opts, list(images)[:n] if images else [f"#first:{n}"], True)


def read_preview(job: Any) -> list[tuple[str, str]]:
    """``[(image path relative to the dataset, caption as it would be written)]`` from a finished preview job."""
    for a in getattr(job, "artifacts", []) or []:
        if str(a.get("path", "")).endswith("preview.json"):
            try:
                return [tuple(x) for x in json.loads(Path(a["path"]).read_text(encoding="utf-8"))]  # type: ignore[misc]
            except (OSError, ValueError):
                return []
    return []
