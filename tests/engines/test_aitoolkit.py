"""ai-toolkit: the rendered job YAML (golden file, ENGINES.md B2 keys, Part C checklist), the log parser,
and whole runs through the real job system.

The trainer here is a STAND-IN (tests/engines/fake_aitoolkit/run.py): no recorded ai-toolkit output
exists in ../shared/fixtures, so it reproduces ai-toolkit's process-level behaviour from the facts in
ENGINES.md Part B (text on stdout, the bar on stderr, real safetensors checkpoints, rotation,
automatic resume, SIGINT -> 'Job stopped' and exit code 0).
"""
from __future__ import annotations

import signal
from pathlib import Path

import pytest
import yaml

from golden_configs import AITK_CONFIGS
from lora_nb.config import TrainingConfig
from lora_nb.engines.aitoolkit import render_job
from lora_nb.engines.aitoolkit_parser import AIToolkitParser
from lora_nb.errors import ConfigError, EngineError
from lora_nb.progress.events import EventKind, JobStatus
from support import wait_for

GOLDEN = Path(__file__).resolve().parent / "golden"
FOLDERS = [{"image_dir": "/WS/datasets/alice/5_alice", "num_repeats": 5}]


def aitk_cfg(**kw):
    base = dict(engine="ai-toolkit", model_family="flux", dataset="alice", pretrained_model_name_or_path="black-forest-labs/FLUX.1-dev",
                output_name="demo", resolution="512", max_bucket_reso=1024, trigger_words=["alice"], max_train_epochs=None,
                max_train_steps=12, save_every_n_steps=5, optimizer_type="AdamW", mixed_precision="bf16")
    base.update(kw)
    return TrainingConfig(**base)


# -- rendering ---------------------------------------------------------------------------------------
def test_golden_job_yaml():
    cfg = AITK_CONFIGS["flux_aitk"]
    job = render_job(cfg, FOLDERS, cfg.max_train_steps, None, Path("/RUN/output"), Path("/RUN/logs"))
    assert yaml.safe_dump(job, sort_keys=False, allow_unicode=True) == (GOLDEN / "flux_aitk.job.yaml").read_text()


def test_job_yaml_follows_the_checklist():
    job = yaml.safe_load((GOLDEN / "flux_aitk.job.yaml").read_text())
    assert job["job"] == "extension" and job["config"]["name"] == "alice"             # Part C ai-toolkit 1
    proc = job["config"]["process"][0]
    assert proc["type"] == "sd_trainer" and proc["training_folder"].startswith("/")
    assert proc["train"]["noise_scheduler"] == "flowmatch" == proc["sample"]["sampler"]   # B2: must match for FLUX
    assert proc["model"]["arch"] == "flux" and proc["model"]["name_or_path"] == "black-forest-labs/FLUX.1-dev"
    assert isinstance(proc["train"]["lr"], float) and proc["train"]["steps"] == 2000
    assert "${" not in (GOLDEN / "flux_aitk.job.yaml").read_text()
    assert proc["datasets"][0]["caption_ext"] == "txt" and proc["datasets"][0]["num_repeats"] == 5


def test_epochs_become_steps_with_the_shared_calculator(ws, dataset):
    from lora_nb.config import steps
    from lora_nb.engines import get_engine

    ws.settings.set("aitoolkit_dir", str(ws.root))   # prepare() needs no checkout
    cfg = aitk_cfg(max_train_steps=None, max_train_epochs=3, save_every_n_steps=None, save_every_n_epochs=1)
    run_dir = ws.runs_dir / "manual"
    run_dir.mkdir()
    plan = get_engine("ai-toolkit", ws).prepare(cfg, run_dir)
    proc = yaml.safe_load(plan.files["job"].read_text())["config"]["process"][0]
    est = steps(cfg, ws)
    assert proc["train"]["steps"] == est.total_steps == 3 * 20        # 4 images x 5 repeats, batch 1
    assert proc["save"]["save_every"] == est.steps_per_epoch == 20
    assert plan.argv[1].endswith("run.py") and plan.argv[2] == str(plan.files["job"]) and Path(plan.argv[2]).is_absolute()
    assert plan.cwd == Path(ws.root) and plan.env["PYTHONUNBUFFERED"] == "1"
    assert plan.parser_options["stop_signal"] == "SIGINT"


