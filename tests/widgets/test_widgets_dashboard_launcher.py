"""`lora-nb dashboard`: the Voila command it builds (pure), and the real server: it answers on loopback,
serves run outputs but not the database or dot-folders, and a SIGTERM ends it with its kernels."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import psutil
import pytest

from lora_nb.cli.dashboard import voila_command
from lora_nb.errors import ConfigError


def test_public_address_needs_a_token(tmp_path):
    with pytest.raises(ConfigError, match="without a token"):
        voila_command(tmp_path, 8866, "0.0.0.0", None, False)
    argv, env = voila_command(tmp_path, 8866, "0.0.0.0", "s3cret-token", False)
    assert "--token=s3cret-token" in argv and "--Voila.ip=0.0.0.0" in argv
    argv, env = voila_command(tmp_path, 8866, "127.0.0.1", None, False)
    assert "--template=lora-nb" in argv and env["LORA_NB_HOME"] == str(tmp_path)
    assert (tmp_path / ".lora-nb" / "jupyter" / "voila" / "templates" / "lora-nb" / "conf.json").is_file()
    assert (tmp_path / "dashboard" / "lora-nb.ipynb").is_file()
    with pytest.raises(ConfigError, match="not a port"):
        voila_command(tmp_path, 70000, "127.0.0.1", None, False)
    for loopback in ("localhost", "::1", "127.0.0.2"):
        voila_command(tmp_path, 8866, loopback, None, False)
    for public in ("example.com", "192.168.1.5", "::"):
        with pytest.raises(ConfigError, match="without a token"):
            voila_command(tmp_path, 8866, public, None, False)
    # slow kernels (a busy box) still deliver the dashboard cell's output; large upload slices are allowed
    assert "--VoilaExecutor.iopub_timeout=60" in argv
    assert any("websocket_max_message_size" in a for a in argv)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_server_serves_outputs_not_the_database_and_stops_cleanly(ws):
    out = ws.runs_dir / "20260101-000000-abcd" / "output"
    out.mkdir(parents=True)
    (out / "alice.safetensors").write_bytes(b"lora bytes")
    port = _port()
    proc = subprocess.Popen([sys.executable, "-m", "lora_nb.cli", "-w", str(ws.root), "dashboard", "--port", str(port), "--no-browser"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while time.time() < deadline:
            try:
                urllib.request.urlopen(base + "/voila/files/runs/20260101-000000-abcd/output/alice.safetensors", timeout=5)
                break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.5)
        data = urllib.request.urlopen(base + "/voila/files/runs/20260101-000000-abcd/output/alice.safetensors", timeout=10).read()
        assert data == b"lora bytes"
        for secret in ("/voila/files/lora_nb.db", "/voila/files/.lora-nb/jupyter/voila/templates/lora-nb/conf.json"):
            with pytest.raises(urllib.error.HTTPError) as e:
                urllib.request.urlopen(base + secret, timeout=10)
            assert e.value.code in (403, 404)
        assert psutil.Process(proc.pid).cmdline()[2] == "voila"          # the launcher became Voila (same pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    time.sleep(1)
    leftovers = [p for p in psutil.process_iter(["cmdline"]) if str(ws.root) in " ".join(p.info["cmdline"] or []) and p.is_running()
                 and p.status() != psutil.STATUS_ZOMBIE]
    assert leftovers == []
