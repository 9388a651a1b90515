"""The training form's own editors: subsets (rows, one sentence beside a bad value, the live step count), the extra
engine options (checked as the user types against the engine's option list), and the job monitor's Save now /
Sample now (enabled only where the engine offers them). Runs go to the STAND-IN engines of tests/engines."""
from __future__ import annotations

from pathlib import Path

import tomllib

from lora_nb.config import steps
from lora_nb.progress.events import JobStatus
from lora_nb.widgets import JobMonitor, TrainingPanel
from support import wait_for


def _panel(ws, model_file, **kw):
    p = TrainingPanel(ws, dataset="demo")
    p.runner.idle()
    values = dict(pretrained_model_name_or_path=str(model_file), resolution="64", min_bucket_reso=64, max_bucket_reso=128,
                  max_train_epochs=2, output_name="demo", mixed_precision="no", optimizer_type="AdamW")
    values.update(kw)
    p.set_values(values)
    p.runner.idle()
    return p


def _settle(p):
    p.validate_throttle.flush()
    p.runner.idle()


# -- subsets -------------------------------------------------------------------------------------------------
def test_subsets_rows_build_the_config_and_the_step_count_follows(ws, demo_ds, model_file):
    p = _panel(ws, model_file)
    whole = p.estimate.total_steps
    p.subsets.use.value = True
    _settle(p)
    assert p.fields["dataset"].row.layout.display == "none" and len(p.subsets.rows) == 1
    row = p.subsets.rows[0]
    assert row.dataset.value == "demo" and ("10_lnbdemo", "10_lnbdemo") in row.folder.options   # read in the background
    row.folder.value = "10_lnbdemo"
    row.repeats.value = 3
    _settle(p)
    cfg = p.config()
    assert [s.model_dump(exclude_defaults=True) for s in cfg.dataset] == [{"dataset": "demo", "folder": "10_lnbdemo", "num_repeats": 3}]
    assert p.estimate.total_steps == steps(cfg, ws).total_steps != whole
    assert f"{p.estimate.total_steps:,} steps" in p.steps_label.value
    second = p.subsets.add_row({"dataset": "demo", "folder": "10_lnbdemo", "num_repeats": 2, "is_reg": True})
    second.caption_extension.value = "caption"
    second.keep_tokens.value = "1"
    second.flip.value = True
    _settle(p)
    sub = p.config().dataset[1]
    assert (sub.is_reg, sub.caption_extension, sub.keep_tokens, sub.flip_aug) == (True, ".caption", 1, True)
    p.subsets.remove_row(second)
    _settle(p)
    assert len(p.config().dataset) == 1
    p.subsets.use.value = False
    _settle(p)
    assert p.config().dataset == "demo" and p.fields["dataset"].row.layout.display == ""
    assert p.estimate.total_steps == whole


def test_a_bad_subset_value_is_one_sentence_beside_its_row_and_blocks_start(ws, demo_ds, model_file):
    p = _panel(ws, model_file)
    p.subsets.use.value = True
    _settle(p)
    row = p.subsets.rows[0]
    assert (row.folder.value, row.repeats.value) == ("10_lnbdemo", 10)   # a new row: the first folder and its N_ repeats
    row.repeats.value = 0
    _settle(p)
    assert "Repeats: Input should be greater than or equal to 1." in row.message.value
    assert p.start_button.disabled and "fix the settings" in p.steps_label.value
    row.repeats.value = 2
    row.keep_tokens.value = "two"
    _settle(p)
    assert "Keep tags: Input should be a valid integer" in row.message.value and p.start_button.disabled
    row.keep_tokens.value = ""
    row.random_crop.value = True                 # with cached latents: the config's own cross check
    _settle(p)
    assert row.message.value == "" and "Random crop cannot be used with cached latents" in p.cross_error.value
    p.fields["cache_latents"].widget.value = False
    _settle(p)
    assert p.cross_error.value == "" and not p.start_button.disabled
    p.subsets.remove_row(row)
    _settle(p)
    assert p.errors["dataset"] == "Add at least one subset, or turn subsets off." and p.start_button.disabled


def test_presets_keep_subsets_and_extra_options(ws, demo_ds, model_file):
    p = _panel(ws, model_file)
    p.subsets.use.value = True
    _settle(p)                                   # the folder list is read in the background
    p.subsets.rows[0].folder.value = "10_lnbdemo"
    p.subsets.rows[0].repeats.value = 4
    p.extra_options.text.value = "debiased_estimation_loss = true"
    _settle(p)
    p.preset_name.value = "subsets"
    p.preset_save.click()
    q = _panel(ws, model_file)
    q.preset_select.value = "subsets"
    q.preset_load.click()
    _settle(q)
    assert q.subsets.use.value and q.subsets.rows[0].repeats.value == 4 and q.subsets.rows[0].folder.value == "10_lnbdemo"
    assert q.config().engine_options == {"debiased_estimation_loss": True}


