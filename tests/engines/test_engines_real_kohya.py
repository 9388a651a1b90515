"""The REAL kohya sd-scripts trainer, end to end through lora-nb (opt-in: several minutes of CPU).

Set up with `bash scripts/kohya-cpu-setup.sh DIR` (a random full-size SD 1.5, sd-scripts at the pinned
commit, CPU torch), then run with LORA_NB_REAL_KOHYA_DIR=DIR (it holds sd-scripts/, venv/, sd15-random/, tok/ and data/img/5_alice). Skipped otherwise. What lora-nb renders
(train.toml, dataset.toml), how it launches (accelerate or python) and how it reads the output must be
accepted and understood: the job succeeds by lora-nb's verdict, the step total equals lora-nb's own
estimate and the engine's summary, the LoRA and the per-epoch checkpoint are found, and Stop stops it.
"""
from __future__ import annotations

import os
from pathlib import Path

import psutil
import pytest

from lora_nb import TrainingConfig
from lora_nb.config import steps
from lora_nb.progress.events import JobStatus
from support import wait_for

REAL = os.environ.get("LORA_NB_REAL_KOHYA_DIR")
pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400), pytest.mark.skipif(not REAL, reason="LORA_NB_REAL_KOHYA_DIR is not set (see scripts/kohya-cpu-setup.sh)")]


@pytest.fixture
def real(ws):
    k = Path(REAL)
    ws.settings.set("kohya_dir", str(k / "sd-scripts"))
    ws.settings.set("kohya_python", str(k / "venv" / "bin" / "python"))
    ds = ws.datasets.create("alice")
    ds.add_images(sorted(p for p in (k / "data" / "img" / "5_alice").iterdir() if p.suffix == ".png"), subset="5_alice")
    return k


def config(k: Path, **kw) -> TrainingConfig:
    base = dict(model_family="sd15", dataset="alice", pretrained_model_name_or_path=str(k / "sd15-random"), resolution="64",
                min_bucket_reso=64, max_bucket_reso=128, max_train_epochs=2, optimizer_type="AdamW", mixed_precision="no",
                save_precision="float", max_data_loader_n_workers=0, persistent_data_loader_workers=False, network_dim=4,
                network_alpha=1.0, cache_latents=False, cache_latents_to_disk=False, trigger_words=["alice"], output_name="real",
                engine_options={"tokenizer_cache_dir": str(k / "tok")})
    base.update(kw)
    return TrainingConfig(**base)


@pytest.mark.parametrize("launcher", ["python", "accelerate"])
def test_real_training_run(ws, real, launcher):
    ws.settings.set("kohya_launcher", launcher)
    cfg = config(real)
    job = ws.jobs.submit_training(cfg)
    assert job.wait(1800) is JobStatus.SUCCEEDED, (job.error, job.log_tail(40))
    log = job.log_path.read_text(errors="replace")
    assert "total optimization steps / 学習ステップ数: 40" in log and "model saved." in log
    assert job.progress.step == job.progress.total_steps == steps(cfg, ws).total_steps == 40
    kinds = {(a["kind"], Path(a["path"]).name) for a in job.artifacts}
    assert {("checkpoint", "real-000001.safetensors"), ("lora", "real.safetensors")} <= kinds
    assert "Traceback" not in log


def test_real_run_stops(ws, real):
    ws.settings.set("kohya_launcher", "accelerate")
    job = ws.jobs.submit_training(config(real, max_train_epochs=50))
    wait_for(lambda: (job.progress.step or 0) >= 2, timeout=900)
    pids = [p.pid for p in psutil.process_iter(["cmdline"]) if str(job.run_dir) in " ".join(p.info["cmdline"] or [])]
    job.stop(grace=20)
    assert job.wait(120) is JobStatus.STOPPED
    wait_for(lambda: not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in pids), timeout=30)
