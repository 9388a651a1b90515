"""TrainingPanel: the form generated from TrainingConfig.ui_schema(), validation beside fields, the step
calculator, presets, engine status, Start (on the STAND-IN sd-scripts of tests/engines)."""
from __future__ import annotations

from lora_nb.config import TrainingConfig, steps
from lora_nb.progress.events import JobStatus
from lora_nb.widgets import TrainingPanel


def _panel(ws, **kw):
    p = TrainingPanel(ws, **kw)
    p.runner.idle()
    return p


def _fill(p, model_file, **kw):
    values = dict(pretrained_model_name_or_path=str(model_file), resolution="64", min_bucket_reso=64, max_bucket_reso=128,
                  max_train_epochs=2, output_name="demo", mixed_precision="no", optimizer_type="AdamW", trigger_words=["lnbdemo"])
    values.update(kw)
    p.set_values(values)
    p.runner.idle()


def test_form_is_generated_from_the_schema(ws):
    p = _panel(ws)
    props = TrainingConfig.ui_schema()["properties"]
    assert set(p.fields) == set(props)
    assert {n for n, f in p.fields.items() if f.section == "basic"} == {n for n, v in props.items() if v["section"] == "basic"}
    assert p.fields["network_dim"].widget.description == "Rank (dim)"
    assert p.fields["optimizer_type"].kind == "enum" and "Prodigy" in p.fields["optimizer_type"].widget.options
    data, bad = p.values()
    assert bad == {} and TrainingConfig.check(data) == {}          # the defaults are a valid config
    assert p.fields["clip_l"].row.layout.display == "none"          # FLUX/SD3-only fields hidden for sd15
    p.fields["model_family"].widget.value = "flux"
    assert p.fields["clip_l"].row.layout.display == "" and p.fields["clip_skip"].row.layout.display == "none"


def test_errors_appear_next_to_their_fields(ws):
    p = _panel(ws)
    p.fields["network_dim"].widget.value = 0
    p.fields["max_train_steps"].widget.value = "lots"
    p.validate()
    assert "greater than or equal to 1" in p.fields["network_dim"].error.value and "lnb-error-text" in p.fields["network_dim"].error.value
    assert "number" in p.fields["max_train_steps"].message
    assert p.start_button.disabled and "fix the settings" in p.steps_label.value
    p.fields["network_dim"].widget.value = 8
    p.fields["max_train_steps"].widget.value = ""
    p.fields["lr_warmup_steps"].widget.value = "100"             # constant schedule takes no warm-up: a cross-field check
    p.validate()
    assert p.fields["network_dim"].message == "" and "constant schedule" in p.cross_error.value
    assert "lnb-error-text" not in p.fields["network_dim"].error.value and "LoRA rank" in p.fields["network_dim"].error.value
    p.fields["lr_scheduler"].widget.value = "constant_with_warmup"
    p.validate()
    assert p.cross_error.value == "" and not p.start_button.disabled


def test_changes_revalidate_at_a_bounded_rate(ws):
    p = _panel(ws)
    for v in range(1, 60):
        p.fields["network_dim"].widget.value = v
    p.validate_throttle.flush()
    assert p.validate_throttle.calls <= 3


def test_step_calculator_matches_lora_nb_steps(ws, demo_ds, model_file):
    p = _panel(ws, dataset="demo")
    _fill(p, model_file, train_batch_size=2)
    cfg = p.config()
    est = steps(cfg, ws)
    assert p.estimate.total_steps == est.total_steps
    assert f"{est.total_steps:,} steps" in p.steps_label.value and "earlier run" in p.steps_label.value


def test_presets_save_and_load(ws, model_file):
    p = _panel(ws)
    _fill(p, model_file, network_dim=32, network_alpha=16.0)
    p.preset_name.value = "mine"
    p.preset_save.click()
    assert "mine" in ws.presets.list() and p.preset_select.value == "mine"
    p.fields["network_dim"].widget.value = 4
    p.preset_load.click()
    assert p.fields["network_dim"].widget.value == 32 and p.banner.text == "Loaded preset 'mine'."
    p.preset_name.value = ""
    p.preset_save.click()
    assert p.banner.kind == "error" and "name" in p.banner.text


def test_engine_status_shows_the_fix(ws, standin_kohya):
    ws.settings.set("kohya_dir", str(ws.root / "missing-sd-scripts"))
    p = _panel(ws)
    # the fix is what to do in the panel (Install, or a folder and Use folder), not a Python call or a shell command
    assert "Press Install kohya" in p.engine_status.value and "Use folder" in p.engine_status.value
    assert "ws.settings" not in p.engine_status.value and "`" not in p.engine_status.value
    ws.settings.set("kohya_dir", str(standin_kohya))
    p.engine_button.click()
    p.runner.idle()
    assert p.engine_status_value.ok and "#1b5e20" in p.engine_status.value


def test_start_refused_with_one_sentence_when_the_engine_is_missing(ws, demo_ds, model_file):
    p = _panel(ws, dataset="demo")
    _fill(p, model_file)
    p.start_button.click()
    assert p.banner.kind == "error" and "sd-scripts was not found" in p.banner.text and ws.jobs.list() == []


def test_start_queues_a_run_on_the_standin(ws, demo_ds, model_file, standin_kohya, monkeypatch):
    monkeypatch.setenv("LORA_NB_STANDIN_SPEED", "0.01")
    submitted = []
    p = _panel(ws, dataset="demo", on_submit=submitted.append)
    _fill(p, model_file)
    p.start_button.click()
    assert p.banner.kind == "info", p.banner.text
    assert submitted and submitted[0].kind == "training" and submitted[0].meta["dataset"] == "demo"
    assert submitted[0].wait(120) is JobStatus.SUCCEEDED, submitted[0].error
    from lora_nb.widgets import JobMonitor

    again = []
    m = JobMonitor(ws, submitted[0], on_new_job=again.append)
    m.rerun_button.click()                     # a new run of the saved config.json, through submit_training
    assert again and again[0].id != submitted[0].id and again[0].kind == "training", m.banner.text
    assert (again[0].run_dir / "config.json").read_text() == (submitted[0].run_dir / "config.json").read_text()
    assert again[0].wait(120) is JobStatus.SUCCEEDED, again[0].error
    m.detach()


def test_dataset_report_uses_the_training_resolution(ws, demo_ds, model_file):
    p = _panel(ws, dataset="demo")
    _fill(p, model_file, trigger_words=["nobody"])
    p.report_button.click()
    p.runner.idle()
    assert "at 64x64" in p.report_view.value and "nobody" in p.report_view.value
