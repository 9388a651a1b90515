"""Tagging a dataset as a job: real subprocess, real onnxruntime, real caption files; the model download
through huggingface_hub against a local fake Hub (HF_ENDPOINT), and offline mode."""
from __future__ import annotations

import sys

import pytest
from PIL import Image

from lora_nb import demo
from lora_nb.errors import ConfigError, TaggerError
from lora_nb.progress.events import JobStatus
from lora_nb.tagging.tiny import build_tiny_tagger
from support import wait_for

from fake_hub_files import FakeHub  # noqa: E402  (tests/ is on sys.path)


@pytest.fixture
def tagger(tmp_path):
    return build_tiny_tagger(tmp_path / "tagger", size=32)


def test_tag_dataset_writes_captions_and_can_be_undone(ws, tagger):
    ds = demo.make_dataset(ws, n=6, size=(64, 64), captions=False)
    first = ds.images()[0]
    ds.captions.set(first, "hand written")
    job = ds.tag(model=str(tagger), general_threshold=0.3, trigger_words=["lnbdemo"], blacklist=["monochrome"], batch_size=4)
    assert job.wait(120) is JobStatus.SUCCEEDED, job.error
    items = ds.images()
    assert all(i.caption.startswith("lnbdemo, ") for i in items)
    assert all("monochrome" not in i.caption for i in items)
    assert all(i.caption_path.read_bytes().endswith(b"\n") for i in items)     # kohya writes tags + "\n"
    assert (job.progress.step, job.progress.total_steps) == (6, 6)
    msgs = " ".join(job.log_tail(50))
    assert "tagged 6 images" in msgs
    result = ds.captions.undo()                                                  # one undo step for the whole job
    assert result.changed == 6
    assert ds.captions.get(first) == "hand written" and all(i.caption is None for i in ds.images()[1:])


def test_existing_captions_skip_and_append(ws, tagger):
    ds = demo.make_dataset(ws, n=4, size=(64, 64), captions=False)
    a, b = ds.images()[:2]
    ds.captions.set(a, "keep me")
    ds.captions.set(b, "mine, white background")
    job = ds.tag(model=str(tagger), general_threshold=0.0, existing="skip")
    assert job.wait(120) is JobStatus.SUCCEEDED
    assert ds.captions.get(a) == "keep me" and ds.captions.get(b) == "mine, white background"
    assert all(i.caption for i in ds.images()[2:])
    job = ds.tag(model=str(tagger), general_threshold=0.0, existing="append")
    assert job.wait(120) is JobStatus.SUCCEEDED
    tags = [t.strip() for t in ds.captions.get(b).split(",")]
    assert tags[:2] == ["mine", "white background"] and tags.count("white background") == 1 and len(tags) > 5


def test_broken_images_are_reported_not_fatal(ws, tagger):
    ds = demo.make_dataset(ws, n=3, size=(64, 64), captions=False)
    (ds.path / "10_lnbdemo" / "zz_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n....")
    job = ds.tag(model=str(tagger))
    assert job.wait(120) is JobStatus.SUCCEEDED
    assert "zz_broken.png is not a readable image" in " ".join(job.log_tail(50))
    assert not (ds.path / "10_lnbdemo" / "zz_broken.txt").exists()
    assert sum(1 for i in ds.images() if i.caption) == 3


def test_a_stopped_job_leaves_every_caption_whole(ws, tmp_path):
    tagger = build_tiny_tagger(tmp_path / "big", size=384, channels=32)       # slow enough to stop mid-way
    ds = ws.datasets.create("many")
    ds.add_images([(f"{i:03d}.png", _png(i)) for i in range(120)])
    job = ds.tag(model=str(tagger), general_threshold=0.0, batch_size=1, workers=1)
    wait_for(lambda: (job.progress.step or 0) >= 3, timeout=120)
    job.stop()
    assert job.wait(60) is JobStatus.STOPPED
    written = [i for i in ds.images() if i.caption_path.exists()]
    assert 0 < len(written) < 120
    for item in written:
        data = item.caption_path.read_bytes()
        assert data.endswith(b"\n") and data.count(b"\n") == 1 and len(data.split(b", ")) >= 20
    assert not list(ds.path.rglob("*.tmp"))


def _png(i: int) -> bytes:
    import io

    buf = io.BytesIO()
    Image.new("RGB", (96, 80), (i * 2 % 256, 90, 160)).save(buf, "PNG")
    return buf.getvalue()


def test_bad_requests_are_refused_before_queueing(ws, tagger, tmp_path):
    ds = demo.make_dataset(ws, n=2, size=(64, 64), captions=False)
    with pytest.raises(TaggerError, match="neither a known tagger"):
        ds.tag(model="not-a-tagger")
    with pytest.raises(TaggerError, match="has no model.onnx"):
        ds.tag(model=str(tmp_path))
    with pytest.raises(ConfigError, match="existing"):
        ds.tag(model=str(tagger), existing="replace")
    assert ws.jobs.list() == []


def test_download_from_the_hub_and_cache(ws, tmp_path, monkeypatch):
    folder = build_tiny_tagger(tmp_path / "src", size=32)
    files = {f"SmilingWolf/wd-vit-tagger-v3/{n}": (folder / n).read_bytes() for n in ("model.onnx", "selected_tags.csv")}
    ds = demo.make_dataset(ws, n=2, size=(64, 64), captions=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with FakeHub(files) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        job = ds.tag(model="wd-vit-tagger-v3")
        assert job.wait(120) is JobStatus.SUCCEEDED, job.error
        assert ("GET", "/SmilingWolf/wd-vit-tagger-v3/resolve/main/model.onnx") in hub.requests
    cached = list((tmp_path / "hf").rglob("model.onnx"))
    assert cached and cached[0].read_bytes() == files["SmilingWolf/wd-vit-tagger-v3/model.onnx"]
    # the Hub is gone now; offline mode uses the cache
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    job = ds.tag(model="wd-vit-tagger-v3", existing="overwrite")
    assert job.wait(120) is JobStatus.SUCCEEDED, job.error


def test_offline_without_cache_is_a_clear_failure(ws, tmp_path, monkeypatch):
    ds = demo.make_dataset(ws, n=2, size=(64, 64), captions=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    job = ds.tag(model="wd-swinv2-tagger-v3")
    assert job.wait(120) is JobStatus.FAILED
    assert "is not in the local cache and the Hugging Face Hub cannot be reached" in " ".join(job.log_tail(20))
    assert all(i.caption is None for i in ds.images())


def test_cli_tag(ws, tagger):
    import subprocess

    demo.make_dataset(ws, n=2, size=(64, 64), captions=False)
    out = subprocess.run([sys.executable, "-m", "lora_nb.cli", "-w", str(ws.root), "tag", "demo", "--model", str(tagger),
                          "--trigger", "abc", "--follow"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "tagged 2 images" in out.stdout
    assert all(i.caption.startswith("abc, ") for i in ws.datasets.get("demo").images())
    models = subprocess.run([sys.executable, "-m", "lora_nb.cli", "tag", "--models"], capture_output=True, text=True)
    assert "SmilingWolf/wd-eva02-large-tagger-v3" in models.stdout
