"""CaptioningPanel: natural-language captions (Florence-2, JoyCaption) for a dataset, as jobs, previewed first.

The panel renders and calls ``lora_nb``: **Preview on 4 images** queues ``ds.preview_captions(n=4)`` (a job that
writes nothing) and shows the four images with the captions it would write; **Caption all** queues
``ds.caption(...)``. Both run as jobs (subprocesses), never in the kernel; progress (images/s, ETA) comes from the
job, Stop ends it after the current batch with every caption whole, and **Undo last job** puts back every caption
the panel's last captioning job changed (one undo step). Controls that cannot apply to the chosen model are
disabled and the reason is shown under them (Florence-2 takes a task, not a length or a free prompt). The model
list shows the GPU memory each model needs; local captioner folders in the workspace's ``models/captioners/``
are listed too. Prompt templates are saved and loaded as presets (``presets/captions/``).

>>> import lora_nb, tempfile
>>> from lora_nb.widgets.captioning import CaptioningPanel
>>> p = CaptioningPanel(lora_nb.Workspace(tempfile.mkdtemp()))
>>> p.options()["existing"], p.length.disabled, p.undo_button.disabled
('overwrite', True, True)
"""
from __future__ import annotations

import importlib.util
from typing import Any, Callable

import ipywidgets as W

from lora_nb import Workspace
from lora_nb.errors import InvalidInput
from lora_nb.jobs.manager import Job
from lora_nb.progress.events import JobStatus

from .common import ErrorBanner, JobLine, Runner, css, ended_text, esc, image_bytes

__all__ = ["CaptioningPanel"]

_LABELS = {"description_width": "110px"}
_WIDE = W.Layout(width="490px")
_FLORENCE_MODES = [("more detailed (default)", "more_detailed"), ("detailed", "detailed"), ("short caption", "caption")]
_JOY_MODES = [("descriptive, formal (default)", "descriptive"), ("descriptive, casual", "descriptive_casual"),
              ("straightforward", "straightforward"), ("stable diffusion prompt", "training_prompt"),
              ("booru-like tag list", "booru_list")]
_PREVIEW_N = 4


def _unavailable() -> str:
    """Why captioning cannot run in this environment ('' when it can); cheap: nothing is imported."""
    missing = [m for m in ("torch", "transformers") if importlib.util.find_spec(m) is None]
    if missing:
        return (f"Captioning is unavailable: {' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not installed "
                '(pip install "lora-nb[caption]").')
    return ""


