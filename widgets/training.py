"""TrainingPanel: a form generated from ``TrainingConfig.ui_schema()`` (basic and advanced sections),
validation messages next to each field, a live step calculator and time estimate, presets, the
dataset report, the engine (its status, its folder, an Install button that runs the install job),
defaults that suit the detected hardware, and Start, which queues the run as a job (its error is
shown beside it).

>>> import lora_nb, tempfile
>>> from lora_nb.widgets import TrainingPanel
>>> p = TrainingPanel(lora_nb.Workspace(tempfile.mkdtemp()))
>>> p.fields["network_dim"].widget.value = 0; p.validate()
{'network_dim': 'Input should be greater than or equal to 1'}
>>> p.start_button.disabled
True
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import ipywidgets as W

from lora_nb import Workspace

from lora_nb.errors import EngineError, InvalidInput
from lora_nb.jobs.format import failure_cause

from .common import HTMLStyle, ErrorBanner, JobLine, Runner, Throttle, css, ended_text, esc, one_sentence
from .doctor import DoctorBox
from .page import Notice
from .engine_options import EngineOptionsEditor
from .subsets_editor import SubsetsEditor

__all__ = ["TrainingPanel", "Field", "build_field"]

_MODEL_PATH_FIELDS = {"pretrained_model_name_or_path": ("checkpoint", "diffusers", "unet"), "vae": ("vae",),
                      "clip_l": ("text_encoder",), "clip_g": ("text_encoder",), "t5xxl": ("text_encoder",), "ae": ("vae",)}


@dataclass
class Field:
    """One form row: the input widget, how to read it, and the message shown beside it."""

    name: str
    kind: str                     # bool | int | float | number | str | enum | list | dataset
    nullable: bool
    widget: W.Widget
    error: W.HTML
    row: W.Widget
    section: str
    families: list[str] | None
    default: Any
    help: str = ""
    message: str = ""             # the validation message shown now ('' when the value is fine)

    def show(self, message: str) -> None:
        """Show ``message`` in red beside the field, or the field's help in grey when it is ''."""
        self.message = message
        if message:
            self.error.value = f'<span class="lnb-error-text" style="color:#b00020">{esc(message)}</span>'
        else:
            self.error.value = f'<span class="lnb-help" style="color:var(--jp-ui-font-color2, #777);font-size:11px">{esc(self.help)}</span>' if self.help else ""

    def get(self) -> Any:
        """The field's value as TrainingConfig expects it; raises ValueError with a short message."""
        v = self.widget.value
        if self.kind in ("bool", "enum"):
            return None if v == "(none)" else v
        if self.kind == "list":
            return [line.strip() for line in str(v).replace(",", "\n" if self.name == "trigger_words" else ",").splitlines()
                    if line.strip()]
        if self.kind == "dataset":
            return v or ""
        if self.kind in ("int", "float") and not self.nullable:
            return v
        text = str(v).strip()
        if text == "":
            if self.nullable:
                return None
            if self.kind == "str":
                return ""
            raise InvalidInput('This field is empty.', fix='Enter a value.')
        if self.kind == "str":
            return text
        try:
            if self.kind == "int":
                return int(text)
            if self.kind == "float":
                return float(text)
            return int(text) if text.lstrip("-").isdigit() else float(text)   # int | float
        except ValueError:
            raise InvalidInput('This is not a number.', fix='Enter a number such as 16 or 1e-4.') from None

    def set(self, value: Any) -> None:
        if self.kind == "list":
            self.widget.value = "\n".join(str(x) for x in (value or []))
        elif self.kind == "enum":
            self.widget.value = "(none)" if value is None else value
        elif self.kind == "dataset":
            value = value if isinstance(value, str) else ""
            if value and value not in self.widget.options:
                self.widget.options = list(self.widget.options) + [value]
            self.widget.value = value if value in self.widget.options else None
        elif self.kind in ("int", "float") and not self.nullable:
            self.widget.value = value
        elif self.kind == "bool":
            self.widget.value = bool(value)
        else:
            self.widget.value = "" if value is None else str(value)


