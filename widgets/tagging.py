"""TaggingPanel: auto-tag a dataset with a WD14 tagger as a job, with live progress and rate; under it the
captioning section (:class:`~lora_nb.widgets.captioning.CaptioningPanel`: Florence-2 / JoyCaption sentences).

``lora_nb.tagging`` is imported when the panel is built; if it cannot be imported the panel says
why in one sentence and keeps its Start button disabled. Before starting, the panel says whether the
chosen model is already here (a local folder, the Hugging Face cache) or must be downloaded first, and
whether it can be (``HF_HUB_OFFLINE``, no route to the Hub). A failed job shows its cause sentence.

>>> import lora_nb, tempfile
>>> from lora_nb.widgets import TaggingPanel
>>> p = TaggingPanel(lora_nb.Workspace(tempfile.mkdtemp()))
>>> p.options()["existing"]
'overwrite'
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import ipywidgets as W

from lora_nb import Workspace
from lora_nb.progress.events import JobStatus
from lora_nb.jobs.manager import Job

from lora_nb.errors import InvalidInput

from .common import ErrorBanner, JobLine, Runner, css, ended_text, esc, one_sentence

__all__ = ["TaggingPanel", "model_availability"]

_LABELS = {"description_width": "110px"}      # wide enough for every label here ("Trigger words", "Character ≥")


def _hub_cache() -> Path:
    """The Hugging Face cache a new process uses (read from the environment now, as the tagging job will)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME") or "~/.cache", "huggingface")
    return Path(home).expanduser() / "hub"


def model_availability(model: str) -> tuple[str, str]:
    """(kind, sentence) about tagger ``model`` before a job starts: kind ``ready`` (a local folder, or in the
    Hugging Face cache), ``download`` (it will be downloaded first), ``blocked`` (it must be downloaded and
    cannot be: offline mode, or the Hub cannot be reached) or ``error`` (no such model or folder)."""
    from huggingface_hub import try_to_load_from_cache

    from lora_nb.system import hub_status
    from lora_nb.tagging.registry import FILES, MODELS, resolve_name

    model = (model or "").strip()
    if not model:
        return "error", "No tagger model is chosen."
    path = Path(model).expanduser()
    if path.is_dir() or model.startswith((".", "/", "~")):
        missing = [f for f in FILES if not (path / f).is_file()]
        if missing:
            return "error", f"The folder {path} has no {' or '.join(missing)}, so it is not a tagger folder."
        return "ready", "A local tagger folder: nothing to download."
    try:
        repo_id = resolve_name(model)
    except Exception as e:
        return "error", one_sentence(e)
    cache = _hub_cache()
    if all(isinstance(try_to_load_from_cache(repo_id, f, cache_dir=cache), str) for f in FILES):
        return "ready", f"{model} is in the local Hugging Face cache: nothing to download."
    size = f" (about {MODELS[model].size})" if model in MODELS else ""
    hub = hub_status()
    need = f"{model} is not in the local cache ({cache}) and must be downloaded first{size}"
    local = "or choose a local tagger folder (Try the demo builds a small one)."
    if hub["offline"]:
        return "blocked", f"{need}, but HF_HUB_OFFLINE is set, so it cannot be: unset HF_HUB_OFFLINE, {local}"
    if not hub["reachable"]:
        return "blocked", f"{need}, but {hub['endpoint']} cannot be reached from this machine: connect it to the internet, {local}"
    return "download", f"{model} will be downloaded from the Hugging Face Hub when the job starts{size}, then cached."


