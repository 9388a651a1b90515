"""Model library: family and kind from real safetensors headers, diffusers folders, and downloads as jobs
against local HTTP servers (a Civitai-like API with resumable, checksummed files; the Hub file API)."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from fake_hub_files import FakeHub
from lora_nb.errors import InvalidInput, InvalidName
from lora_nb.progress.events import JobStatus
from lora_nb.models.fetch import fetch
from lora_nb.models.sources import parse_source


def st(path: Path, keys: dict[str, tuple[int, ...]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: np.zeros(s, np.float16) for k, s in keys.items()}, str(path))
    return path


def test_list_detects_kind_and_family(ws):
    m = ws.models_dir
    st(m / "sd15.safetensors", {"model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": (320, 768),
                                "first_stage_model.decoder.conv_in.weight": (4, 4), "cond_stage_model.transformer.x": (1,)})
    st(m / "sd21.safetensors", {"model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": (320, 1024),
                                "first_stage_model.decoder.conv_in.weight": (4, 4)})
    st(m / "sdxl.safetensors", {"model.diffusion_model.label_emb.0.0.weight": (4, 4), "conditioner.embedders.1.model.x": (1,)})
    st(m / "flux1-dev.safetensors", {"double_blocks.0.img_attn.qkv.weight": (4, 4), "single_blocks.0.linear1.weight": (4, 4)})
    st(m / "sd3.5.safetensors", {"model.diffusion_model.joint_blocks.0.x_block.attn.qkv.weight": (4, 4)})
    st(m / "vae" / "ae.safetensors", {"encoder.down.0.block.0.conv1.weight": (4, 4), "decoder.up.0.block.0.conv1.weight": (4, 4)})
    st(m / "clip_l.safetensors", {"text_model.encoder.layers.0.mlp.fc1.weight": (4, 4)})
    st(m / "t5xxl.safetensors", {"encoder.block.0.layer.0.SelfAttention.q.weight": (4, 4)})
    st(m / "a_lora.safetensors", {"lora_unet_x.lora_down.weight": (2, 4), "lora_unet_x.lora_up.weight": (4, 2)})
    (m / "broken.safetensors").write_bytes(b"\x00\x01")
    d = m / "sdxl-diffusers"
    (d / "unet").mkdir(parents=True)
    (d / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionXLPipeline"}))
    st(d / "unet" / "diffusion_pytorch_model.safetensors", {"down_blocks.0.x": (2,)})
    got = {e.name: (e.kind, e.family) for e in ws.models.list()}
    assert got == {"sd15.safetensors": ("checkpoint", "sd15"), "sd21.safetensors": ("checkpoint", "sd2"),
                   "sdxl.safetensors": ("checkpoint", "sdxl"), "flux1-dev.safetensors": ("checkpoint", "flux"),
                   "sd3.5.safetensors": ("unet", "sd3"), "ae.safetensors": ("vae", "unknown"),
                   "clip_l.safetensors": ("text_encoder", "unknown"), "t5xxl.safetensors": ("text_encoder", "unknown"),
                   "sdxl-diffusers": ("diffusers", "sdxl")}


def test_sources():
    assert parse_source("civitai:v456").version_id == 456
    assert parse_source("https://civitai.com/api/download/models/789").version_id == 789
    assert parse_source("stabilityai/sdxl-vae", filename="sdxl_vae.safetensors").repo_id == "stabilityai/sdxl-vae"
    for bad in ("ftp://x/y", "civitai:abc", "hf:onlyone"):
        with pytest.raises(InvalidInput):
            parse_source(bad)


class Files(ThreadingHTTPServer):
    """Serves files with Range support; can cut the first response short; answers a Civitai-like API."""

    def __init__(self, files: dict[str, bytes], api: dict[str, dict], cut_first: int | None = None, token: str | None = None,
                 redirects: dict[str, str] | None = None):
        self.files, self.api, self.cut_first, self.token, self.redirects = files, api, cut_first, token, redirects or {}
        self.requests: list[tuple[str, str | None]] = []
        self.auth: list[str | None] = []            # the Authorization header of every request
        super().__init__(("127.0.0.1", 0), _Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        threading.Thread(target=self.serve_forever, daemon=True).start()


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_GET(self):
        srv: Files = self.server
        path = self.path.split("?")[0]
        srv.requests.append((path, self.headers.get("Range")))
        srv.auth.append(self.headers.get("Authorization"))
        if path in srv.redirects:                   # like Civitai: a redirect to signed storage on another host
            self.send_response(307)
            self.send_header("Location", srv.redirects[path])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if srv.token and self.headers.get("Authorization") != f"Bearer {srv.token}":
            self.send_response(401)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if path in srv.api:
            body = json.dumps(srv.api[path]).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        data = srv.files.get(path)
        if data is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        start = 0
        rng = self.headers.get("Range")
        if rng:
            start = int(rng.split("=")[1].split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if srv.cut_first is not None:
            cut, srv.cut_first = srv.cut_first, None
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.connection.shutdown(2)
            return
        self.wfile.write(body)


BLOB = bytes(range(256)) * 8192            # 2 MiB


def civitai_api(url: str, sha: str) -> dict[str, dict]:
    version = {"id": 456, "files": [{"name": "style.safetensors", "primary": True, "sizeKB": len(BLOB) / 1024,
                                     "downloadUrl": f"{url}/api/download/models/456", "hashes": {"SHA256": sha.upper()}}]}
    return {"/api/v1/model-versions/456": version, "/api/v1/models/123": {"modelVersions": [version]}}


def test_fetch_resumes_an_interrupted_download(tmp_path):
    srv = Files({"/f.bin": BLOB}, {}, cut_first=700_000)
    dest = tmp_path / "f.bin"
    with pytest.raises(Exception, match="broke off"):
        fetch(f"{srv.url}/f.bin", dest, sha256=hashlib.sha256(BLOB).hexdigest())
    part = tmp_path / "f.bin.part"
    assert part.stat().st_size == 700_000 and not dest.exists()
    fetch(f"{srv.url}/f.bin", dest, sha256=hashlib.sha256(BLOB).hexdigest())
    assert dest.read_bytes() == BLOB and not part.exists()
    assert srv.requests[-1] == ("/f.bin", "bytes=700000-")
    srv.shutdown()


def test_fetch_deletes_a_file_with_the_wrong_checksum(tmp_path):
    srv = Files({"/f.bin": BLOB}, {})
    with pytest.raises(Exception, match="does not match its published SHA256"):
        fetch(f"{srv.url}/f.bin", tmp_path / "f.bin", sha256="0" * 64)
    assert list(tmp_path.iterdir()) == []
    srv.shutdown()


def test_civitai_download_job(ws, monkeypatch):
    sha = hashlib.sha256(BLOB).hexdigest()
    srv = Files({"/api/download/models/456": BLOB}, {}, token="civitai-token-123")
    srv.api.update(civitai_api(srv.url, sha))
    monkeypatch.setenv("LORA_NB_CIVITAI_API", f"{srv.url}/api/v1")
    monkeypatch.delenv("CIVITAI_TOKEN", raising=False)
    job = ws.models.download("https://civitai.com/models/123/some-style")
    assert job.wait(60) is JobStatus.FAILED
    assert "HTTP 401" in " ".join(job.log_tail(20)) and "CIVITAI_TOKEN" in " ".join(job.log_tail(20))
    monkeypatch.setenv("CIVITAI_TOKEN", "civitai-token-123")
    job = ws.models.download("civitai:v456", subfolder="loras")
    assert job.wait(60) is JobStatus.SUCCEEDED, job.log_tail(20)
    out = ws.models_dir / "loras" / "style.safetensors"
    assert out.read_bytes() == BLOB and [a["path"] for a in job.artifacts] == [str(out)]
    assert "civitai-token-123" not in (ws.root / "lora_nb.db").read_bytes().decode("latin-1")
    assert not any("civitai-token-123" in p.read_text(errors="replace") for p in job.run_dir.rglob("*") if p.is_file())
    srv.shutdown()


def test_token_is_not_forwarded_to_another_host_on_redirect(ws, monkeypatch):
    """Civitai redirects downloads to signed storage URLs: the token must stay with Civitai."""
    sha = hashlib.sha256(BLOB).hexdigest()
    storage = Files({"/signed/style.safetensors": BLOB}, {}, cut_first=300_000)
    api = Files({}, {}, token="civitai-token-123", redirects={"/api/download/models/456": f"{storage.url}/signed/style.safetensors"})
    api.api.update(civitai_api(api.url, sha))
    monkeypatch.setenv("LORA_NB_CIVITAI_API", f"{api.url}/api/v1")
    monkeypatch.setenv("CIVITAI_TOKEN", "civitai-token-123")
    job = ws.models.download("civitai:v456")
    assert job.wait(60) is JobStatus.FAILED                    # the storage server cut the first answer short
    job = ws.models.download("civitai:v456")                    # again: it resumes through the redirect
    assert job.wait(60) is JobStatus.SUCCEEDED, job.log_tail(20)
    assert (ws.models_dir / "style.safetensors").read_bytes() == BLOB
    assert set(api.auth) == {"Bearer civitai-token-123"} and storage.auth == [None, None]
    assert storage.requests == [("/signed/style.safetensors", None), ("/signed/style.safetensors", "bytes=300000-")]
    api.shutdown()
    storage.shutdown()


def test_hub_download_job(ws, tmp_path, monkeypatch):
    with FakeHub({"stabilityai/sdxl-vae/sdxl_vae.safetensors": BLOB}) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
        job = ws.models.download("hf:stabilityai/sdxl-vae/sdxl_vae.safetensors", subfolder="vae")
        assert job.wait(60) is JobStatus.SUCCEEDED, job.log_tail(20)
    assert (ws.models_dir / "vae" / "sdxl_vae.safetensors").read_bytes() == BLOB


def test_download_refusals(ws):
    with pytest.raises(InvalidName):
        ws.models.download("civitai:1", subfolder="../outside")
    with pytest.raises(InvalidInput):
        ws.models.download("not a source")
    assert ws.jobs.list() == []


def test_cli(ws):
    out = subprocess.run([sys.executable, "-m", "lora_nb.cli", "-w", str(ws.root), "models", "starters", "sdxl"], capture_output=True, text=True)
    assert out.returncode == 0 and "sd_xl_base_1.0.safetensors" in out.stdout and "[flux]" not in out.stdout
    out = subprocess.run([sys.executable, "-m", "lora_nb.cli", "-w", str(ws.root), "models", "list"], capture_output=True, text=True)
    assert "no models yet" in out.stdout