@pytest.mark.parametrize("change, message", [
    (dict(sample_prompts=["price ${HOME}"], sample_every_n_steps=5), "read as an environment variable"),
    (dict(optimizer_type="AdamWScheduleFree"), "ai-toolkit has no optimizer"),
    (dict(lr_scheduler="polynomial"), "no learning-rate schedule"),
])
def test_bad_configs_are_refused_and_leave_no_run(ws, dataset, standin_aitoolkit, change, message):
    with pytest.raises(ConfigError, match=message):
        ws.jobs.submit_training(aitk_cfg(**change))
    assert ws.jobs.list() == [] and list(ws.runs_dir.iterdir()) == []


def test_ai_toolkit_is_flux_only():
    with pytest.raises(ConfigError, match="flux family only"):
        TrainingConfig(engine="ai-toolkit", model_family="sdxl", dataset="x")


def test_missing_engine_is_refused_with_the_fix(ws, dataset):
    with pytest.raises(EngineError, match="ai-toolkit was not found .*lora-nb engines install ai-toolkit"):
        ws.jobs.submit_training(aitk_cfg())


# -- parser ------------------------------------------------------------------------------------------
def test_parser_reads_the_bar_and_milestones(tmp_path):
    final = tmp_path / "demo" / "demo.safetensors"
    p = AIToolkitParser(options={"name": "demo", "final_path": str(final)})
    assert p.feed("Caching latents to disk: 100%|██████████| 4/4 [00:01<00:00,  3.1it/s]")[0].data == {"phase": "caching latents"}
    ev = p.feed("demo:   5%|▌         | 250/5000 [05:12<1:38:10,  1.25s/it, lr: 1.0e-04 loss: 4.123e-01]")[0].data
    assert (ev["step"], ev["total_steps"], ev["loss"], ev["lr"], round(ev["rate"], 2), ev["eta"]) == (250, 5000, 0.4123, 1e-4, 0.8, 5890.0)
    assert p.feed("Saving at step 250")[0].data["phase"] == "saving"
    e = p.feed(f"Saved checkpoint to {tmp_path}/demo/demo_000000250.safetensors")[0]
    assert e.kind is EventKind.ARTIFACT and e.data["kind"] == "checkpoint"
    assert p.feed(f"Saved checkpoint to {final}")[0].data["kind"] == "lora"
    assert p.feed("demo:  50%|█████     | 2/4 [00:01<00:01, 1.9it/s, lr: 1.0e-04 loss: nan]")[0].kind is EventKind.HINT
    assert p.hints and "NaN" in p.hints[0]


def test_parser_resume_is_absolute():
    p = AIToolkitParser(options={"name": "demo", "total_steps": 2000})
    assert p.feed("Found step 750 in metadata, starting from there")[0].data == {"step": 750, "total_steps": 2000}
    assert p.feed("demo:  38%|███▊      | 751/2000 [00:02<1:02:00,  3.0s/it, lr: 1.0e-04 loss: 3.1e-01]")[0].data["step"] == 751


def test_parser_ignores_other_bars_and_names():
    p = AIToolkitParser(options={"name": "demo"})
    assert p.feed("Generating Images:  50%|█████     | 1/2 [00:03<00:03,  3.0s/it]") == [] or \
        all(e.data.get("step") is None for e in p.feed("Generating Images:  50%|█████     | 1/2 [00:03<00:03,  3.0s/it]"))
    assert p.feed("demo2:  50%|█████     | 1/2 [00:03<00:03,  3.0s/it, lr: 1.0e-04 loss: 3.1e-01]") == []


def test_verdicts(tmp_path):
    final = tmp_path / "demo.safetensors"
    p = AIToolkitParser(options={"name": "demo", "final_path": str(final)})
    v = p.verdict(0, stopped=False)
    assert v.status is JobStatus.FAILED and "final LoRA" in v.reason                 # exit 0 without the file
    final.write_bytes(b"x")
    assert p.verdict(0, stopped=False).status is JobStatus.SUCCEEDED
    p.feed("Job stopped")
    assert p.verdict(0, stopped=False).status is JobStatus.STOPPED                  # exit 0 after an interrupt
    q = AIToolkitParser(options={"name": "demo"})
    q.feed("Error running job: CUDA out of memory. Tried to allocate 2.00 GiB")
    v = q.verdict(1, stopped=False)
    assert v.status is JobStatus.FAILED and "CUDA out of memory" in v.reason and "GPU ran out of memory" in q.hints[0]
    assert AIToolkitParser().stop_signal == signal.SIGINT


