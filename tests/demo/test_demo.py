"""lora_nb.demo: the generated dataset and the CPU stand-in run (a real job, a real safetensors LoRA)."""
from __future__ import annotations

import pytest

from lora_nb import demo
from lora_nb.errors import LoraNbError
from lora_nb.progress.events import JobStatus
from support import wait_for


def test_make_dataset_has_captioned_images_in_a_repeats_folder(ws):
    ds = demo.make_dataset(ws, n=7, size=(64, 64))
    items = ds.images()
    assert len(items) == 7
    assert {i.path.parent.name for i in items} == {"10_lnbdemo"}
    assert all(i.caption.startswith("lnbdemo, ") for i in items)
    assert {(i.width, i.height) for i in items} >= {(64, 64), (96, 64), (64, 96)}   # varied for bucketing
    bare = demo.make_dataset(ws, name="bare", n=3, size=(64, 64), captions=False)
    assert all(i.caption is None for i in bare.images())
    with pytest.raises(LoraNbError):
        demo.make_dataset(ws, n=2)                   # 'demo' exists: refused, not overwritten
    assert len(ws.datasets.get("demo").images()) == 7


def test_demo_run_writes_a_real_lora(ws):
    from safetensors import safe_open

    demo.make_dataset(ws, n=4, size=(64, 64))
    job = demo.submit_demo_run(ws, epochs=2, steps_per_epoch=3, seconds_per_step=0.01)
    assert job.wait(60) is JobStatus.SUCCEEDED, job.error
    p = job.progress
    assert (p.step, p.total_steps, p.epoch, p.total_epochs) == (6, 6, 2, 2) and 0 < p.loss < 1
    arts = {a["kind"]: a["path"] for a in job.artifacts}
    assert arts["lora"].endswith("lnbdemo.safetensors") and arts["checkpoint"].endswith("lnbdemo-000001.safetensors")
    with safe_open(arts["lora"], "np") as f:
        keys = set(f.keys())
        meta = f.metadata()
        assert f.get_tensor("lora_unet_down_blocks_0_resnets_0_conv1.lora_down.weight").shape == (4, 320, 3, 3)
    assert "lora_te_text_model_encoder_layers_0_self_attn_q_proj.alpha" in keys
    assert meta["ss_network_dim"] == "4" and "not a trained model" in meta["ss_training_comment"]
    assert '"lnbdemo": 4' in meta["ss_tag_frequency"]


def test_demo_run_stops(ws):
    demo.make_dataset(ws, n=2, size=(64, 64))
    job = demo.submit_demo_run(ws, epochs=50, steps_per_epoch=10, seconds_per_step=0.2)
    wait_for(lambda: (job.progress.step or 0) >= 2, timeout=30)
    job.stop()
    assert job.wait(30) is JobStatus.STOPPED
    assert not (job.run_dir / "output" / "lnbdemo.safetensors").exists()


def test_demo_run_needs_the_dataset(ws):
    with pytest.raises(LoraNbError, match="nope"):
        demo.submit_demo_run(ws, dataset="nope")
    assert ws.jobs.list() == []


def test_start_demo_tags_then_runs_and_never_overwrites(ws):
    seen = []
    result = demo.start_demo(ws, n=4, size=(64, 64), epochs=1, steps_per_epoch=2, seconds_per_step=0.01, on_job=seen.append)
    assert result.dataset.name == "demo" and result.tagging.status is JobStatus.SUCCEEDED and seen == [result.tagging, result.run]
    assert all(i.caption.startswith("lnbdemo, ") for i in result.dataset.images())
    assert result.run.wait(60) is JobStatus.SUCCEEDED
    assert demo.free_name(ws) == "demo-2"


def test_lora_nb_demo_command(ws, capsys):
    from lora_nb.cli import main

    rc = main(["-w", str(ws.root), "demo", "--images", "4", "--size", "64", "--epochs", "1", "--steps-per-epoch", "3",
               "--seconds-per-step", "0.01"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "Tagging 'demo' with the local tagger" in out and "succeeded]" in out and "@@lora-nb" not in out
    runs = [j for j in ws.jobs.list() if j.meta.get("demo")]
    assert len(runs) == 1 and runs[0].status is JobStatus.SUCCEEDED
    assert next(j for j in ws.jobs.list() if j.name == "tag demo").status is JobStatus.SUCCEEDED
    assert all(i.caption.startswith("lnbdemo, ") for i in ws.datasets.get("demo").images())
    rc = main(["-w", str(ws.root), "demo", "--images", "2", "--size", "64", "--no-follow"])
    assert rc == 0 and "lora-nb jobs logs -f" in capsys.readouterr().out and "demo-2" in ws.datasets
    next(j for j in ws.jobs.list() if j.meta.get("demo") and j.id != runs[0].id).stop(grace=2)
