"""submit_training refuses a dataset the doctor finds blocking (undecodable image, non-UTF-8 caption), naming the
finding and the fix, and leaves no run folder and no job row; the fixes make the same config launch.

The trainer is the STAND-IN sd-scripts checkout (tests/engines/fake_sdscripts), as in test_launch.py.
"""
from __future__ import annotations

import io

import pytest

from lora_nb.config.model import Subset
from lora_nb.errors import ConfigError, DatasetBlocked
from test_launch import cfg_for  # the stand-in launch tests' config


def _truncated_jpeg() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.effect_noise((64, 64), 40).convert("RGB").save(buf, "JPEG")
    return buf.getvalue()[:300]


def _nothing_written(ws):
    assert list(ws.runs_dir.iterdir()) == [] and ws.jobs.list() == []
    assert ws.store.query("SELECT id FROM jobs") == []


def test_blocking_findings_refuse_the_launch_until_fixed(ws, dataset, model_file, standin_kohya, monkeypatch):
    sub = dataset.path / "5_alice"
    (sub / "broken.jpg").write_bytes(_truncated_jpeg())
    (sub / "broken.txt").write_bytes(b"alice, broken")
    (sub / "img0.txt").write_bytes("alice, café".encode("cp1252"))
    with pytest.raises(DatasetBlocked) as e:
        ws.jobs.submit_training(cfg_for(model_file))
    msg = str(e.value)
    assert msg.startswith("The run cannot start: dataset 'alice': 1 image cannot be decoded (5_alice/broken.jpg")
    assert "(1 more: caption_encoding)" in msg and "ds.fix(finding)" in msg
    assert isinstance(e.value, ConfigError) and [f.code for f in e.value.findings] == ["corrupt", "caption_encoding"]
    _nothing_written(ws)
    # one fix at a time: the refusal names what is left
    dataset.fix(e.value.findings[0])
    with pytest.raises(DatasetBlocked, match="1 caption is not UTF-8 .*5_alice/img0.png"):
        ws.jobs.submit_training(cfg_for(model_file))
    _nothing_written(ws)
    dataset.fix(dataset.doctor()[0])
    monkeypatch.setenv("LORA_NB_STANDIN_SPEED", "0.01")
    job = ws.jobs.submit_training(cfg_for(model_file))
    assert job.wait(timeout=120).value == "succeeded"
    assert all("broken" not in f["file"] for f in __import__("json").loads((job.run_dir / "manifest.json").read_text())["datasets"]["alice"])


def test_subsets_block_only_on_the_folders_they_use(ws, dataset, model_file, standin_kohya):
    other = dataset.path / "1_unused"
    other.mkdir()
    (other / "bad.jpg").write_bytes(_truncated_jpeg())
    subs = lambda *folders: [Subset(dataset="alice", folder=f) for f in folders]
    with pytest.raises(DatasetBlocked, match="1_unused/bad.jpg"):
        ws.jobs.submit_training(cfg_for(model_file, dataset=subs("5_alice", "1_unused")))
    _nothing_written(ws)
    from lora_nb.engines.launch import doctor_findings

    assert doctor_findings(ws, cfg_for(model_file, dataset=subs("5_alice"))) == []
    assert [f.code for f in doctor_findings(ws, cfg_for(model_file))] == ["corrupt"]
