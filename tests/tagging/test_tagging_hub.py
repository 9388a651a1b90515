"""Model files from the Hub through huggingface_hub (a real subprocess each time, because huggingface_hub
reads HF_HOME/HF_ENDPOINT/HF_HUB_OFFLINE when it is imported), against a local server speaking the
Hub's file API (tests/fake_hub_files.py); plus the job's options that change which files are tagged
(recursive) and its per-batch progress (images/s, ETA). Real onnxruntime, real caption files."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from PIL import Image

from fake_hub_files import FakeHub  # noqa: E402  (tests/ is on sys.path)
from lora_nb.progress.events import JobStatus
from lora_nb.tagging.tiny import build_tiny_tagger

PROBE = """
import json, sys
from lora_nb.errors import TaggerError
from lora_nb.tagging.registry import model_files
try:
    onnx, csv = model_files(sys.argv[1])
    print(json.dumps({"onnx": str(onnx), "csv": str(csv)}))
except TaggerError as e:
    print(json.dumps({"error": str(e)}))
"""


def _model_files(model: str, **env: str) -> dict:
    full = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    full.update(env)
    out = subprocess.run([sys.executable, "-c", PROBE, model], capture_output=True, text=True, timeout=120, env=full)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_download_lands_in_hf_home_and_is_fetched_once(tmp_path):
    src = build_tiny_tagger(tmp_path / "src", size=32)
    files = {f"SmilingWolf/wd-convnext-tagger-v3/{n}": (src / n).read_bytes() for n in ("model.onnx", "selected_tags.csv")}
    hf_home = tmp_path / "hf"
    with FakeHub(files) as hub:
        got = _model_files("wd-convnext-tagger-v3", HF_HOME=str(hf_home), HF_ENDPOINT=hub.url)
        gets = [p for m, p in hub.requests if m == "GET" and "/resolve/" in p]
        assert sorted(gets) == ["/SmilingWolf/wd-convnext-tagger-v3/resolve/main/model.onnx",
                                "/SmilingWolf/wd-convnext-tagger-v3/resolve/main/selected_tags.csv"]
    assert Path(got["onnx"]).is_relative_to(hf_home) and Path(got["csv"]).is_relative_to(hf_home)
    assert Path(got["onnx"]).read_bytes() == (src / "model.onnx").read_bytes()
    # the Hub is gone: offline mode answers from the cache, nothing is downloaded again
    again = _model_files("wd-convnext-tagger-v3", HF_HOME=str(hf_home), HF_HUB_OFFLINE="1")
    assert again == got


def test_a_repo_without_the_files_is_a_clear_error(tmp_path):
    with FakeHub({}) as hub:
        got = _model_files("someone/not-a-tagger", HF_HOME=str(tmp_path / "hf"), HF_ENDPOINT=hub.url)
    assert got["error"].startswith("someone/not-a-tagger has no model.onnx on the Hugging Face Hub.")
    assert "Fix:" in got["error"] or "SmilingWolf" in got["error"]
    assert not list((tmp_path / "hf").rglob("model.onnx"))


def test_unreachable_hub_without_cache_is_a_clear_error(tmp_path):
    got = _model_files("wd-vit-tagger-v3", HF_HOME=str(tmp_path / "hf"), HF_ENDPOINT=f"http://127.0.0.1:{_closed_port()}")
    assert "is not in the local cache and the Hugging Face Hub cannot be reached" in got["error"]


def test_offline_without_cache_is_a_clear_error(tmp_path):
    got = _model_files("SmilingWolf/wd-v1-4-moat-tagger-v2", HF_HOME=str(tmp_path / "hf"), HF_HUB_OFFLINE="1")
    assert got["error"].startswith("The tagger SmilingWolf/wd-v1-4-moat-tagger-v2 is not in the local cache")


def test_not_recursive_tags_only_the_top_folder(ws, tmp_path):
    tagger = build_tiny_tagger(tmp_path / "tagger", size=32)
    ds = ws.datasets.create("mixed")
    (ds.path / "5_sub").mkdir()
    for rel in ("top1.png", "top2.png", "5_sub/deep.png"):
        Image.new("RGB", (40, 30), (10, 200, 30)).save(ds.path / rel)
    job = ds.tag(model=str(tagger), recursive=False, general_threshold=0.0)
    assert job.wait(120) is JobStatus.SUCCEEDED, job.error
    assert (ds.path / "top1.txt").is_file() and (ds.path / "top2.txt").is_file()
    assert not (ds.path / "5_sub" / "deep.txt").exists()
    job = ds.tag(model=str(tagger), general_threshold=0.0)             # recursive is the default
    assert job.wait(120) is JobStatus.SUCCEEDED, job.error
    assert (ds.path / "5_sub" / "deep.txt").read_text().count(", ") >= 20


def test_progress_per_batch_with_rate_and_eta(ws, tmp_path):
    tagger = build_tiny_tagger(tmp_path / "tagger", size=32)
    ds = ws.datasets.create("prog")
    for i in range(7):
        Image.new("RGB", (40, 30), (i * 30, 20, 30)).save(ds.path / f"{i}.png")
    seen: list = []
    job = ds.tag(model=str(tagger), batch_size=3)
    job.subscribe(lambda ev: seen.append(ev))
    assert job.wait(120) is JobStatus.SUCCEEDED, job.error
    assert (job.progress.step, job.progress.total_steps, job.progress.rate_unit) == (7, 7, "img/s")
    assert job.progress.rate and job.progress.rate > 0
    lines = [json.loads(line.split("@@lora-nb ", 1)[1]) for line in job.log_path.read_text().splitlines() if "@@lora-nb " in line]
    steps = [e["step"] for e in lines if e.get("event") == "progress" and e.get("phase") == "tagging"]
    assert steps[:4] == [0, 3, 6, 7]                                    # one event per batch of 3
    etas = [e.get("eta") for e in lines if e.get("event") == "progress" and e.get("phase") == "tagging" and e["step"] in (3, 6)]
    assert all(isinstance(x, (int, float)) and x >= 0 for x in etas) and len(etas) == 2


def test_the_hub_token_reaches_the_job_only_through_its_environment(ws, tmp_path, monkeypatch):
    token = "hf_lnbTestSecret0123456789"
    src = build_tiny_tagger(tmp_path / "src", size=32)
    files = {f"SmilingWolf/wd-vit-tagger-v3/{n}": (src / n).read_bytes() for n in ("model.onnx", "selected_tags.csv")}
    ds = ws.datasets.create("secret")
    Image.new("RGB", (40, 30), (10, 20, 30)).save(ds.path / "a.png")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_TOKEN", token)
    with FakeHub(files) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        job = ds.tag(model="wd-vit-tagger-v3")
        assert job.wait(120) is JobStatus.SUCCEEDED, job.error
    assert (ds.path / "a.txt").is_file()
    leaked = [p for p in Path(ws.root).rglob("*") if p.is_file() and token.encode() in p.read_bytes()]
    assert leaked == []
    assert token not in json.dumps(job.meta) and all(token not in line for line in job.log_tail(200))
