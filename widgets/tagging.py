"""TaggingPanel: auto-tag a dataset with a WD14 tagger as a job, with live progress and rate.

``lora_nb.tagging`` is imported when the panel is built; if it cannot be imported the panel says
why in one sentence and keeps its Start button disabled.

>>> import lora_nb, tempfile
>>> from lora_nb.widgets import TaggingPanel
>>> p = TaggingPanel(lora_nb.Workspace(tempfile.mkdtemp()))
>>> p.options()["existing"]
'overwrite'
"""
from __future__ import annotations

from typing import Any, Callable

import ipywidgets as W

from lora_nb import Workspace
from lora_nb.progress.events import JobStatus
from lora_nb.jobs.manager import Job

from lora_nb.errors import InvalidInput

from .common import ErrorBanner, JobLine, css

__all__ = ["TaggingPanel"]


class TaggingPanel(W.VBox):
    """Model, thresholds, blacklist, trigger words, existing-caption policy; Start queues ``ds.tag(...)``."""

    def __init__(self, ws: Workspace | None = None, dataset: str | None = None, on_done: Callable[[Any], Any] | None = None) -> None:
        import lora_nb

        self.ws = ws if ws is not None else lora_nb.Workspace()
        self.on_done = on_done
        self.banner = ErrorBanner()
        g = self.banner.guard
        self.job: Any = None
        models, default, self.unavailable = self._models()

        self.dataset = css(W.Dropdown(description="Dataset", options=[]), "lnb-tag-dataset")
        self.model = css(W.Combobox(description="Model", options=models, value=default, ensure_option=False,
                                    placeholder="registry name, owner/repo or /path/to/folder",
                                    layout=W.Layout(width="460px")), "lnb-tag-model")
        self.general = css(W.FloatSlider(description="General ≥", value=0.35, min=0.0, max=1.0, step=0.01, readout_format=".2f"),
                           "lnb-tag-general")
        self.character = css(W.FloatSlider(description="Character ≥", value=0.85, min=0.0, max=1.01, step=0.01,
                                           readout_format=".2f"), "lnb-tag-character")
        self.mcut = W.Checkbox(description="Automatic general threshold (MCut)", value=False, indent=False)
        self.blacklist = css(W.Text(description="Never write", placeholder="tags, comma separated", layout=W.Layout(width="460px")),
                             "lnb-tag-blacklist")
        self.trigger = css(W.Text(description="Trigger words", placeholder="written first in every caption",
                                  layout=W.Layout(width="460px")), "lnb-tag-trigger")
        self.existing = css(W.ToggleButtons(description="Existing", options=[("Overwrite", "overwrite"), ("Append new tags", "append"),
                                                                               ("Skip captioned", "skip")], value="overwrite"),
                            "lnb-tag-existing")
        self.underscores = W.Checkbox(description="long_hair → long hair", value=True, indent=False)
        self.start_button = css(W.Button(description="Start tagging", button_style="primary", icon="play"), "lnb-tag-start")
        self.stop_button = css(W.Button(description="Stop", icon="stop", disabled=True), "lnb-tag-stop")
        self.line = css(JobLine(on_final=self._finished), "lnb-tag-progress")
        self.start_button.on_click(g(self.start))
        self.stop_button.on_click(g(self._stop))
        if self.unavailable:
            self.banner.error(self.unavailable)
            self.start_button.disabled = True
        super().__init__([
            W.HTML("<h3 style='margin:4px 0'>Tagging</h3>"), self.banner,
            self.dataset, self.model, W.HBox([self.general, self.mcut]), self.character, self.blacklist, self.trigger,
            self.existing, self.underscores, W.HBox([self.start_button, self.stop_button]), self.line,
        ])
        self.add_class("lnb-tagging")
        g(self.refresh)(dataset)

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
            self.banner.error(job.error or f"Tagging ended {job.status.value}.")
        if self.on_done is not None:
            self.on_done(job)
