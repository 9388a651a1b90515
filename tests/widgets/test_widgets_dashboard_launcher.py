"""`lora-nb dashboard`: the Voila command it builds (pure), and the real server: it answers on loopback,
serves run outputs but not the database or dot-folders, starts without a warning, and a SIGTERM ends it
with its kernels. The package builds without a deprecation warning (what `scripts/dashboard.sh` does first)."""
from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

from pathlib import Path

import psutil
import pytest

from lora_nb.cli.dashboard import voila_command
from lora_nb.errors import ConfigError


def test_public_address_needs_a_token(tmp_path):
    with pytest.raises(ConfigError, match="without a token"):
        voila_command(tmp_path, 8866, "0.0.0.0", None, False)
    argv, env = voila_command(tmp_path, 8866, "0.0.0.0", "s3cret-token", False)
    assert "--Voila.ip=0.0.0.0" in argv and argv[1:3] == ["-m", "lora_nb.widgets.voila_serve"]
    # the token travels in the environment (lora_nb.widgets.voila_serve takes it out), never on the command line
    from lora_nb.widgets import voila_serve

    assert not any("s3cret-token" in a for a in argv) and env[voila_serve.TOKEN_ENV] == "s3cret-token"
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
    # list and dict settings go in a config file (traitlets deprecates them as command-line literals)
    assert not any("[" in a or "{" in a for a in argv), argv
    config_dir = tmp_path / ".lora-nb" / "config"
    paths = [a for a in argv if a.startswith("--Voila.config_file_paths=")]
    assert paths[0] == f"--Voila.config_file_paths={config_dir}"          # ours first: it wins over a user's voila.json
    config = json.loads((config_dir / "voila.json").read_text())
    # slow kernels (a busy box) still deliver the dashboard cell's output; large upload slices are allowed
    assert config["VoilaExecutor"]["iopub_timeout"] == 60
    assert config["Voila"]["tornado_settings"]["websocket_max_message_size"] == 100 * 2**20
    assert config["VoilaConfiguration"]["file_denylist"] == [r"(^|.*/)\..*", r".*\.db.*"]
    # kernels whose page is gone are culled; open pages (connected) and running cells (busy) are not
    assert config["MappingKernelManager"] == {"cull_idle_timeout": 900, "cull_interval": 60, "cull_connected": False, "cull_busy": False}
    argv, env = voila_command(tmp_path, 8866, "127.0.0.1", None, False, cull_idle=12, cull_interval=2)
    assert json.loads((config_dir / "voila.json").read_text())["MappingKernelManager"]["cull_idle_timeout"] == 12
    assert float(env["LORA_NB_PING_SECONDS"]) == 2.0                  # the page pings six times per idle period
    with pytest.raises(ConfigError, match="cull times"):
        voila_command(tmp_path, 8866, "127.0.0.1", None, False, cull_idle=0)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_server_serves_outputs_not_the_database_and_stops_cleanly(ws):
    out = ws.runs_dir / "20260101-000000-abcd" / "output"
    out.mkdir(parents=True)
    (out / "alice.safetensors").write_bytes(b"lora bytes")
    port = _port()
    log = open(ws.root / "dashboard.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "lora_nb.cli", "-w", str(ws.root), "dashboard", "--port", str(port), "--no-browser"],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
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
        assert psutil.Process(proc.pid).cmdline()[2] == "lora_nb.widgets.voila_serve"   # the launcher became Voila (same pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        log.close()
    output = (ws.root / "dashboard.log").read_text()
    assert "Voil" in output and "Warning" not in output and "deprecated" not in output.lower(), output
    time.sleep(1)
    leftovers = [p for p in psutil.process_iter(["cmdline"]) if str(ws.root) in " ".join(p.info["cmdline"] or []) and p.is_running()
                 and p.status() != psutil.STATUS_ZOMBIE]
    assert leftovers == []


def test_the_package_builds_without_a_deprecation_warning(tmp_path):
    """setuptools warns (with a deadline) about a `project.license` table and license classifiers: the build says nothing of it."""
    repo = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "--no-build-isolation", "-w", str(tmp_path), str(repo)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    text = out.stdout + out.stderr
    assert list(tmp_path.glob("lora_nb-*.whl"))
    warned = [line for line in text.splitlines() if "eprecat" in line]
    assert warned == []
