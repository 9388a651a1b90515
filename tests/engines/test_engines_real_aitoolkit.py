"""The REAL ostris/ai-toolkit (27a03a9, ../shared/engines), end to end through lora-nb, on CPU (all tests here).

Set up by `bash scripts/aitoolkit-cpu-setup.sh` (scripts/test.sh runs it and exports the locations): the engine
extracted into the engine cache, its own venv (CPU torch 2.13 and ai-toolkit's requirements) and tiny random models
of the real architectures (tests/engines/aitoolkit_real/make_tiny_models.py). The FLUX LoRA job lora-nb renders is
launched by `ws.jobs.submit_training`, followed (parsed step/loss/lr), its checkpoints, samples and final LoRA found
with ai-toolkit's metadata; Stop sends SIGINT and the job ends `stopped` with exit 0; a resumed run continues from
the newest checkpoint; the SD 1.5 job lora-nb renders trains too; save now / sample now reach ai-toolkit's own
DiffusionTrainer through the run's flag store. Skipped when LORA_NB_REAL_AITOOLKIT_DIR is not set, except on CI (CI=true), where a missing
engine FAILS. About 4 minutes on 2 cores.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from lora_nb import TrainingConfig
from lora_nb.config import steps
from lora_nb.progress.events import JobStatus
from support import wait_for

sys.path.insert(0, str(Path(__file__).resolve().parent / "aitoolkit_real"))
from scenarios import BASE  # noqa: E402

DIR = os.environ.get("LORA_NB_REAL_AITOOLKIT_DIR")
PYTHON = os.environ.get("LORA_NB_REAL_AITOOLKIT_PYTHON")
MODELS = os.environ.get("LORA_NB_REAL_AITOOLKIT_MODELS")
ON_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.fixture
def real(ws, dataset):
    """The workspace pointed at the real engine (the 4-image 64 px 'alice' dataset of conftest.py)."""
    if not (DIR and PYTHON and MODELS):
        message = "LORA_NB_REAL_AITOOLKIT_DIR/_PYTHON/_MODELS are not set: run bash scripts/aitoolkit-cpu-setup.sh (scripts/test.sh does)"
        if ON_CI:
            pytest.fail("on CI the real ai-toolkit must be set up: " + message)
        pytest.skip(message)
    ws.settings.set("aitoolkit_dir", DIR)
    ws.settings.set("aitoolkit_python", PYTHON)
    return Path(MODELS)


def config(models: Path, **kw) -> TrainingConfig:
    return TrainingConfig(**{**BASE, "pretrained_model_name_or_path": str(models / "flux-tiny"), **kw})


def test_check_finds_the_real_engine(ws, real):
    """Real engine: check() sees the checkout and its Python with torch, yaml and safetensors."""
    from lora_nb.engines import get_engine

    status = get_engine("ai-toolkit", ws).check()
    assert status.installed, status.summary()


def test_real_flux_lora_run(ws, real):
    """Real engine: a whole FLUX LoRA run (8 steps, checkpoint at 4, samples at 0 and 8)."""
    from safetensors import safe_open

    import lora_nb

    cfg = config(real, max_train_steps=8, save_every_n_steps=4, trigger_words=["alice"], sample_prompts=["[trigger] portrait"],
                 sample_every_n_steps=8)
    job = ws.jobs.submit_training(cfg)
    assert job.wait(600) is JobStatus.SUCCEEDED, (job.error, job.log_tail(40))
    prog = job.progress
    assert prog.step == prog.total_steps == steps(cfg, ws).total_steps == 8
    assert prog.loss is not None and prog.loss > 0 and prog.lr == 1e-4
    log = job.log_path.read_text(errors="replace")
    assert "Error running job" not in log and "Traceback" not in log
    kinds = {(Path(a["path"]).name, a["kind"]) for a in job.artifacts}
    assert {("demo_000000004.safetensors", "checkpoint"), ("demo.safetensors", "lora")} <= kinds
    assert sum(k == "sample" for _, k in kinds) == 2                      # baseline (step 0) and final
    lora = job.run_dir / "output" / "demo" / "demo.safetensors"
    meta = lora_nb.lora.read_metadata(lora)
    assert meta["ss_base_model_version"] == "flux.1" and meta["ss_output_name"] == "demo"
    assert json.loads(meta["training_info"])["step"] == 8 and json.loads(meta["software"])["name"] == "ai-toolkit"
    with safe_open(str(lora), "np") as f:                                  # PEFT format (alpha = rank)
        keys = list(f.keys())
    assert keys and all(".lora_A." in k or ".lora_B." in k for k in keys)
    from lora_nb.engines import get_engine

    found = {a.kind for a in get_engine("ai-toolkit", ws).artifacts(job.run_dir)}
    assert {"lora", "checkpoint", "sample", "state", "config", "tensorboard"} <= found


def test_real_stop_then_resume(ws, real):
    """Real engine: Stop (SIGINT) after the first checkpoint ends the job `stopped` with exit 0 and 'Job stopped';
    a run with `resume` set to it continues from that checkpoint to the end."""
    first = ws.jobs.submit_training(config(real, max_train_steps=400, save_every_n_steps=3))
    # past the step-3 save (not inside it: a stop while saving can leave a broken file, ENGINES.md B5)
    wait_for(lambda: ((first.progress.step or 0) >= 4 and any("demo_000000003" in a["path"] for a in first.artifacts))
             or first.status not in (JobStatus.QUEUED, JobStatus.STARTING, JobStatus.RUNNING), timeout=600)
    assert first.status is JobStatus.RUNNING, (first.error, first.log_tail(30))
    first.stop(grace=30)
    assert first.wait(120) is JobStatus.STOPPED
    assert first.exit_code == 0 and "Job stopped" in "\n".join(first.log_tail(50))
    assert not (first.run_dir / "output" / "demo" / "demo.safetensors").exists()
    second = ws.jobs.submit_training(config(real, max_train_steps=6, save_every_n_steps=3, resume=str(first.run_dir)))
    assert second.wait(600) is JobStatus.SUCCEEDED, (second.error, second.log_tail(40))
    log = second.log_path.read_text(errors="replace")
    resumed_at = int(log.split("Found step ")[1].split()[0])
    assert resumed_at >= 3 and second.progress.step == 6
    assert (first.run_dir / "output" / "demo" / "demo.safetensors").is_file()


def test_real_sd15_lora_run(ws, real):
    """Real engine: the SD 1.5 job lora-nb renders (arch sd1, ddpm) trains 4 steps at 64 px on the tiny SD 1.5 folder,
    with a checkpoint at 2 and the final LoRA (kohya-style keys, ss_base_model_version for SD 1.5)."""
    import lora_nb

    cfg = config(real, model_family="sd15", pretrained_model_name_or_path=str(real / "sd15-tiny"), max_train_steps=4,
                 save_every_n_steps=2)
    job = ws.jobs.submit_training(cfg)
    assert job.wait(600) is JobStatus.SUCCEEDED, (job.error, job.log_tail(40))
    assert job.progress.step == job.progress.total_steps == 4 and job.progress.loss is not None
    import yaml

    proc = yaml.safe_load((job.run_dir / "job.yaml").read_text())["config"]["process"][0]
    assert proc["model"]["arch"] == "sd1" and proc["train"]["noise_scheduler"] == "ddpm"
    log = job.log_path.read_text(errors="replace")
    assert "Error running job" not in log and "Traceback" not in log
    kinds = {(Path(a["path"]).name, a["kind"]) for a in job.artifacts}
    assert {("demo_000000002.safetensors", "checkpoint"), ("demo.safetensors", "lora")} <= kinds
    meta = lora_nb.lora.read_metadata(job.run_dir / "output" / "demo" / "demo.safetensors")
    assert meta["ss_output_name"] == "demo" and "sd" in meta.get("ss_base_model_version", "sd")


def test_real_save_and_sample_now(ws, real):
    """Real engine: the job runs as a diffusion_trainer watching the run's control.db; job.request_save() and
    job.request_sample() set its save_now / sample_now flags, and ai-toolkit's own DiffusionTrainer.end_step_hook saves a
    checkpoint and makes samples at steps no schedule asked for, then clears the flags."""
    import sqlite3

    cfg = config(real, max_train_steps=400, save_every_n_steps=400, sample_prompts=["a portrait"], sample_every_n_steps=400)
    job = ws.jobs.submit_training(cfg)
    try:
        wait_for(lambda: (job.progress.step or 0) >= 2 or job.status.is_final, timeout=600)
        assert job.status is JobStatus.RUNNING, (job.error, job.log_tail(30))
        assert job.control_reasons() == {"save": None, "sample": None}
        samples_before = sum(a["kind"] == "sample" for a in job.artifacts)      # the baseline samples (step 0)
        job.request_save()
        wait_for(lambda: any(a["kind"] == "checkpoint" for a in job.artifacts) or job.status.is_final, timeout=300)
        saved = [Path(a["path"]).name for a in job.artifacts if a["kind"] == "checkpoint"]
        assert saved, (job.error, job.log_tail(30))
        step = int(saved[0].rsplit("_", 1)[1].split(".")[0])
        assert 2 < step < 400
        job.request_sample()
        wait_for(lambda: sum(a["kind"] == "sample" for a in job.artifacts) > samples_before or job.status.is_final, timeout=300)
        assert sum(a["kind"] == "sample" for a in job.artifacts) > samples_before, job.log_tail(30)
        row = sqlite3.connect(job.run_dir / "control.db").execute("SELECT save_now, sample_now, status FROM Job").fetchone()
        assert row[:2] == (0, 0) and row[2] == "running"                  # cleared by the trainer; status written by it
        log = job.log_path.read_text(errors="replace")
        assert f"Saving at step {step}" in log and "Sampling at step" in log and "Using SQLite database at" in log
    finally:
        job.stop(grace=30)
    assert job.wait(120) is JobStatus.STOPPED and job.exit_code == 0
