"""Mid-run control (save now / sample now): the flag store ai-toolkit's ``diffusion_trainer`` polls, the Job API,
and the refusal for sd-scripts, which has no such channel.

Whole runs go through the real job system on the STAND-INs (tests/engines/fake_aitoolkit/run.py polls the SQLite
Job row after every step exactly as DiffusionTrainer.end_step_hook does at 27a03a9; tests/engines/fake_sdscripts).
The REAL ai-toolkit reading the same flags: tests/engines/test_engines_real_aitoolkit.py::test_real_save_and_sample_now.
"""
from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lora_nb.config import TrainingConfig
from lora_nb.engines.aitoolkit import CONTROL_ROW, create_control_db
from lora_nb.errors import JobError
from lora_nb.jobs import control
from lora_nb.progress.events import JobStatus
from support import wait_for


def aitk_cfg(**kw):
    base = dict(engine="ai-toolkit", model_family="flux", dataset="alice", pretrained_model_name_or_path="black-forest-labs/FLUX.1-dev",
                output_name="demo", resolution="512", max_bucket_reso=1024, max_train_epochs=None, max_train_steps=200,
                save_every_n_steps=1000, optimizer_type="AdamW")
    base.update(kw)
    return TrainingConfig(**base)


def flags(job) -> tuple[int, int]:
    conn = sqlite3.connect(job.run_dir / "control.db")
    try:
        return conn.execute("SELECT save_now, sample_now FROM Job WHERE id=?", (CONTROL_ROW,)).fetchone()
    finally:
        conn.close()


# -- the core, no engine ---------------------------------------------------------------------------------------
def test_request_sets_the_flag_in_the_row(tmp_path):
    """control.request sets exactly the named column of the run's row to 1."""
    db = create_control_db(tmp_path / "control.db")
    meta = {"controls": {"save": {"flag_db": str(db), "table": "Job", "row": CONTROL_ROW, "column": "save_now"}}}
    assert control.reason(meta, "save") is None
    control.request(meta, "save")
    assert sqlite3.connect(db).execute("SELECT save_now, sample_now, stop FROM Job").fetchone() == (1, 0, 0)


def test_request_refuses_with_the_engines_reason(tmp_path):
    """An engine without the channel, an old run and an unknown action each give one clear JobError."""
    with pytest.raises(JobError, match="Cannot save a checkpoint now: sd-scripts cannot"):
        control.request({"controls": {"save": {"unavailable": "sd-scripts cannot do it."}}}, "save")
    with pytest.raises(JobError, match="started without mid-run control"):
        control.request({}, "sample")
    with pytest.raises(JobError, match="no mid-run action 'pause'"):
        control.reason({}, "pause")
    gone = {"controls": {"save": {"flag_db": str(tmp_path / "no" / "control.db"), "row": "x", "column": "save_now"}}}
    with pytest.raises(JobError, match="Could not set the save_now flag"):
        control.request(gone, "save")


def test_prepare_renders_a_diffusion_trainer_watching_our_store(ws, dataset):
    """ai-toolkit: the job is a diffusion_trainer whose sqlite_db_path is the run's control.db, AITK_JOB_ID its row."""
    from lora_nb.engines import get_engine

    ws.settings.set("aitoolkit_dir", str(ws.root))
    run_dir = ws.runs_dir / "manual"
    run_dir.mkdir()
    plan = get_engine("ai-toolkit", ws).prepare(aitk_cfg(), run_dir)
    proc = yaml.safe_load(plan.files["job"].read_text())["config"]["process"][0]
    assert proc["type"] == "diffusion_trainer" and proc["sqlite_db_path"] == str(run_dir / "control.db")
    assert plan.env["AITK_JOB_ID"] == CONTROL_ROW
    row = sqlite3.connect(run_dir / "control.db").execute("SELECT status, save_now, sample_now, stop, return_to_queue FROM Job WHERE id=?",
                                                          (CONTROL_ROW,)).fetchone()
    assert row == ("running", 0, 0, 0, 0)
    assert plan.controls["save"]["column"] == "save_now"
    assert "no sample prompts" in plan.controls["sample"]["unavailable"]      # sample() would crash without a sample section


# -- whole runs on the stand-ins -------------------------------------------------------------------------------
def test_save_now_and_sample_now_on_a_running_aitoolkit_job(ws, dataset, standin_aitoolkit, monkeypatch):
    """STAND-IN through the real job system: save now writes a checkpoint at an unscheduled step, sample now samples."""
    monkeypatch.setenv("FAKE_AITK_STEP_SECONDS", "0.2")
    job = ws.jobs.submit_training(aitk_cfg(sample_prompts=["a portrait"], sample_every_n_steps=1000))
    wait_for(lambda: (job.progress.step or 0) >= 2, timeout=60)
    assert job.control_reasons() == {"save": None, "sample": None}
    job.request_save()
    job.request_sample()
    assert flags(job) != (0, 0)
    wait_for(lambda: any(a["kind"] == "checkpoint" for a in job.artifacts), timeout=30)
    wait_for(lambda: flags(job) == (0, 0), timeout=30)   # the trainer cleared both flags
    saved = [Path(a["path"]).name for a in job.artifacts if a["kind"] == "checkpoint"]
    step = int(saved[0].split("_")[1].split(".")[0])
    assert 2 < step < 200                                # not a scheduled save (save_every is the whole run)
    wait_for(lambda: any(a["kind"] == "sample" for a in job.artifacts), timeout=30)
    log = "\n".join(job.log_tail(400))
    assert f"Saving at step {step}" in log and "Sampling at step" in log
    samples = lambda: [a for a in job.artifacts if a["kind"] == "sample"]   # noqa: E731
    before = len(samples())
    cli = subprocess.run([sys.executable, "-m", "lora_nb.cli", "jobs", "sample-now", job.id, "-w", str(ws.root)],
                         capture_output=True, text=True, timeout=60)   # the same request from the command line
    assert cli.returncode == 0 and "asked to make samples" in cli.stdout, cli.stderr
    wait_for(lambda: len(samples()) > before, timeout=30, what="samples made on the CLI's request")
    job.stop()
    assert job.wait(30) is JobStatus.STOPPED
    assert job.control_reasons()["save"] == "The job is stopped, not running."
    with pytest.raises(JobError, match="is stopped, so it cannot save"):
        job.request_save()


def test_kohya_job_refuses_with_the_reason(ws, dataset, model_file, standin_kohya, monkeypatch):
    """STAND-IN sd-scripts: no request channel, so both requests raise the reason and nothing else happens."""
    monkeypatch.setenv("LORA_NB_STANDIN_SPEED", "0.5")      # replay the recorded run slowly enough to catch it running
    cfg = TrainingConfig(model_family="sd15", dataset="alice", pretrained_model_name_or_path=str(model_file), output_name="demo")
    job = ws.jobs.submit_training(cfg)
    try:
        wait_for(lambda: job.status is JobStatus.RUNNING, timeout=60)
        reasons = job.control_reasons()
        assert reasons["save"] and reasons["save"].startswith("sd-scripts cannot save or sample on request")
        with pytest.raises(JobError, match="sd-scripts cannot save or sample on request"):
            job.request_save()
        with pytest.raises(JobError, match="sd-scripts cannot"):
            job.request_sample()
        cli = subprocess.run([sys.executable, "-m", "lora_nb.cli", "-w", str(ws.root), "jobs", "save-now", job.id],
                             capture_output=True, text=True, timeout=60)
        assert cli.returncode == 1 and "sd-scripts cannot save or sample on request" in cli.stderr and "Traceback" not in cli.stderr
    finally:
        job.stop()