class TaggingPanel(W.VBox):
    """Model, thresholds, blacklist, trigger words, existing-caption policy; Start queues ``ds.tag(...)``."""

    def __init__(self, ws: Workspace | None = None, dataset: str | None = None, on_done: Callable[[Any], Any] | None = None) -> None:
        import lora_nb

        self.ws = ws if ws is not None else lora_nb.Workspace()
        self.on_done = on_done
        self.banner = ErrorBanner()
        self.runner = Runner(self.banner, "lnb-tagging")
        g = self.banner.guard
        self.job: Any = None
        models, default, self.unavailable = self._models()
        self.availability: tuple[str, str] | None = None

        self.dataset = css(W.Dropdown(description="Dataset", options=[], style=_LABELS), "lnb-tag-dataset")
        self.model = css(W.Combobox(description="Model", options=models, value=default, ensure_option=False,
                                    placeholder="registry name, owner/repo or /path/to/folder", style=_LABELS,
                                    layout=W.Layout(width="490px")), "lnb-tag-model")
        self.model_note = css(W.HTML(""), "lnb-tag-model-note")
        self.general = css(W.FloatSlider(description="General ≥", value=0.35, min=0.0, max=1.0, step=0.01, readout_format=".2f",
                                         style=_LABELS), "lnb-tag-general")
        self.character = css(W.FloatSlider(description="Character ≥", value=0.85, min=0.0, max=1.01, step=0.01,
                                           readout_format=".2f", style=_LABELS), "lnb-tag-character")
        self.mcut = W.Checkbox(description="Automatic general threshold (MCut)", value=False, indent=False)
        self.blacklist = css(W.Text(description="Never write", placeholder="tags, comma separated", style=_LABELS,
                                    layout=W.Layout(width="490px")), "lnb-tag-blacklist")
        self.trigger = css(W.Text(description="Trigger words", placeholder="written first in every caption", style=_LABELS,
                                  layout=W.Layout(width="490px")), "lnb-tag-trigger")
        self.existing = css(W.ToggleButtons(description="Existing", options=[("Overwrite", "overwrite"), ("Append new tags", "append"),
                                                                               ("Skip captioned", "skip")], value="overwrite",
                                            style={**_LABELS, "button_width": "130px"}), "lnb-tag-existing")
        self.underscores = W.Checkbox(description="long_hair → long hair", value=True, indent=False)
        self.start_button = css(W.Button(description="Start tagging", button_style="primary", icon="play"), "lnb-tag-start")
        self.stop_button = css(W.Button(description="Stop", icon="stop", disabled=True), "lnb-tag-stop")
        self.line = css(JobLine(on_final=self._finished), "lnb-tag-progress")
        self.start_button.on_click(g(self.start))
        self.stop_button.on_click(g(self._stop))
        self.model.observe(lambda ch: self.check_model(), names="value")
        if self.unavailable:
            self.banner.error(self.unavailable)
            self.start_button.disabled = True
        super().__init__([
            W.HTML("<h3 style='margin:4px 0'>Tagging</h3>"), self.banner,
            self.dataset, self.model, self.model_note, W.HBox([self.general, self.mcut]), self.character, self.blacklist,
            self.trigger, self.existing, self.underscores, W.HBox([self.start_button, self.stop_button]), self.line,
        ])
        from .captioning import CaptioningPanel

        # sentences (Florence-2, JoyCaption) for the same dataset: the section shares this panel's dataset picker
        self.captioning = CaptioningPanel(self.ws, dataset_picker=self.dataset, on_done=on_done)
        self.children = (*self.children, self.captioning)
        self.add_class("lnb-tagging")
        g(self.refresh)(dataset)
        if not self.unavailable:
            self.check_model()

    @staticmethod
    def _models() -> tuple[list[str], str, str]:
        try:
            from lora_nb.tagging import MODELS
        except Exception as e:
            return [], "", f"Tagging is unavailable: {str(e).splitlines()[0] if str(e) else type(e).__name__}."
        names = list(MODELS)
        return names, ("wd-vit-tagger-v3" if "wd-vit-tagger-v3" in names else (names[0] if names else "")), ""

    def refresh(self, select: str | None = None) -> None:
        names = self.ws.datasets.names()
        keep = select or self.dataset.value
        self.dataset.options = names
        self.dataset.value = keep if keep in names else (names[0] if names else None)
        if not self.unavailable:
            local = self._local_taggers()
            models = [m for m in self.model.options if not m.startswith("/")] + local
            if list(self.model.options) != models:
                self.model.options = models
        if hasattr(self, "captioning"):
            self.captioning.refresh()

    def _local_taggers(self) -> list[str]:
        """Tagger folders in the workspace's models/taggers/ (the demo's small tagger lands there)."""
        try:
            return sorted(str(p) for p in (self.ws.models_dir / "taggers").iterdir() if (p / "model.onnx").is_file())
        except OSError:
            return []

    def check_model(self) -> None:
        """Say (in the background: the Hub may be slow to answer) whether the model must be downloaded, and whether it can be."""
        model = self.model.value or ""
        self.model_note.value = '<span style="color:#777;font-size:12px">checking where the model comes from…</span>'

        def show(result: tuple[str, str]) -> None:
            if (self.model.value or "") != model:
                return                                  # the choice changed meanwhile; its own check follows
            self.availability = result
            kind, text = result
            colour = {"ready": "#1b5e20", "download": "#555", "blocked": "#b00020", "error": "#b00020"}[kind]
            self.model_note.value = (f'<div class="lnb-tag-availability" data-kind="{kind}" style="color:{colour};font-size:12px;'
                                     f'margin-left:114px">{esc(text)}</div>')
        self.runner.latest("model", model_availability, model, on_done=show)

    def options(self) -> dict[str, Any]:
        """The TagOptions fields set by the form."""
        return {"general_threshold": round(self.general.value, 3), "character_threshold": round(self.character.value, 3),
                "general_mcut": self.mcut.value, "blacklist": self.blacklist.value, "trigger_words": self.trigger.value,
                "existing": self.existing.value, "remove_underscore": self.underscores.value}

    def start(self, _: Any = None) -> Any:
        if not self.dataset.value:
            raise InvalidInput('No dataset is selected.', fix='Choose a dataset to tag first.')
        model = (self.model.value or "").strip()
        if not model:
            raise InvalidInput('No tagger model is selected.', fix='Choose a tagger model in the list.')
        ds = self.ws.datasets.get(self.dataset.value)
        self.job = ds.tag(model=model, **self.options())
        self.line.attach(self.job)
        self.stop_button.disabled = False
        self.banner.info(f"Tagging '{ds.name}' with {model} (job {self.job.id}).")
        return self.job

    def _stop(self, _: Any = None) -> None:
        if self.job is not None:
            self.job.stop(wait=False)

    def _finished(self, job: Job) -> None:
        self.stop_button.disabled = True
        if job.status is JobStatus.SUCCEEDED:
            self.banner.info(f"Tagging finished: captions are in the Captions tab ({job.name}).")
        else:
            self.banner.error(ended_text(job, "Tagging"))
        self.check_model()
        if self.on_done is not None:
            self.on_done(job)
