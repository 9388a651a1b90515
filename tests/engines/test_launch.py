"""submit_training end to end: render, launch through the real job system, parse, judge.

The trainer is a STAND-IN (tests/engines/fake_sdscripts/train_network.py) that replays the
recorded console output of a real sd-scripts run with its timing and writes the files it wrote.
"""
from __future__ import annotations

import json
import tomllib

import pytest

from lora_nb.config import TrainingConfig
from lora_nb.errors import ConfigError, EngineError
from lora_nb.progress.events import EventKind, JobStatus


def cfg_for(model_file, **kw):
    base = dict(dataset="alice", pretrained_model_name_or_path=str(model_file), resolution="64", min_bucket_reso=64,
                max_bucket_reso=128, train_batch_size=1, max_train_epochs=2, output_name="demo", mixed_precision="no",
                optimizer_type="AdamW", trigger_words=["alice"])
    base.update(kw)
    return TrainingConfig(**base)


def test_engine_missing_is_refused_with_the_fix(ws, dataset, model_file):
    with pytest.raises(EngineError, match="sd-scripts was not found .* Run .lora-nb engines install kohya."):
        ws.jobs.submit_training(cfg_for(model_file))
    assert list(ws.runs_dir.iterdir()) == []


def test_preflight_refusals_leave_nothing(ws, dataset, model_file, standin_kohya):
    with pytest.raises(ConfigError, match="trigger word 'bob' is missing from 4 captions"):
        ws.jobs.submit_training(cfg_for(model_file, trigger_words=["bob"]))
    item = dataset.images()[0]
    item.caption_path.unlink()
    with pytest.raises(ConfigError, match="1 of 4 images in 'alice' have no caption"):
        ws.jobs.submit_training(cfg_for(model_file))
    dataset.captions.set(item, "alice, back again")
    with pytest.raises(ConfigError, match="does not exist"):
        ws.jobs.submit_training(cfg_for(model_file.parent / "nope.safetensors", trigger_words=[]))
    ws.datasets.create("empty")
    with pytest.raises(ConfigError, match="has no images"):
        ws.jobs.submit_training(cfg_for(model_file, dataset="empty"))
    assert list(ws.runs_dir.iterdir()) == [] and ws.jobs.list() == []


def test_full_run_on_the_standin(ws, dataset, model_file, standin_kohya, monkeypatch):
    monkeypatch.setenv("LORA_NB_STANDIN_SPEED", "0.02")
    job = ws.jobs.submit_training(cfg_for(model_file))
    events = []
    job.subscribe(events.extend)
    assert job.wait(120) is JobStatus.SUCCEEDED, job.error
    run = job.run_dir
    train = tomllib.loads((run / "train.toml").read_text())
    assert train["dataset"]["dataset_config"] == str(run / "dataset.toml")
    ds_toml = tomllib.loads((run / "dataset.toml").read_text())
    assert ds_toml["datasets"][0]["subsets"] == [{"image_dir": str(dataset.path / "5_alice"), "num_repeats": 5, "class_tokens": "alice"}]
    manifest = json.loads((run / "manifest.json").read_text())
    assert len(manifest["datasets"]["alice"]) == 4 and all(len(f["caption_sha256"]) == 64 for f in manifest["datasets"]["alice"])
    assert json.loads((run / "config.json").read_text())["network_dim"] == 16
    p = job.progress
    assert (p.step, p.total_steps, p.epoch, p.total_epochs) == (40, 40, 2, 2)
    assert p.loss == pytest.approx(1.07)
    assert job.meta["expected_steps"] == 40  # our calculator agreed with the engine
    assert job.meta["inputs"] == [str(dataset.path)]   # what a Ray job in 'ship' mode takes to its node (ray_ship)
    arts = {(a["kind"], a["path"]) for a in job.artifacts}
    assert ("lora", str(run / "output" / "demo.safetensors")) in arts
    assert ("checkpoint", str(run / "output" / "demo-000001.safetensors")) in arts
    assert (run / "output" / "demo.safetensors").is_file()
    import time
    time.sleep(0.5)
    steps_seen = [e.data["step"] for e in events if e.kind is EventKind.PROGRESS and "step" in e.data]
    assert steps_seen and steps_seen == sorted(steps_seen)


def test_exit_zero_without_a_model_fails_with_the_hint(ws, dataset, model_file, standin_kohya, monkeypatch):
    monkeypatch.setenv("LORA_NB_STANDIN_CAPTURE", "run5")
    monkeypatch.setenv("LORA_NB_STANDIN_SPEED", "0.01")
    job = ws.jobs.submit_training(cfg_for(model_file))
    assert job.wait(60) is JobStatus.FAILED
    assert job.exit_code == 0
    assert "never printed 'model saved.'" in job.error and "found no images" in job.error


def test_stop_mid_run(ws, dataset, model_file, standin_kohya, monkeypatch):
    monkeypatch.setenv("LORA_NB_STANDIN_SPEED", "0.2")
    job = ws.jobs.submit_training(cfg_for(model_file))
    import time

    deadline = time.monotonic() + 60
    while (job.progress.step or 0) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert job.stop(grace=2) is JobStatus.STOPPED


def test_a_multi_gpu_run_holds_one_slot_per_process(ws, dataset, model_file, standin_kohya, monkeypatch):
    """num_processes=2 makes a job that holds two GPU slots (on two devices) and is pinned to both.

    The stand-in checkout's Python has no accelerate; the module check is waived so the launch line is
    queued as rendered (the job then fails at once: how it ends is not what this test is about)."""
    from lora_nb.engines.kohya import KohyaEngine
    from lora_nb.errors import JobError

    monkeypatch.setattr(KohyaEngine, "modules", lambda self: ())
    ws.settings.set("kohya_launcher", "accelerate")
    with pytest.raises(JobError, match="needs 2 GPUs but this workspace's slots are on 1 device"):
        ws.jobs.submit_training(cfg_for(model_file, num_processes=2))
    assert list(ws.runs_dir.iterdir()) == [] and ws.jobs.list() == []
    ws.jobs.set_gpu_slots([0, 1])
    job = ws.jobs.submit_training(cfg_for(model_file, num_processes=2))
    job.wait(120)   # the stand-in checkout has no accelerate: how it ends does not matter here
    snap = job.snapshot()
    assert (snap.gpus, snap.slots, snap.devices) == (2, [0, 1], [0, 1])
    assert snap.argv[snap.argv.index("--num_processes") + 1] == "2" and "--multi_gpu" in snap.argv


def test_aitoolkit_refuses_more_than_one_process(ws, dataset, standin_aitoolkit, tmp_path):
    from lora_nb.engines import get_engine

    cfg = TrainingConfig(engine="ai-toolkit", model_family="flux", dataset="alice", pretrained_model_name_or_path=str(tmp_path),
                         output_name="x", num_processes=2)
    with pytest.raises(EngineError, match="trains on one GPU, so num_processes=2 cannot run"):
        get_engine("ai-toolkit", ws).prepare(cfg, tmp_path / "run")
