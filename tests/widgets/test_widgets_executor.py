"""The executor line of the Jobs panel: where new jobs run, set from the dashboard.

The "cluster" here is a LOCAL HTTP server answering the one call the Apply button makes before it changes
anything (Ray's ``GET /api/version``), not Ray: a real Ray cluster running jobs is tested in
tests/jobs/test_ray_executor.py.
"""
from __future__ import annotations

import http.server
import json
import threading

import pytest

from support import free_port, wait_for

from lora_nb.widgets.executor_box import ExecutorBox
from lora_nb.widgets.jobs_panel import JobsPanel

pytest.importorskip("ray")     # set_executor refuses without Ray installed (the test command installs it)


@pytest.fixture
def dashboard_api():
    """http://127.0.0.1:PORT answering /api/version as a Ray 2.60 dashboard does; the paths asked are kept."""
    asked: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            asked.append(self.path)
            body = json.dumps({"version": "4", "ray_version": "2.60.0", "ray_commit": "x"}).encode()
            self.send_response(200 if self.path == "/api/version" else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}", asked
    srv.shutdown()
    srv.server_close()


def test_a_new_workspace_runs_jobs_here_and_nothing_is_clickable_without_an_address(ws):
    box = ExecutorBox(ws)
    assert "jobs run on this machine" in box.state.value
    assert box.apply_button.disabled and box.apply_button.tooltip == "type a Ray cluster's address first"
    assert box.local_button.disabled and box.files.disabled
    box.address.value = "ray://10.1.2.3"
    assert not box.apply_button.disabled and not box.files.disabled


def test_use_cluster_checks_it_off_the_kernel_thread_then_sets_executor_and_files(ws, dashboard_api):
    url, asked = dashboard_api
    box = ExecutorBox(ws)
    box.address.value, box.files.value = url, "ship"
    box.apply_button.click()
    box.runner.idle()
    wait_for(lambda: not box.apply_button.disabled, what="Apply enabled again")
    assert asked == ["/api/version"]
    assert ws.jobs.executor == url and ws.jobs.ray_files == "ship"
    assert f"jobs run on the Ray cluster at {url}" in box.state.value and "files: ship" in box.state.value
    assert box.banner.kind == "info" and "Ray Jobs" in box.banner.text
    assert not box.local_button.disabled
    box.local_button.click()
    assert ws.jobs.executor == "local" and "jobs run on this machine" in box.state.value and box.local_button.disabled


def test_an_unreachable_cluster_is_one_sentence_and_changes_nothing(ws):
    box = ExecutorBox(ws)
    box.address.value = f"http://127.0.0.1:{free_port()}"          # nothing listens there
    box.apply_button.click()
    box.runner.idle()
    wait_for(lambda: box.banner.kind == "error", what="the error in the banner")
    assert "cannot be reached" in box.banner.text and ws.jobs.executor == "local"
    assert "jobs run on this machine" in box.state.value and not box.apply_button.disabled


def test_a_malformed_address_is_refused_with_the_fix(ws):
    box = ExecutorBox(ws)
    box.address.value = "ray://10.0.0.5:10001"                     # Ray Client's port, not the Jobs API
    box.apply_button.click()
    box.runner.idle()
    wait_for(lambda: box.banner.kind == "error", what="the error in the banner")
    assert "Ray Client" in box.banner.text and ws.jobs.executor == "local"


def test_the_jobs_panel_shows_the_executor_and_marks_ray_jobs(ws, dashboard_api):
    url, _ = dashboard_api
    panel = JobsPanel(ws, auto_refresh=0)
    assert "jobs run on this machine" in panel.executor.state.value
    ws.jobs.set_executor(url)                       # set from a cell: the panel follows at its next refresh
    panel.refresh()
    assert f"Ray cluster at {url}" in panel.executor.state.value and panel.executor.address.value == url
    panel.close()