class CaptioningPanel(W.VBox):
    """Model (with its VRAM), prompt mode, length, policies; Preview on 4 images; Caption all; Stop; Undo."""

    def __init__(self, ws: Workspace | None = None, dataset: str | None = None, dataset_picker: W.Dropdown | None = None,
                 on_done: Callable[[Any], Any] | None = None) -> None:
        import lora_nb

        self.ws = ws if ws is not None else lora_nb.Workspace()
        self.on_done = on_done
        self.banner = ErrorBanner()
        self.runner = Runner(self.banner, "lnb-captioning")
        g = self.banner.guard
        title = W.HTML("<h3 style='margin:12px 0 4px 0'>Captioning (sentences: Florence-2, JoyCaption)</h3>")
        try:
            from lora_nb.tagging.caption_models import CAPTIONERS, LENGTHS
        except Exception as e:             # the panel says why, and offers no control that could not work
            self.broken = f"Captioning is unavailable: {str(e).splitlines()[0] if str(e) else type(e).__name__}."
            self.banner.error(self.broken)
            super().__init__([title, self.banner])
            self.add_class("lnb-captioning")
            return
        self.broken = ""
        self.unavailable = _unavailable()
        self.job: Any = None                 # the last "Caption all" job (what Undo undoes)
        self.preview_job: Any = None
        self.active: Any = None              # the job running now, if any
        self.undone = False
        self.family: str | None = None
        self.gpus: list[Any] | None = None   # read once, off the kernel thread

        self._own_picker = own_picker = dataset_picker is None
        self.dataset = dataset_picker if dataset_picker is not None else css(
            W.Dropdown(description="Dataset", options=[], style=_LABELS), "lnb-cap-dataset")
        self.model = css(W.Dropdown(description="Model", options=self._model_options(), style=_LABELS, layout=_WIDE),
                         "lnb-cap-model")
        self.model.value = "florence-2-large" if "florence-2-large" in CAPTIONERS else self.model.options[0][1]
        self.custom = css(W.Text(description="Other model", placeholder="owner/repo or /path/to/folder (wins over the list)",
                                 style=_LABELS, layout=_WIDE), "lnb-cap-custom")
        self.model_note = css(W.HTML(""), "lnb-cap-model-note")
        self.mode = css(W.Dropdown(description="Mode", options=_FLORENCE_MODES, style=_LABELS, layout=_WIDE), "lnb-cap-mode")
        self.length = css(W.Dropdown(description="Length", options=list(LENGTHS), value="long", style=_LABELS), "lnb-cap-length")
        self.prompt = css(W.Textarea(description="Prompt", placeholder="JoyCaption: your own prompt; {length} becomes the length",
                                     style=_LABELS, layout=W.Layout(width="490px", height="56px")), "lnb-cap-prompt")
        self.applies = css(W.HTML(""), "lnb-cap-applies")
        self.existing = css(W.ToggleButtons(description="Existing", options=[("Overwrite", "overwrite"), ("Append sentence", "append"),
                                                                             ("Skip captioned", "skip")], value="overwrite",
                                            style={**_LABELS, "button_width": "130px"}), "lnb-cap-existing")
        self.trigger = css(W.Text(description="Trigger words", placeholder="written first in every caption", style=_LABELS,
                                  layout=_WIDE), "lnb-cap-trigger")
        self.max_length = css(W.BoundedIntText(description="Max characters", value=0, min=0, max=20000, style=_LABELS,
                                               layout=W.Layout(width="200px"),
                                               tooltip="0: no cap; else cut at the last sentence end"), "lnb-cap-max-length")
        self.max_tokens = css(W.BoundedIntText(description="Max tokens", value=0, min=0, max=2048, style=_LABELS,
                                               layout=W.Layout(width="200px"),
                                               tooltip="0: the mode's / length's default"), "lnb-cap-max-tokens")
        self.batch = css(W.BoundedIntText(description="Batch", value=4, min=1, max=64, style=_LABELS,
                                          layout=W.Layout(width="170px")), "lnb-cap-batch")
        self.with_tags = css(W.Checkbox(description="Tags + sentence: WD14 tags and the sentence in one caption", value=False,
                                        indent=False, layout=W.Layout(width="490px")), "lnb-cap-with-tags")
        self.tagger = css(W.Combobox(description="WD14 tagger", options=self._taggers(), value="wd-vit-tagger-v3",
                                     ensure_option=False, style=_LABELS, layout=_WIDE, disabled=True), "lnb-cap-tagger")
        self.tags_position = css(W.Dropdown(description="Tags go", options=[("before the sentence", "before"),
                                                                            ("after the sentence", "after")],
                                            style=_LABELS, disabled=True), "lnb-cap-tags-position")
        self.tags_threshold = css(W.FloatSlider(description="Tags ≥", value=0.35, min=0.0, max=1.0, step=0.01, readout_format=".2f",
                                                style=_LABELS, disabled=True), "lnb-cap-tags-threshold")
        self.tags_note = css(W.HTML(""), "lnb-cap-tags-note")
        self.preset = css(W.Dropdown(description="Preset", options=self._presets().names(), value=None, style=_LABELS),
                          "lnb-cap-preset")
        self.load_button = css(W.Button(description="Load", icon="folder-open"), "lnb-cap-preset-load")
        self.preset_name = css(W.Text(placeholder="name for these settings", layout=W.Layout(width="200px")), "lnb-cap-preset-name")
        self.save_button = css(W.Button(description="Save preset", icon="save"), "lnb-cap-preset-save")
        self.preview_button = css(W.Button(description=f"Preview on {_PREVIEW_N} images", icon="eye"), "lnb-cap-preview")
        self.start_button = css(W.Button(description="Caption all", button_style="primary", icon="play"), "lnb-cap-start")
        self.stop_button = css(W.Button(description="Stop", icon="stop", disabled=True, tooltip="no captioning job is running"),
                               "lnb-cap-stop")
        self.undo_button = css(W.Button(description="Undo last job", icon="undo", disabled=True), "lnb-cap-undo")
        self.undo_note = css(W.HTML(""), "lnb-cap-undo-note")
        self.line = css(JobLine(on_final=self._finished), "lnb-cap-progress")
        self.cards = [css(W.VBox([W.Image(format="jpeg", width=160, height=160,
                                          layout=W.Layout(width="160px", height="160px", object_fit="contain")),
                                  W.HTML("", layout=W.Layout(width="170px"))],
                                 layout=W.Layout(width="180px", margin="0 6px 0 0")), "lnb-cap-preview-card")
                      for _ in range(_PREVIEW_N)]
        self.preview_title = css(W.HTML(""), "lnb-cap-preview-title")
        self.preview_box = css(W.HBox(self.cards, layout=W.Layout(display="none", flex_flow="row wrap")), "lnb-cap-preview-box")

        self.preview_button.on_click(g(self.preview))
        self.start_button.on_click(g(self.start))
        self.stop_button.on_click(g(self._stop))
        self.undo_button.on_click(g(self.undo))
        self.save_button.on_click(g(self.save_preset))
        self.load_button.on_click(g(self.load_preset))
        self.model.observe(lambda ch: g(self._model_changed)(), names="value")
        self.custom.observe(lambda ch: g(self._model_changed)(), names="value")
        self.with_tags.observe(lambda ch: self._tags_state(), names="value")
        self.dataset.observe(lambda ch: self._undo_state(), names="value")

        rows: list[W.Widget] = [title, self.banner]
        rows += [self.dataset] if own_picker else []
        rows += [self.model, self.custom, self.model_note, self.mode, self.length, self.prompt, self.applies, self.existing,
                 self.trigger, W.HBox([self.max_length, self.max_tokens, self.batch]), self.with_tags, self.tagger,
                 W.HBox([self.tags_position, self.tags_threshold]), self.tags_note, W.HBox([self.preset, self.load_button, self.preset_name, self.save_button]),
                 W.HBox([self.preview_button, self.start_button, self.stop_button, self.undo_button]), self.undo_note,
                 self.line, self.preview_title, self.preview_box]
        super().__init__(rows)
        self.add_class("lnb-captioning")
        if own_picker:
            g(self.refresh)(dataset)
        if self.unavailable:
            self.banner.error(self.unavailable)
            for b in (self.preview_button, self.start_button):
                b.disabled, b.tooltip = True, self.unavailable
        self._model_changed()
        self._tags_state()
        self._undo_state()
        if not self.unavailable:
            self.runner.submit(self._read_gpus)

    # -- lists -------------------------------------------------------------------------
    def _model_options(self) -> list[tuple[str, str]]:
        """Registry captioners labelled with the GPU memory they need, then local folders in models/captioners/."""
        from lora_nb.tagging.caption_models import CAPTIONERS, is_captioner_folder

        out = [(f"{m.name} · {m.vram} · {m.params} · {m.note}", m.name) for m in CAPTIONERS.values()]
        try:
            folders = sorted(p for p in (self.ws.models_dir / "captioners").iterdir() if is_captioner_folder(p))
        except OSError:
            folders = []
        return out + [(f"{p.name} · local folder", str(p)) for p in folders]

    def _taggers(self) -> list[str]:
        try:
            from lora_nb.tagging.registry import MODELS
        except Exception:
            return []
        try:
            local = sorted(str(p) for p in (self.ws.models_dir / "taggers").iterdir() if (p / "model.onnx").is_file())
        except OSError:
            local = []
        return list(MODELS) + local

    def _presets(self) -> Any:
        from lora_nb.tagging.caption_options import PromptPresets

        return PromptPresets(self.ws.presets_dir / "captions")

    def refresh(self, select: str | None = None) -> None:
        """Re-read datasets (when the panel has its own picker), local captioner folders and presets."""
        if self.broken:
            return
        if self._own_picker:
            names = self.ws.datasets.names()
            keep = select or self.dataset.value
            self.dataset.options = names
            self.dataset.value = keep if keep in names else (names[0] if names else None)
        keep_model = self.model.value
        options = self._model_options()
        if list(self.model.options) != options:
            self.model.options = options
            self.model.value = keep_model if keep_model in [v for _, v in options] else options[0][1]
        names = self._presets().names()
        if list(self.preset.options) != names:
            self.preset.options = names
        self._undo_state()

    # -- state ---------------------------------------------------------------------------
    def current_model(self) -> str:
        """The model a job would use: Other model when filled in, else the list's choice."""
        return (self.custom.value or "").strip() or (self.model.value or "")

    def _read_gpus(self) -> None:
        from lora_nb.nvml import list_devices

        self.gpus = list_devices()
        self._model_note()

    def _model_note(self) -> None:
        from lora_nb.tagging.caption_models import CAPTIONERS

        model = self.current_model()
        info = CAPTIONERS.get(model)
        parts = []
        if info is not None:
            parts.append(f"needs about {info.vram_gb:g} GB of GPU memory in bf16 (download {info.download})")
        elif self.family:
            parts.append(f"a {'Florence-2' if self.family == 'florence2' else 'JoyCaption (LLaVA)'} model")
        else:
            parts.append("its family and size show once the job has downloaded it")
        if self.gpus is not None:
            if not self.gpus:
                slow = " (8.5 B parameters: very slow, use a GPU)" if info is not None and info.family == "joycaption" else ""
                parts.append(f"no GPU here: it runs on the CPU in float32{slow}")
            else:
                best = max(d.memory_total for d in self.gpus) / 2**30
                parts.append(f"largest GPU here: {best:.0f} GB")
                if info is not None and best < info.vram_gb:
                    parts.append("that is too little: pick a smaller model")
        colour = "#b00020" if "too little" in " ".join(parts) else "#555"
        text = "; ".join(parts)
        self.model_note.value = (f'<div style="color:{colour};font-size:12px;margin-left:114px">'
                                 f'{esc(text[:1].upper() + text[1:])}.</div>')

    def _model_changed(self) -> None:
        from lora_nb.tagging.caption_models import family_of

        self.family = family_of(self.current_model())
        florence = self.family == "florence2"
        options = _FLORENCE_MODES if florence else _JOY_MODES if self.family == "joycaption" else (
            [("the model's default", "")] + _FLORENCE_MODES + _JOY_MODES)
        if list(self.mode.options) != options:
            keep = self.mode.value
            self.mode.options = options
            self.mode.value = keep if keep in [v for _, v in options] else options[0][1]
        reason = ""
        if florence:
            reason = "Florence-2 takes a task, not a free prompt or a length: its mode sets how long the caption is."
        self.length.disabled = self.prompt.disabled = florence
        self.length.tooltip = self.prompt.tooltip = reason
        self.applies.value = (f'<div style="color:#777;font-size:12px;margin-left:114px">{esc(reason)}</div>' if reason else "")
        self._model_note()

    def _tags_state(self) -> None:
        try:
            ok = importlib.util.find_spec("onnxruntime") is not None
        except (ImportError, ValueError):
            ok = False
        reason = "" if ok else "Tags + sentence needs the WD14 tagger, which needs onnxruntime (pip install onnxruntime)."
        self.with_tags.disabled = not ok
        self.with_tags.value = self.with_tags.value and ok
        self.tagger.disabled = self.tags_position.disabled = self.tags_threshold.disabled = not self.with_tags.value
        self.tags_note.value = f'<div style="color:#b00020;font-size:12px">{esc(reason)}</div>' if reason else ""

    def _running(self, running: bool) -> None:
        for b in (self.preview_button, self.start_button):
            b.disabled = running or bool(self.unavailable)
            b.tooltip = "a captioning job is running" if running else (self.unavailable or "")
        self.stop_button.disabled = not running
        self.stop_button.tooltip = "" if running else "no captioning job is running"

    def _undo_reason(self) -> str:
        """'' when Undo can run, else why not."""
        if self.job is None:
            return "Nothing to undo: no captioning job has run from this panel."
        if self.active is not None:
            return "A captioning job is running."
        if self.undone:
            return "The last captioning job is already undone."
        if self.job.status not in (JobStatus.SUCCEEDED, JobStatus.STOPPED):
            return f"The last captioning job {self.job.status.value}: it changed no caption."
        try:
            ds = self.ws.datasets.get(self.job.meta.get("dataset") or "")
            history = ds.captions.history()
        except Exception as e:
            return f"Undo is not possible: {e}"
        if not history or history[-1]["op"] != "caption":
            last = f"'{history[-1]['op']}'" if history else "none"
            return f"The last caption edit of '{ds.name}' is {last}, not this captioning job (undo it in the Captions tab)."
        return ""

    def _undo_state(self) -> None:
        reason = self._undo_reason()
        self.undo_button.disabled = bool(reason)
        self.undo_button.tooltip = reason or f"put back the captions job {self.job.id} changed"
        self.undo_note.value = f'<div style="color:#777;font-size:12px">{esc(reason)}</div>' if reason and self.job else ""

    # -- form ----------------------------------------------------------------------------
    def options(self) -> dict[str, Any]:
        """The CaptionOptions fields set by the form (what apply to the chosen model)."""
        opts: dict[str, Any] = {"mode": self.mode.value or "", "trigger_words": self.trigger.value, "existing": self.existing.value,
                                "batch_size": int(self.batch.value)}
        if self.family != "florence2":
            opts["length"] = self.length.value
            if (self.prompt.value or "").strip():
                opts["prompt"] = self.prompt.value.strip()
        if self.max_length.value:
            opts["max_length"] = int(self.max_length.value)
        if self.max_tokens.value:
            opts["max_new_tokens"] = int(self.max_tokens.value)
        if self.with_tags.value:
            opts["with_tags"] = (self.tagger.value or "").strip()
            opts["tags_position"] = self.tags_position.value
            opts["tags_threshold"] = round(self.tags_threshold.value, 3)
        return opts

    def _dataset(self) -> Any:
        if not self.dataset.value:
            raise InvalidInput("No dataset is selected.", fix="Choose a dataset to caption first.")
        model = self.current_model()
        if not model:
            raise InvalidInput("No captioning model is selected.", fix="Choose a model in the list.")
        if self.active is not None:
            raise InvalidInput("A captioning job is already running.", fix="Wait for it, or Stop it.")
        return self.ws.datasets.get(self.dataset.value)

    # -- actions -------------------------------------------------------------------------
    def preview(self, _: Any = None) -> Any:
        """Queue a job that captions the first 4 images and writes nothing; its captions show under the buttons."""
        ds = self._dataset()
        job = ds.preview_captions(model=self.current_model(), n=_PREVIEW_N, **self.options())
        self.preview_job = job
        self._attach(job, f"Previewing captions of {_PREVIEW_N} images of '{ds.name}' (job {job.id}): nothing is written.")
        return job

    def start(self, _: Any = None) -> Any:
        """Queue ``ds.caption(...)`` for every image of the dataset."""
        ds = self._dataset()
        job = ds.caption(model=self.current_model(), **self.options())
        self.job, self.undone = job, False
        self._attach(job, f"Captioning '{ds.name}' with {self.current_model()} (job {job.id}).")
        return job

    def _attach(self, job: Any, text: str) -> None:
        self.active = job
        self._running(True)
        self._undo_state()
        self.banner.info(text)
        self.line.attach(job)

    def _stop(self, _: Any = None) -> None:
        if self.active is not None:
            self.active.stop(wait=False)

    def undo(self, _: Any = None) -> None:
        """Put back every caption the last captioning job changed (off the kernel thread)."""
        reason = self._undo_reason()
        if reason:
            raise InvalidInput(reason, fix="Run a captioning job first.")
        ds = self.ws.datasets.get(self.job.meta.get("dataset") or "")
        self.undo_button.disabled = True

        def done(result: Any) -> None:
            self.undone = True
            self.banner.info(f"Undone: {result.changed} captions of '{ds.name}' are back as they were before job {self.job.id}.")
            self._undo_state()
        self.runner.submit(ds.captions.undo, on_done=done)

    def _finished(self, job: Job) -> None:
        try:
            if job is self.preview_job:
                self._show_preview(job)
            elif job.status is JobStatus.SUCCEEDED:
                self.banner.info(f"Captioning finished: the captions are in the Captions tab ({job.name}).")
            else:
                self.banner.error(ended_text(job, "Captioning"))
        finally:
            self.active = None                      # last: "not running" means the panel shows the job's outcome
            self._running(False)
            self._undo_state()
        if self.on_done is not None and job is not self.preview_job:
            self.on_done(job)

    def _show_preview(self, job: Job) -> None:
        from lora_nb.tagging.caption_dataset import read_preview

        if job.status is not JobStatus.SUCCEEDED:
            self.banner.error(ended_text(job, "The preview"))
            return
        shown = read_preview(job)
        ds = self.ws.datasets.get(job.meta.get("dataset") or "")
        for i, card in enumerate(self.cards):
            image, text = card.children
            if i < len(shown):
                rel, caption = shown[i]
                try:
                    image.value = image_bytes(ds.thumbnail(rel, 160))
                except Exception:
                    image.value = b""
                image.layout.display = ""
                text.value = (f'<div style="font-size:11px;color:#777">{esc(rel)}</div>'
                              f'<div class="lnb-cap-preview-text" style="font-size:12px">{esc(caption)}</div>')
                card.layout.display = ""
            else:
                image.value, text.value = b"", ""
                card.layout.display = "none"
        self.preview_box.layout.display = "" if shown else "none"
        self.preview_title.value = (f"<b>Preview</b> ({len(shown)} images, nothing written): the captions <i>Caption all</i> "
                                    "would write with these settings." if shown else "The preview captioned no image.")
        self.banner.info(f"Preview ready: {len(shown)} captions; Caption all writes them for every image.")

    # -- presets ---------------------------------------------------------------------------
    def save_preset(self, _: Any = None) -> None:
        """Save the form's options as a prompt preset under the typed name."""
        name = (self.preset_name.value or "").strip()
        if not name:
            raise InvalidInput("The preset has no name.", fix="Type a name next to Save preset.")
        presets = self._presets()
        presets.save(name, self.options())
        self.preset.options = presets.names()
        self.preset.value = name
        self.banner.info(f"Saved the caption preset '{name}'.")

    def load_preset(self, _: Any = None) -> None:
        """Fill the form from the chosen preset (refused when the chosen model lacks the preset's mode)."""
        if not self.preset.value:
            raise InvalidInput("No preset is chosen.", fix="Save one first, or pick one in the list.")
        data = self._presets().load(self.preset.value)
        mode = data.get("mode", "")
        if mode and mode not in [v for _, v in self.mode.options]:
            raise InvalidInput(f"The preset '{self.preset.value}' uses the mode '{mode}', which the chosen model does not have.",
                               fix="Choose a model of the preset's family first (Florence-2 or JoyCaption).")
        if mode or "" in [v for _, v in self.mode.options]:
            self.mode.value = mode
        length = data.get("length", "long")
        if isinstance(length, int) and length not in self.length.options:
            self.length.options = [*[o for o in self.length.options if isinstance(o, str)], length]
        self.length.value = length
        self.prompt.value = data.get("prompt", "")
        self.trigger.value = ", ".join(data.get("trigger_words") or [])
        self.existing.value = data.get("existing", "overwrite")
        self.max_length.value = data.get("max_length") or 0
        self.max_tokens.value = data.get("max_new_tokens") or 0
        self.batch.value = data.get("batch_size", 4)
        self.with_tags.value = bool(data.get("with_tags")) and not self.with_tags.disabled
        if data.get("with_tags"):
            self.tagger.value = data["with_tags"]
        self.tags_position.value = data.get("tags_position", "before")
        self.tags_threshold.value = data.get("tags_threshold", 0.35)
        self.banner.info(f"Loaded the caption preset '{self.preset.value}'.")