# -- whole runs on the stand-in ------------------------------------------------------------------------
def test_full_run(ws, dataset, standin_aitoolkit):
    job = ws.jobs.submit_training(aitk_cfg(sample_prompts=["[trigger] portrait"], sample_every_n_steps=6))
    assert job.wait(120) is JobStatus.SUCCEEDED, (job.error, "\n".join(job.log_tail(20)))
    prog = job.progress
    assert (prog.step, prog.total_steps) == (12, 12) and prog.loss is not None and prog.lr == 1e-4
    kinds = [(Path(a["path"]).name, a["kind"]) for a in job.artifacts]
    assert ("demo_000000005.safetensors", "checkpoint") in kinds and ("demo_000000010.safetensors", "checkpoint") in kinds
    assert ("demo.safetensors", "lora") in kinds and sum(k == "sample" for _, k in kinds) == 2
    out = job.run_dir / "output" / "demo"
    from safetensors import safe_open

    with safe_open(str(out / "demo.safetensors"), "np") as f:
        assert f.metadata()["ss_base_model_version"] == "flux.1"
    from lora_nb.engines import get_engine

    found = {a.kind for a in get_engine("ai-toolkit", ws).artifacts(job.run_dir)}
    assert {"lora", "checkpoint", "sample", "config"} <= found


def test_stop_sends_sigint_and_exit_zero_counts_as_stopped(ws, dataset, standin_aitoolkit, monkeypatch):
    monkeypatch.setenv("FAKE_AITK_STEP_SECONDS", "0.5")
    job = ws.jobs.submit_training(aitk_cfg(max_train_steps=200, save_every_n_steps=2))
    wait_for(lambda: (job.progress.step or 0) >= 3, timeout=60)
    job.stop()
    assert job.wait(30) is JobStatus.STOPPED
    assert job.exit_code == 0                                 # ai-toolkit's clean stop...
    assert "Job stopped" in "\n".join(job.log_tail(50))                 # ...reached via SIGINT (SIGTERM would leave no banner)
    assert not (job.run_dir / "output" / "demo" / "demo.safetensors").exists()


def test_resume_continues_from_the_newest_checkpoint(ws, dataset, standin_aitoolkit, monkeypatch):
    monkeypatch.setenv("FAKE_AITK_STEP_SECONDS", "0.3")
    first = ws.jobs.submit_training(aitk_cfg(max_train_steps=40, save_every_n_steps=4))
    wait_for(lambda: any(a["kind"] == "checkpoint" and "000000008" in a["path"] for a in first.artifacts), timeout=60)
    first.stop()
    assert first.wait(30) is JobStatus.STOPPED
    monkeypatch.setenv("FAKE_AITK_STEP_SECONDS", "0.01")
    second = ws.jobs.submit_training(aitk_cfg(max_train_steps=40, save_every_n_steps=4, resume=str(first.run_dir)))
    assert second.wait(60) is JobStatus.SUCCEEDED, second.error
    log = "\n".join(second.log_tail(200))
    resumed_at = int(log.split("Found step ")[1].split()[0])
    assert resumed_at >= 8 and second.progress.step == 40
    assert (first.run_dir / "output" / "demo" / "demo.safetensors").is_file()


def test_resume_from_a_folder_without_checkpoints_is_refused(ws, dataset, standin_aitoolkit, tmp_path):
    with pytest.raises(ConfigError, match="holds no ai-toolkit checkpoint of 'demo'"):
        ws.jobs.submit_training(aitk_cfg(resume=str(tmp_path)))
    assert ws.jobs.list() == []


def test_engine_failure_becomes_a_hint(ws, dataset, standin_aitoolkit, monkeypatch):
    monkeypatch.setenv("FAKE_AITK_FAIL", "oom")
    job = ws.jobs.submit_training(aitk_cfg())
    assert job.wait(60) is JobStatus.FAILED
    assert "GPU ran out of memory" in (job.error or "") or any("GPU ran out of memory" in h for h in job.hints)


def test_exit_zero_without_final_lora_is_a_failure(ws, dataset, standin_aitoolkit, monkeypatch):
    monkeypatch.setenv("FAKE_AITK_NO_FINAL", "1")
    job = ws.jobs.submit_training(aitk_cfg())
    assert job.wait(60) is JobStatus.FAILED and job.exit_code == 0
    assert "final LoRA" in (job.error or "")


def test_engine_options_are_section_paths():
    cfg = AITK_CONFIGS["flux_aitk"].model_copy(update={"engine_options": {"model.low_vram": True, "train.ema_config.use_ema": True}})
    proc = render_job(cfg, FOLDERS, 100, None, Path("/RUN/output"), None)["config"]["process"][0]
    assert proc["model"]["low_vram"] is True and proc["train"]["ema_config"] == {"use_ema": True}
    with pytest.raises(ConfigError, match="not a section.key path"):
        render_job(cfg.model_copy(update={"engine_options": {"training_folder": "/x"}}), FOLDERS, 100, None, Path("/o"), None)