# -- extra engine options -------------------------------------------------------------------------------------
def test_extra_options_are_checked_as_the_user_types(ws, demo_ds, model_file):
    p = _panel(ws, model_file)
    ed = p.extra_options
    ed.text.value = "debiased_estimaton_loss = true"
    assert "did you mean &#x27;debiased_estimation_loss&#x27;?" in ed.messages.value        # on the key press itself
    _settle(p)
    assert p.start_button.disabled
    ed.text.value = "network_dim = 8"
    assert "set &#x27;Rank (dim)&#x27; (network_dim) in the form instead" in ed.messages.value
    ed.text.value = "huber_c = fast"
    assert "huber_c of train_network.py must be a number, not &#x27;fast&#x27;." in ed.messages.value
    ed.text.value = "huber_c = 0.2\nloss_type = huber"
    _settle(p)
    assert ed.messages.value == "" and not p.start_button.disabled
    assert p.config().engine_options == {"huber_c": 0.2, "loss_type": "huber"}
    p.fields["engine"].widget.value = "ai-toolkit"        # the same lines, checked against ai-toolkit's keys now
    _settle(p)
    assert "not a section.key path of ai-toolkit" in ed.messages.value and "model.low_vram" in ed.help.value
    ed.text.value = "model.low_vram = true"
    _settle(p)
    assert ed.messages.value == "" and p.config().engine_options == {"model.low_vram": True}


def test_start_with_subsets_renders_them_for_the_engine(ws, demo_ds, model_file, standin_kohya, monkeypatch):
    monkeypatch.setenv("LORA_NB_STANDIN_SPEED", "0.01")
    p = _panel(ws, model_file)
    p.subsets.set([{"dataset": "demo", "folder": "10_lnbdemo", "num_repeats": 2, "caption_extension": ".txt", "keep_tokens": 1}])
    p.extra_options.text.value = "debiased_estimation_loss = true"
    _settle(p)
    p.start_button.click()
    assert p.banner.kind == "info", p.banner.text
    job = p.job
    dataset = tomllib.loads(Path(job.meta["files"]["dataset"]).read_text())
    assert dataset["datasets"][0]["subsets"] == [{"image_dir": str(demo_ds.path / "10_lnbdemo"), "num_repeats": 2,
                                                  "caption_extension": ".txt", "keep_tokens": 1}]
    assert "debiased_estimation_loss = true" in Path(job.meta["files"]["training"]).read_text()
    assert job.wait(120) is JobStatus.SUCCEEDED, job.error


# -- mid-run control in the job monitor -------------------------------------------------------------------------
def test_save_now_and_sample_now_buttons_on_an_aitoolkit_run(ws, demo_ds, standin_aitoolkit, monkeypatch):
    from lora_nb.config import TrainingConfig

    monkeypatch.setenv("FAKE_AITK_STEP_SECONDS", "0.2")
    cfg = TrainingConfig(engine="ai-toolkit", model_family="flux", dataset="demo", pretrained_model_name_or_path="org/flux",
                         resolution="64", min_bucket_reso=64, max_bucket_reso=128, max_train_epochs=None, max_train_steps=300,
                         save_every_n_steps=1000, optimizer_type="AdamW", output_name="demo", sample_prompts=["a cat"],
                         sample_every_n_steps=1000)
    job = ws.jobs.submit_training(cfg)
    m = JobMonitor(ws, job)
    try:
        wait_for(lambda: (job.progress.step or 0) >= 2, timeout=60)
        m.render()
        assert m.midrun.layout.display == "" and not m.midrun.save_button.disabled and not m.midrun.sample_button.disabled
        m.midrun.save_button.click()
        m.runner.idle()
        assert m.midrun.save_button.disabled and "save a checkpoint" in m.banner.text    # until the next frame
        wait_for(lambda: any(a["kind"] == "checkpoint" for a in job.artifacts), timeout=30)
        m.midrun.sample_button.click()
        m.runner.idle()
        wait_for(lambda: any(a["kind"] == "sample" for a in job.artifacts), timeout=30)
        job.stop()
        assert job.wait(30) is JobStatus.STOPPED
        m.render()
        assert m.midrun.save_button.disabled and m.midrun.sample_button.disabled
    finally:
        job.stop(wait=False)
        m.detach()


def test_buttons_disabled_with_the_reason_on_a_kohya_run(ws, demo_ds, model_file, standin_kohya, monkeypatch):
    monkeypatch.setenv("LORA_NB_STANDIN_SPEED", "0.5")
    p = _panel(ws, model_file)
    p.start_button.click()
    job = p.job
    m = JobMonitor(ws, job)
    try:
        wait_for(lambda: job.status is JobStatus.RUNNING, timeout=60)
        m.render()
        assert m.midrun.layout.display == "" and m.midrun.save_button.disabled and m.midrun.sample_button.disabled
        assert m.midrun.save_button.tooltip.startswith("sd-scripts cannot save or sample on request")
        assert "sd-scripts cannot save or sample on request" in m.midrun.reason.value
    finally:
        job.stop()
        m.detach()
