"""``ds.tag(...)``: tag a workspace dataset as a job and write its captions.

>>> import lora_nb, tempfile
>>> from lora_nb import demo
>>> ws = lora_nb.Workspace(tempfile.mkdtemp())
>>> ds = demo.make_dataset(ws, n=3, size=(64, 64), captions=False)
>>> job = tag_dataset(ds, model=str(demo.make_tagger(ws=ws)), trigger_words=["lnbdemo"])
>>> job.wait(120).value, ds.images()[0].caption.startswith("lnbdemo, ")
('succeeded', True)
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .options import TagOptions

if TYPE_CHECKING:  # pragma: no cover
    from ..ports import JobHandle, JobSubmitter


class TagTarget(Protocol):
    """What tagging needs from a dataset (``lora_nb.datasets.Dataset`` is one): its name, a check
    that it still exists, and the job submitter of its workspace."""

    name: str

    @property
    def jobs(self) -> "JobSubmitter": ...

    def check_exists(self) -> None: ...

__all__ = ["tag_dataset", "TagTarget"]


def tag_dataset(ds: TagTarget, model: str = "wd-vit-tagger-v3", **options: Any) -> "JobHandle":
    """Queue a tagging job for every image of ``ds``; returns the Job (progress per batch, images/s, ETA).

    ``model``: a registry name (``lora_nb.tagging.MODELS``), a Hub repo id, or a local folder.
    ``options``: :class:`~lora_nb.tagging.options.TagOptions` fields, checked here before anything is queued.
    The model is downloaded (when needed) inside the job, not in the kernel. The captions the job
    changes form one undoable operation: ``ds.captions.undo()`` puts them back.
    """
    from .registry import FILES, resolve_name
    from .session import runs_on_gpu

    opts = TagOptions(**options)
    path = Path(str(model)).expanduser()
    if path.is_dir() or str(model).startswith((".", "/", "~")):
        from ..errors import TaggerError

        missing = [f for f in FILES if not (path / f).is_file()]
        if missing:
            raise TaggerError(f"The tagger folder {path} has no {' or '.join(missing)}.",
                              fix="A WD14 tagger folder needs model.onnx and selected_tags.csv.")
        model = str(path.resolve())
    else:
        resolve_name(str(model))        # a clear error for an unknown name, before queueing
    ds.check_exists()
    env = {k: os.environ[k] for k in ("HF_TOKEN", "HF_HOME", "HF_HUB_OFFLINE", "HF_ENDPOINT") if k in os.environ}
    return ds.jobs.submit_task("tag_dataset", {"dataset": ds.name, "model": str(model), "options": opts.model_dump()},
                                  name=f"tag {ds.name}", gpus=1 if runs_on_gpu() else 0, env=env,
                                  meta={"dataset": ds.name, "model": str(model)})