def _types(prop: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
    alts = prop.get("anyOf") or [prop]
    return [a for a in alts if a.get("type") != "null"], any(a.get("type") == "null" for a in alts)


def _one(shared: dict[str, Any], key: str, make: Callable[[], Any]) -> Any:
    """The form's shared object ``key``, made on first use."""
    if key not in shared:
        shared[key] = make()
    return shared[key]


def build_field(name: str, prop: dict[str, Any], choices: dict[str, list[str]] | None = None,
                shared: dict[str, W.Widget] | None = None) -> Field:
    """A form row for one schema property (``choices`` overrides the options of free-text fields).

    ``shared`` holds Layout/style objects that every row of a form re-uses, so a form of 100 fields
    opens a few hundred widget models in the browser, not a thousand."""
    alts, nullable = _types(prop)
    label = prop.get("label") or prop.get("title") or name
    help_text = prop.get("description", "")
    default = prop.get("default")
    if shared is None:
        shared = {}
    from ipywidgets.widgets.widget_bool import CheckboxStyle
    from ipywidgets.widgets.widget_description import DescriptionStyle
    from ipywidgets.widgets.widget_string import TextStyle

    style = _one(shared, "style", lambda: DescriptionStyle(description_width="190px"))              # Dropdown, IntText, FloatText
    text_style = _one(shared, "text_style", lambda: TextStyle(description_width="190px"))          # Text, Textarea, Combobox
    layout = _one(shared, "layout", lambda: W.Layout(width="470px"))
    enum = None
    for a in alts:
        if "enum" in a:
            enum = list(a["enum"])
        elif "const" in a:
            enum = [a["const"]]
    types = {a.get("type") for a in alts}
    choices = choices or {}
    if name == "dataset":
        kind = "dataset"
        widget = W.Dropdown(description=label, options=choices.get("dataset", []), value=None, style=style, layout=layout)
    elif enum is not None or name in choices:
        kind = "enum"
        opts = list(choices.get(name, enum or []))
        if nullable:
            opts.append("(none)")
        if default is not None and default not in opts:
            opts.insert(0, default)
        widget = W.Dropdown(description=label, options=opts, value="(none)" if default is None else default, style=style, layout=layout)
    elif types == {"boolean"}:
        kind = "bool"
        widget = W.Checkbox(description=label, value=bool(default), indent=True, layout=layout,
                            style=_one(shared, "check_style", lambda: CheckboxStyle(description_width="190px")))
    elif types == {"array"}:
        kind = "list"
        widget = W.Textarea(description=label, value="\n".join(map(str, default or [])), placeholder="one per line",
                            style=text_style, layout=_one(shared, "area_layout", lambda: W.Layout(width="470px", height="60px")),
                            continuous_update=False)
    elif types == {"integer"} and not nullable:
        kind = "int"
        widget = W.IntText(description=label, value=default or 0, style=style, layout=layout, continuous_update=False)
    elif types == {"number"} and not nullable:
        kind = "float"
        widget = W.FloatText(description=label, value=default or 0.0, style=style, layout=layout, continuous_update=False)
    else:
        kind = {frozenset({"integer"}): "int", frozenset({"number"}): "float", frozenset({"string"}): "str"}.get(
            frozenset(types), "number")
        if name in _MODEL_PATH_FIELDS:
            widget = W.Combobox(description=label, value="" if default is None else str(default),
                                options=choices.get(f"paths:{name}", []), ensure_option=False, style=text_style, layout=layout,
                                placeholder="path, or pick a model from the workspace", continuous_update=False)
        else:
            widget = W.Text(description=label, value="" if default is None else str(default), style=text_style, layout=layout,
                            placeholder="(empty: not set)" if nullable else "", continuous_update=False)
    widget.tooltip = help_text
    error = css(W.HTML("", layout=_one(shared, "msg_layout", lambda: W.Layout(margin="0 0 0 8px", max_width="480px")),
                       style=_one(shared, "msg_style", HTMLStyle)),
                "lnb-field-error")
    row = css(W.HBox([widget, error]), "lnb-field", f"lnb-field-{name}")
    field = Field(name, kind, nullable, widget, error, row, prop.get("section", "advanced"), prop.get("families"), default, help_text)
    field.show("")
    return field


_CODE = re.compile(r"`|ws\.settings|settings\.set\(")


def engine_problem(status: Any) -> str:
    """What is wrong with an engine, in words for the panel: each problem's own sentence, without the
    Python or shell fixes meant for scripts (the panel's Install and Use folder are the fix here)."""
    sentences = []
    for problem in status.problems or (f"{status.name} is not installed.",):
        for sentence in re.split(r"(?<=[.)])\s+(?=[A-Z(])", problem):
            if sentence and not _CODE.search(sentence):
                sentences.append(sentence.strip())
    return " ".join(sentences)


def engine_fix(engine: str) -> str:
    return (f"Press Install {engine} to set it up in the workspace, or type the folder of a working checkout in Engine folder "
            "and press Use folder.")


class TrainingPanel(W.VBox):
    """Configure and start a LoRA training run."""

    def __init__(self, ws: Workspace | None = None, on_submit: Callable[[Any], Any] | None = None, dataset: str | None = None) -> None:
        import lora_nb
        from lora_nb.config.model import OPTIMIZERS, SCHEDULERS, TrainingConfig

        self.ws = ws if ws is not None else lora_nb.Workspace()
        self.on_submit = on_submit
        self.TrainingConfig = TrainingConfig
        self.banner = ErrorBanner()
        self.runner = Runner(self.banner, "lnb-training")
        g = self.banner.guard
        self.job: Any = None
        self.errors: dict[str, str] = {}
        self.estimate: Any = None
        self._loading = False

        choices: dict[str, list[str]] = {"optimizer_type": list(OPTIMIZERS), "lr_scheduler": list(SCHEDULERS),
                                         "dataset": self._dataset_names()}
        choices.update(self._model_paths())
        schema = TrainingConfig.ui_schema()
        self.fields: dict[str, Field] = {}
        shared: dict[str, W.Widget] = {}
        for name, prop in schema["properties"].items():
            self.fields[name] = build_field(name, prop, choices, shared)
        self.validate_throttle = Throttle(self.validate, rate=4.0)
        for f in self.fields.values():
            f.widget.observe(self._changed, names="value")

        self.cross_error = css(W.HTML(""), "lnb-cross-error")
        self.steps_label = css(W.HTML(""), "lnb-steps")
        self.engine_status = css(W.HTML(""), "lnb-engine-status")
        self.engine_status_value: Any = None
        self.engine_button = css(W.Button(description="Check engine", icon="refresh"), "lnb-engine-check")
        self.engine_path = css(W.Text(description="Engine folder", placeholder="the folder of a checkout, e.g. /workspace/sd-scripts",
                                      style={"description_width": "100px"}, layout=W.Layout(width="520px")), "lnb-engine-path")
        self.engine_use = css(W.Button(description="Use folder", icon="check", tooltip="save this folder in the workspace settings"),
                              "lnb-engine-use")
        self.engine_torch = css(W.Dropdown(description="torch", options=[("CUDA wheels", "cuda"), ("this machine's", "system")],
                                           value="cuda", style={"description_width": "40px"}, layout=W.Layout(width="200px"),
                                           tooltip="what the engine's venv uses: PyTorch's CUDA wheels, or the torch already installed here"),
                                "lnb-engine-torch")
        self.engine_install = css(W.Button(description="Install", icon="download", button_style="primary"), "lnb-engine-install")
        self.install_line = css(JobLine(on_final=self._installed), "lnb-engine-install-progress")
        self.engine_message = css(W.HTML(""), "lnb-engine-message")
        self.install_job: Any = None
        self.hardware_note = css(W.HTML(""), "lnb-train-hardware")
        self.hardware: dict[str, str] = {}
        self.start_notice = css(Notice(), "lnb-train-start-error")
        self.preset_select = css(W.Dropdown(description="Preset", options=[], style={"description_width": "60px"}), "lnb-preset-select")
        self.preset_load = css(W.Button(description="Load", icon="folder-open"), "lnb-preset-load")
        self.preset_name = css(W.Text(placeholder="preset name", layout=W.Layout(width="180px")), "lnb-preset-name")
        self.preset_save = css(W.Button(description="Save preset", icon="save"), "lnb-preset-save")
        self.report_button = css(W.Button(description="Check dataset", icon="check"), "lnb-train-report-btn")
        self.report_view = css(W.HTML(""), "lnb-train-report")
        self.start_button = css(W.Button(description="Start training", button_style="success", icon="play"), "lnb-train-start")
        self.doctor = DoctorBox(self.ws, on_change=self._doctor_changed, banner=self.banner)   # blocking findings + fixes
        self.preset_load.on_click(g(self._load_preset))
        self.preset_save.on_click(g(self._save_preset))
        self.report_button.on_click(g(self._report))
        self.engine_button.on_click(g(lambda _: self.check_engine()))
        self.engine_use.on_click(self._engine_action(self.use_engine_folder))
        self.engine_install.on_click(self._engine_action(self.install))
        self.start_button.on_click(self._start_clicked)
        self.fields["engine"].widget.observe(lambda ch: self.banner.guard(self._engine_changed)(), names="value")
        self.fields["model_family"].widget.observe(lambda ch: self._family_changed(), names="value")
        # subsets and extra engine options: editors of their own (widgets/subsets_editor.py, widgets/engine_options.py)
        self.subsets = SubsetsEditor(self.ws, on_change=self.validate_throttle.trigger, runner=self.runner)
        self.subsets.use.observe(lambda ch: self._family_changed(), names="value")
        self.extra_options = EngineOptionsEditor(lambda: self.fields["engine"].widget.value,
                                                 lambda: self.fields["model_family"].widget.value, on_change=self.validate_throttle.trigger)
        self.parts: list[Any] = [self.subsets, self.extra_options]

        basic = [f.row for f in self.fields.values() if f.section == "basic"]
        advanced = [f.row for f in self.fields.values() if f.section != "basic"] + [self.extra_options]
        self.advanced = W.Accordion(children=[W.VBox(advanced)], selected_index=None)
        self.advanced.set_title(0, "Advanced settings")
        super().__init__([
            W.HTML("<h3 style='margin:4px 0'>Training</h3>"), self.banner,
            W.HBox([self.preset_select, self.preset_load, self.preset_name, self.preset_save]),
            W.HBox([W.HTML("<b>Engine:</b>&nbsp;"), self.engine_status, self.engine_button]),
            W.HBox([self.engine_path, self.engine_use, self.engine_install, self.engine_torch]),
            self.install_line, self.engine_message, self.hardware_note,
            self.cross_error, W.VBox(basic), self.subsets, self.advanced,
            W.HBox([W.HTML("<b>Steps:</b>&nbsp;"), self.steps_label]),
            W.HBox([self.report_button, self.start_button, self.start_notice]), self.doctor, self.report_view,
        ])
        self.add_class("lnb-training")
        self._family_changed()
        g(self.refresh)(dataset)
        g(self._engine_changed)()
        self.runner.submit(self._detect_hardware, on_done=self._apply_hardware)

    # -- choices -------------------------------------------------------------------------
    def _dataset_names(self) -> list[str]:
        try:
            return self.ws.datasets.names()
        except Exception:
            return []

    def _model_paths(self) -> dict[str, list[str]]:
        try:
            entries = self.ws.models.list()
        except Exception:   # the model library is optional here: the fields still take typed paths
            return {}
        return {f"paths:{name}": [str(e.path) for e in entries if e.kind in kinds] for name, kinds in _MODEL_PATH_FIELDS.items()}

    def refresh(self, dataset: str | None = None) -> None:
        """Re-read datasets, models and presets (after they change elsewhere)."""
        ds = self.fields["dataset"]
        keep = dataset or ds.widget.value
        names = self._dataset_names()
        self._loading = True
        ds.widget.options = names
        ds.widget.value = keep if keep in names else (names[0] if names else None)
        for key, paths in self._model_paths().items():
            self.fields[key.split(":", 1)[1]].widget.options = paths
        keep_preset = self.preset_select.value
        presets = self.ws.presets.list()
        self.preset_select.options = presets
        self.preset_select.value = keep_preset if keep_preset in presets else (presets[0] if presets else None)
        self._loading = False
        self.validate()

    # -- values and validation -----------------------------------------------------------
    def values(self) -> tuple[dict[str, Any], dict[str, str]]:
        """(data for TrainingConfig, {field: message} for values that could not even be read)."""
        data, bad = {}, {}
        for name, f in self.fields.items():
            try:
                data[name] = f.get()
            except ValueError as e:
                bad[name] = str(e)
        for part in getattr(self, "parts", ()):   # subsets, extra options: their data; their problems shown beside them
            data.update(part.data())
            bad.update(part.problems())
        return data, bad

    def set_values(self, data: dict[str, Any]) -> None:
        self._loading = True
        try:
            for k, v in data.items():
                if k in self.fields:
                    self.fields[k].set(v)
            if "dataset" in data:
                self.subsets.set(data["dataset"])
            if "engine_options" in data:
                self.extra_options.set(data["engine_options"])
        finally:
            self._loading = False
        self._family_changed()
        self.validate()

    def _changed(self, change: Any) -> None:
        if not self._loading:
            self.validate_throttle.trigger()

    def validate(self) -> dict[str, str]:
        """Check the form; show each message beside its field; update the step calculator."""
        data, bad = self.values()
        errors = self.TrainingConfig.check({k: v for k, v in data.items() if k not in bad})   # unreadable ones: defaults
        errors.update(bad)
        self.errors = errors
        for name, f in self.fields.items():
            msg = errors.get(name, "")
            if msg != f.message:
                f.show(msg)
        cross = errors.get("", "")
        self.cross_error.value = f'<div style="color:#b00020">{esc(cross)}</div>' if cross else ""
        self.start_button.disabled = bool(errors) or self.doctor.blocked
        self.doctor.watch(data.get("dataset"))       # in the background, only when the datasets/subsets change
        self._counting = data if not errors and data.get("dataset") else None   # an older count finishing later is dropped
        if errors:
            self.steps_label.value = '<span style="color:#777">fix the settings marked in red</span>'
            self.estimate = None
        elif data.get("dataset"):
            self.steps_label.value = '<span style="color:#777">counting…</span>'
            self.runner.latest("estimate", self._estimate, data)
        else:
            self.steps_label.value = '<span style="color:#777">choose a dataset</span>'
        return errors

    def _estimate(self, data: dict[str, Any]) -> None:
        from lora_nb.config import steps

        try:
            est = steps(self.TrainingConfig(**data), self.ws)
        except Exception as e:
            if data is getattr(self, "_counting", data):
                self.steps_label.value = f'<span style="color:#b00020">{esc(one_sentence(e))}</span>'
            return
        if data is not getattr(self, "_counting", data):
            return
        self.estimate = est
        text = f"{est.total_steps:,} steps ({est.epochs} epochs × {est.steps_per_epoch:,}), {est.num_train_images:,} images × repeats"
        if est.seconds is not None:
            from .common import fmt_duration

            text += f"; about {fmt_duration(est.seconds)} at {est.rate:.2f} it/s (earlier runs here)"
        else:
            text += "; time: no earlier run on this machine to estimate from"
        if not est.exact:
            text += " (estimate)"
        self.steps_label.value = esc(text)

    def _family_changed(self) -> None:
        fam = self.fields["model_family"].widget.value
        for f in self.fields.values():
            f.row.layout.display = "" if not f.families or fam in f.families else "none"
        if getattr(self, "subsets", None) is not None and self.subsets.use.value:
            self.fields["dataset"].row.layout.display = "none"          # the subsets name their datasets

    def config(self) -> Any:
        """The TrainingConfig the form describes (raises ConfigError, with ``fields``, when it is invalid)."""
        data, bad = self.values()
        if bad:
            from lora_nb.errors import ConfigError

            name, msg = next(iter(bad.items()))
            label = {"engine_options": "Extra engine options"}.get(name) or (
                "Subsets" if name == "dataset" and self.subsets.use.value else self.fields[name].widget.description)
            err = ConfigError(f"{label}: {msg.rstrip('.')}.", fix="Correct the field marked in red.")
            err.fields = bad  # type: ignore[attr-defined]
            raise err
        return self.TrainingConfig(**data)

    # -- actions -------------------------------------------------------------------------
    def check_engine(self) -> None:
        """Check the chosen engine (in the background) and show what to do when it cannot run."""
        from lora_nb.engines import get_engine

        name = self.fields["engine"].widget.value
        self.engine_status.value = "<i>checking…</i>"

        def work() -> Any:
            return get_engine(name, self.ws).check()

        def show(status: Any) -> None:
            self.engine_status_value = status
            if status.ok:
                self.engine_status.value = f'<span style="color:#1b5e20">{esc(status.summary())}</span>'
            else:
                text = f"{engine_problem(status)} {engine_fix(name)}"
                self.engine_status.value = f'<span style="color:#b00020">{esc(text)}</span>'
            if not self.engine_path.value.strip() and status.path is not None and Path(status.path).is_dir():
                self.engine_path.value = str(status.path)
            running = self.install_job is not None and not self.install_job.status.is_final
            self.engine_install.disabled = bool(status.ok) or running
        self.runner.submit(work, on_done=show)

    def _engine_changed(self) -> None:
        from lora_nb.engines.install import SOURCES

        name = self.fields["engine"].widget.value
        source = SOURCES.get(name)
        self.engine_install.description = f"Install {name}"
        self.engine_install.disabled = source is None
        self.engine_path.value = str(self.ws.settings.get(source.dir_setting) or "") if source is not None else ""
        self.engine_message.value = ""
        self.check_engine()

    def _engine_action(self, fn: Callable[[], Any]) -> Callable[[Any], None]:
        def clicked(_: Any = None) -> None:
            try:
                fn()
            except Exception as e:    # shown beside the engine controls, where the user clicked
                self.engine_message.value = f'<span class="lnb-error" style="color:#b00020">{esc(one_sentence(e))}</span>'
        return clicked

    def use_engine_folder(self) -> None:
        """Save the folder typed in Engine folder as the chosen engine's checkout, then check it."""
        from lora_nb.engines.install import SOURCES

        name = self.fields["engine"].widget.value
        text = self.engine_path.value.strip()
        if not text:
            raise InvalidInput("No engine folder was typed.", fix=f"Type the folder of a {name} checkout, or press Install {name}.")
        path = Path(text).expanduser()
        if not path.is_dir():
            raise InvalidInput(f"There is no folder {path} on this machine.",
                               fix="Type the folder of a checkout on the machine that runs the dashboard.")
        source = SOURCES[name]
        self.ws.settings.set(source.dir_setting, str(path.resolve()))
        self.engine_path.value = str(path.resolve())
        text = f"{name} will run from {path.resolve()}."
        self.engine_message.value = f'<span class="lnb-info" style="color:#1b5e20">{esc(text)}</span>'
        self.check_engine()

    def install(self) -> Any:
        """Queue the install job of the chosen engine (a pinned checkout with its own venv) and show its progress."""
        from lora_nb.engines.install import install_engine

        name = self.fields["engine"].widget.value
        try:
            job = install_engine(self.ws, name, torch=self.engine_torch.value)
        except EngineError as e:
            if "already exists" not in e.message:
                raise
            raise EngineError(e.message, fix="Type that folder in Engine folder and press Use folder, or move it away and "
                                             "press Install again.") from None
        self.install_job = job
        self.engine_install.disabled = True
        self.install_line.attach(job)
        text = f"Installing {name} (job {job.id}): git clone, its own venv, torch and its requirements; this takes minutes."
        self.engine_message.value = f'<span class="lnb-info" style="color:#1b5e20">{esc(text)}</span>'
        return job

    def _installed(self, job: Any) -> None:
        from lora_nb.progress.events import JobStatus

        if job.status is JobStatus.SUCCEEDED:
            self.engine_message.value = f'<span class="lnb-info" style="color:#1b5e20">{esc(job.name + ": done.")}</span>'
            self.engine_path.value = ""
        else:
            snap = job.snapshot(check=False)
            text = failure_cause(snap.error) if snap.error else ended_text(job)
            self.engine_message.value = f'<span class="lnb-error" style="color:#b00020">{esc(text)}</span>'
        self.check_engine()

    # -- hardware ------------------------------------------------------------------------
    def _detect_hardware(self) -> list[dict[str, Any]]:
        from lora_nb.system import gpus

        return gpus()

    def _apply_hardware(self, found: list[dict[str, Any]]) -> None:
        """Defaults the detected hardware can run (no GPU: AdamW, no mixed precision), for fields still at the
        schema's default; and one sentence about it (that training needs a GPU, when there is none)."""
        from lora_nb.system import hardware_note, training_defaults

        self.hardware = training_defaults(found)
        changed = {k: v for k, v in self.hardware.items()
                   if k in self.fields and self.fields[k].widget.value == self.fields[k].default and v != self.fields[k].default}
        if changed:
            self.set_values(changed)
        colour = "#9a6700" if not found else "#555"
        self.hardware_note.value = f'<div style="color:{colour};padding:2px 0">{esc(hardware_note(found))}</div>'

    def _load_preset(self, _: Any = None) -> None:
        name = self.preset_select.value
        if not name:
            raise InvalidInput('There is no preset to load yet.', fix='Save one first with Save preset.')
        self.ws.presets.load(name)                      # refuses an invalid preset with one sentence
        self.set_values(self.ws.presets.raw(name))
        self.banner.info(f"Loaded preset '{name}'.")

    def _save_preset(self, _: Any = None) -> None:
        name = self.preset_name.value.strip()
        if not name:
            raise InvalidInput('The preset has no name.', fix='Type a name for the preset.')
        self.ws.presets.save(name, self.config())
        self.preset_select.options = self.ws.presets.list()
        self.preset_select.value = name
        self.banner.info(f"Saved preset '{name}'.")

    def _doctor_changed(self, blocked: bool) -> None:
        self.start_button.disabled = bool(self.errors) or blocked

    def _report(self, _: Any = None) -> None:
        self.doctor.recheck()
        from .datasets import report_html

        cfg = self.config()
        if not isinstance(cfg.dataset, str) or not cfg.dataset:
            raise InvalidInput('No dataset is selected.', fix='Choose a dataset first.')
        ds = self.ws.datasets.get(cfg.dataset)
        self.report_view.value = "<i>checking…</i>"
        self.runner.submit(ds.report, resolution=cfg.resolution_wh, trigger_words=cfg.trigger_words or None,
                           on_done=lambda r: setattr(self.report_view, "value", report_html(r)))

    def _start_clicked(self, _: Any = None) -> None:
        """Start, with its error shown beside the button (scrolled into view) as well as in the banner."""
        try:
            self.start()
        except Exception as e:
            self.start_notice.show(one_sentence(e), "error")
            self.banner.error(e)

    def start(self, _: Any = None) -> Any:
        """Validate, then queue the run (``ws.jobs.submit_training``); returns the Job."""
        from lora_nb.errors import ConfigError, DatasetBlocked

        self.start_notice.clear()
        try:
            cfg = self.config()
            self.job = self.ws.jobs.submit_training(cfg)
        except DatasetBlocked as e:       # checked again at launch: the files may have changed since
            self.doctor.show(e.findings)
            raise
        except ConfigError as e:
            for name, msg in getattr(e, "fields", {}).items():
                if name in self.fields:
                    self.fields[name].show(msg)
            raise
        except EngineError:
            from lora_nb.engines import get_engine

            status = get_engine(cfg.engine, self.ws).check()
            if status.ok:
                raise
            raise EngineError(f"{cfg.engine} cannot run here: {engine_problem(status)}",
                              fix="Install it or choose its folder under Engine at the top of this tab.") from None
        text = f"Queued training run '{self.job.name}' (job {self.job.id}); follow it in the Jobs tab."
        self.banner.info(text)
        self.start_notice.show(text, "info")
        if self.on_submit is not None:
            self.on_submit(self.job)
        return self.job
