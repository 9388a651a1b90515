"""The executor setting without a Ray cluster: addresses, errors, the row's schema, secrets stay local.

A real Ray cluster is in test_ray_executor.py; here the "cluster" is either a closed port (nothing
listens) or a local HTTP server answering ``GET /api/version`` the way a Ray dashboard does.
"""
from __future__ import annotations

import http.server
import json
import sqlite3
import sys
import threading
import time

import pytest

from lora_nb.errors import ClusterError, ConfigError
from lora_nb.jobs import records
from lora_nb.jobs.ray_executor import normalize_executor
from lora_nb.progress.events import JobStatus

from support import free_port


@pytest.mark.parametrize("given, expected", [
    ("local", "local"), (None, "local"), ("  ", "local"), ("LOCAL", "local"),
    ("ray://10.0.0.5", "http://10.0.0.5:8265"), ("ray://head:9000", "http://head:9000"),
    ("http://127.0.0.1:8265", "http://127.0.0.1:8265"), ("https://ray.example.org/", "https://ray.example.org"),
])
def test_addresses_are_normalised(given, expected):
    assert normalize_executor(given) == expected


@pytest.mark.parametrize("bad, words", [
    ("ray://head:10001", "Ray Client"), ("10.0.0.5:8265", "not an executor"), ("ftp://x", "not an executor"),
    ("http://head:99999", "no valid port"), ("http://head:8265/api", "not an executor"), ("ray://", "not an executor"),
])
def test_bad_addresses_are_refused_with_the_fix(ws, bad, words):
    with pytest.raises(ConfigError, match=words) as e:
        ws.jobs.set_executor(bad)
    assert e.value.fix
    assert ws.jobs.executor == "local"


def test_an_unreachable_cluster_is_a_clear_error_at_once(ws):
    address = f"http://127.0.0.1:{free_port()}"          # nothing listens there
    t = time.monotonic()
    with pytest.raises(ClusterError, match="cannot be reached") as e:
        ws.jobs.set_executor(address)
    assert time.monotonic() - t < 10 and "set_executor('local')" in str(e.value)
    assert ws.jobs.executor == "local"
    # a workspace whose cluster went away since: submitting fails now, nothing is half-written
    ws.settings.set("executor", address)
    with pytest.raises(ClusterError, match="cannot be reached"):
        ws.jobs.submit_command([sys.executable, "-c", "pass"])
    assert ws.jobs.list() == [] and not any(ws.runs_dir.iterdir())


class _FakeDashboard(http.server.BaseHTTPRequestHandler):
    """Answers GET /api/version like a Ray 2.x dashboard; nothing else."""

    def do_GET(self):
        if self.path == "/api/version":
            body = json.dumps({"version": "3", "ray_version": "2.60.0", "ray_commit": "x"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            self.send_error(404)

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_dashboard():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FakeDashboard)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_the_setting_is_stored_per_workspace_and_jobs_with_secrets_stay_local(ws, fake_dashboard):
    pytest.importorskip("ray")
    port = fake_dashboard.rsplit(":", 1)[1]
    assert ws.jobs.set_executor(f"ray://127.0.0.1:{port}") == fake_dashboard
    assert ws.jobs.executor == fake_dashboard == ws.settings.get("executor")
    # a token would be stored with a Ray Job's runtime environment: such a job runs here instead
    job = ws.jobs.submit_command([sys.executable, "-c", "import os; print(len(os.environ['HF_TOKEN']))"],
                                 env={"HF_TOKEN": "hf_" + "a" * 30})
    assert job.wait(60) is JobStatus.SUCCEEDED
    snap = job.snapshot()
    assert snap.executor == "local" and snap.remote_id is None and job.log_tail() == ["33"]
    assert ws.jobs.set_executor("local") == "local" and ws.jobs.executor == "local"


def test_schema_2_rows_read_as_local_jobs(tmp_path):
    from lora_nb.store import Store

    db = tmp_path / "lora_nb.db"
    store = Store(db)
    store.ensure_schema("jobs", records.MIGRATIONS[:2])
    with store.transaction() as c:
        c.execute("INSERT INTO jobs(id, seq, name, kind, status, argv, parser, uses_gpu, run_dir, created_at) "
                  "VALUES('j0', 1, 'x', 'command', 'succeeded', '[]', 'plain', 1, '/tmp', 0)")
    store.ensure_schema("jobs", records.MIGRATIONS)
    [snap] = records.load_all(store)
    assert (snap.executor, snap.remote_id) == ("local", None)
    assert sqlite3.connect(db).execute("SELECT version FROM schema_versions WHERE component='jobs'").fetchone()[0] == 3


def test_cli_shows_and_changes_the_executor(ws, fake_dashboard, capsys):
    pytest.importorskip("ray")
    from lora_nb.cli import main

    root = str(ws.root)
    assert main(["--workspace", root, "jobs", "executor"]) == 0
    assert capsys.readouterr().out.strip() == "local: jobs run on this machine"
    assert main(["--workspace", root, "jobs", "executor", "--set", fake_dashboard]) == 0
    assert capsys.readouterr().out.strip() == (f"ray: jobs run as Ray Jobs on the cluster at {fake_dashboard}; "
                                               "files: shared (every node sees the workspace at the same paths)")
    assert main(["--workspace", root, "jobs", "executor", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"executor": fake_dashboard, "files": "shared"}
    # nodes without the workspace: files shipped with each job (lora_nb.jobs.ray_ship), and back to shared
    assert main(["--workspace", root, "jobs", "executor", "--set", fake_dashboard, "--ship-files"]) == 0
    assert "files: ship (inputs shipped in the Ray Job's working_dir" in capsys.readouterr().out
    assert ws.jobs.ray_files == "ship"
    assert main(["--workspace", root, "jobs", "executor", "--shared-files", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"executor": fake_dashboard, "files": "shared"}
    with pytest.raises(ConfigError, match="files must be 'shared' or 'ship'"):
        ws.jobs.set_executor(fake_dashboard, files="copy")
    assert ws.jobs.ray_files == "shared"
    dead = f"http://127.0.0.1:{free_port()}"
    assert main(["--workspace", root, "jobs", "executor", "--set", dead]) == 1
    err = capsys.readouterr().err
    assert f"The Ray cluster at {dead} cannot be reached" in err and "Traceback" not in err
    assert main(["--workspace", root, "jobs", "executor", "--local"]) == 0
    assert ws.jobs.executor == "local"
