"""Cost and auto-stop on Vast.ai, against tests/fake_vast_api.py: a LOCAL HTTP server speaking the Vast.ai API
calls lora-nb makes (GET/PUT /api/v0/instances/{id}/, bearer key), not Vast itself. Jobs are real supervisors
running the stand-in engine (tests/standin_engine.py), the waiter is the real detached process, SQLite is real."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fake_vast_api import KEY, vast_container
from support import STANDIN, free_port, wait_for

from lora_nb.cloud.cost import queue_cost
from lora_nb.cloud.vast import VastAPI, VastError, api_key, instance_id
from lora_nb.jobs import autostop
from lora_nb.jobs.cost import cost_report

@pytest.fixture
def vast(monkeypatch):
    """The fake API, and this process's environment as on a Vast container (children inherit it)."""
    with vast_container(monkeypatch) as api:
        yield api


def quick_job(ws, *extra):
    return ws.jobs.submit_command([sys.executable, STANDIN, "--steps", "2", "--delay", "0", *extra], name="quick", gpus=0)


def assert_key_nowhere(ws):
    """The API key is in no file of the workspace: logs, database (and its WAL), run folders, autostop.log."""
    leaks = [p for p in Path(ws.root).rglob("*") if p.is_file() and KEY.encode() in p.read_bytes()]
    assert leaks == []


# -- the API client ------------------------------------------------------------------------------------
def test_reads_price_and_start_with_the_bearer_key(vast):
    inst = VastAPI.from_env().instance(4242)
    assert inst.price_per_hour == 0.40 and inst.gpu == "RTX 4090"
    assert inst.spent() == pytest.approx(0.80, abs=0.01)              # 2 h at $0.40
    method, path, headers, _ = vast.requests[-1]
    assert (method, path) == ("GET", "/api/v0/instances/4242/?owner=me")
    assert headers["Authorization"] == f"Bearer {KEY}"


@pytest.mark.parametrize("setup, sentence", [
    (lambda api, mp: mp.setenv("CONTAINER_API_KEY", "wrong-key"), "The Vast.ai API refused the API key (HTTP 401) while trying to read instance 4242."),
    (lambda api, mp: setattr(api, "fail_status", 500), "The Vast.ai API answered HTTP 500 while trying to read instance 4242."),
    (lambda api, mp: mp.setenv("LORA_NB_VAST_URL", f"http://127.0.0.1:{free_port()}"), "could not be reached"),
])
def test_api_errors_are_one_sentence_without_the_key(vast, monkeypatch, setup, sentence):
    setup(vast, monkeypatch)
    with pytest.raises(VastError) as e:
        VastAPI.from_env(timeout=3).instance(4242)
    assert sentence in str(e.value) and KEY not in str(e.value) and "wrong-key" not in str(e.value)
    assert e.value.fix


def test_instance_id_and_key_come_from_the_environment_or_the_vastai_key_file(tmp_path):
    assert instance_id({"CONTAINER_ID": "17"}) == 17 and instance_id({"VAST_CONTAINERLABEL": "C.18"}) == 18
    assert instance_id({}) is None and instance_id({"CONTAINER_ID": "abc"}) is None
    assert api_key({"CONTAINER_API_KEY": "a", "VAST_API_KEY": "b"}) == "a"
    assert api_key({"VAST_API_KEY": "b", "HOME": str(tmp_path)}) == "b"
    assert api_key({"HOME": str(tmp_path)}) is None
    (tmp_path / ".vast_api_key").write_text("legacy\n")
    assert api_key({"HOME": str(tmp_path)}) == "legacy"
    (tmp_path / ".config" / "vastai").mkdir(parents=True)
    (tmp_path / ".config" / "vastai" / "vast_api_key").write_text("xdg\n")
    assert api_key({"HOME": str(tmp_path)}) == "xdg"


def test_queue_cost_counts_unknown_etas_as_unknown():
    c = queue_cost([1800.0, None, None], 0.5, spent=2.0)
    assert c.cost == pytest.approx(0.25) and c.unknown_jobs == 2 and c.known_jobs == 1
    assert c.summary() == "$0.500/h · spent ≈ $2.00 · queue ≈ $0.250 (0.5 h; 2 jobs without ETA)"
    assert queue_cost([None], 0.5).summary() == "$0.500/h · queue cost unknown (1 job without ETA)"
    assert queue_cost([], 0.5).summary() == "$0.500/h · queue empty"


# -- cost of the queue ----------------------------------------------------------------------------------
def test_cost_report_prices_running_eta_and_lists_queued_as_unknown(ws, vast):
    ws.jobs.max_concurrent = 1
    bar = "import sys, time; sys.stderr.write('steps:  10%|#    | 10/100 [00:10<1:30:00, 1.00it/s]\\n'); sys.stderr.flush(); time.sleep(60)"
    running = ws.jobs.submit_command([sys.executable, "-c", bar], name="long")
    queued = ws.jobs.submit_command([sys.executable, STANDIN, "--steps", "2", "--delay", "0"], name="next")
    wait_for(lambda: running.snapshot().progress.eta, timeout=30, what="an ETA for the running job")
    assert running.snapshot().progress.eta == 5400                       # 1:30:00 left
    report = cost_report(ws)
    assert report.instance_id == 4242 and report.error is None
    assert report.cost.known_jobs == 1 and report.cost.unknown_jobs == 1
    assert report.cost.cost == pytest.approx(1.5 * 0.40)
    assert report.summary() == "Vast #4242: $0.400/h · spent ≈ $0.800 · queue ≈ $0.600 (1.5 h; 1 job without ETA)"
    running.stop(grace=1)
    queued.stop(grace=1)


def test_a_queued_training_run_is_priced_from_its_expected_steps_and_a_like_runs_speed(ws, vast):
    """expected_steps is what the step calculator stored with a training job; the speed comes from a finished like run."""
    meta = {"engine": "kohya", "model_family": "sd15", "resolution": 512, "train_batch_size": 1}
    bar = "import sys; sys.stderr.write('steps: 100%|#####| 100/100 [00:50<00:00, 2.00it/s]\\n')"
    ws.jobs.submit_command([sys.executable, "-c", bar], name="earlier", meta={**meta, "expected_steps": 100}).wait(timeout=60)
    ws.jobs.max_concurrent = 1
    blocker = ws.jobs.submit_command([sys.executable, "-c", "import time; time.sleep(60)"], name="blocker")
    ws.jobs.submit_command([sys.executable, "-c", "pass"], name="like", meta={**meta, "expected_steps": 3600})
    ws.jobs.submit_command([sys.executable, "-c", "pass"], name="other", meta={**meta, "resolution": 1024, "expected_steps": 10})
    wait_for(lambda: blocker.snapshot().status.value == "running", timeout=30, what="the blocker running")
    report = cost_report(ws)
    # blocker: no progress (unknown); like: 3600 steps / 2 it/s = 1800 s; other: no run at 1024 yet (unknown)
    assert (report.cost.known_jobs, report.cost.unknown_jobs, report.cost.known_seconds) == (1, 2, 1800.0)
    assert report.cost.cost == pytest.approx(0.5 * 0.40)
    blocker.stop(grace=1)


def test_cost_report_is_absent_off_vast_and_an_error_sentence_when_the_api_fails(ws, vast, monkeypatch):
    assert cost_report(ws, env={}) is None
    vast.fail_status = 500
    report = cost_report(ws)
    assert report.cost is None and "HTTP 500" in report.summary()


def cli(ws, *args):
    return subprocess.run([sys.executable, "-m", "lora_nb.cli", "-w", str(ws.root), *args], capture_output=True, text=True, timeout=60)


def test_cli_jobs_list_and_cost_show_the_price(ws, vast):
    quick_job(ws).wait(timeout=60)
    out = cli(ws, "jobs", "list")
    assert out.returncode == 0 and "Vast #4242: $0.400/h · spent ≈ $0.80" in out.stdout and "queue empty" in out.stdout
    out = cli(ws, "jobs", "cost", "--json")
    data = json.loads(out.stdout)
    assert data["price_per_hour"] == 0.40 and data["queue_cost"] == 0 and data["autostop"]["state"] == "off"
    out = cli(ws, "jobs", "autostop", "--on", "--grace", "0.5")
    assert out.returncode == 0 and out.stdout.startswith("auto-stop when the queue drains: on (grace 0.5 min)")
    assert ws.settings.get("autostop_when_drained") is True and ws.settings.get("autostop_grace_seconds") == 30.0
    out = cli(ws, "jobs", "autostop", "--grace", "-3")
    assert out.returncode == 1 and out.stderr.strip().startswith("lora-nb: The auto-stop grace period must be 0 to 86400 seconds")
    assert KEY not in out.stdout + out.stderr


# -- auto-stop, end to end ------------------------------------------------------------------------------
def test_stops_the_instance_once_after_the_grace(ws, vast):
    autostop.configure(ws, True, grace_seconds=2)
    job = quick_job(ws)
    assert job.wait(timeout=60).value == "succeeded"
    ended = job.snapshot().ended_at
    wait_for(lambda: vast.stops, timeout=30, what="the stop call")
    stopped_at = time.time()
    assert vast.stops == [(4242, f"Bearer {KEY}")]
    assert stopped_at - ended >= 2.0                                      # not before the grace
    wait_for(lambda: autostop.status(ws)["state"] == "stopped", timeout=10, what="state stopped")
    time.sleep(1.5)
    assert len(vast.stops) == 1                                          # exactly once
    assert "Instance 4242 was stopped" in autostop.status(ws)["message"]
    assert_key_nowhere(ws)


def test_a_job_submitted_during_the_grace_cancels_the_stop_and_the_last_job_rearms(ws, vast):
    autostop.configure(ws, True, grace_seconds=3)
    quick_job(ws).wait(timeout=60)
    wait_for(lambda: autostop.status(ws)["state"] == "armed", timeout=10, what="armed")
    late = ws.jobs.submit_command([sys.executable, STANDIN, "--steps", "20", "--delay", "0.1"], name="late", gpus=0)
    wait_for(lambda: autostop.status(ws)["state"] in ("cancelled", "armed") and late.snapshot().status.value != "queued", timeout=10)
    late.wait(timeout=60)
    late_end = late.snapshot().ended_at
    wait_for(lambda: vast.stops, timeout=30, what="the stop after the late job")
    assert vast.stops == [(4242, f"Bearer {KEY}")]
    assert time.time() - late_end >= 3.0                                  # the grace restarted from the late job's end
    log = (Path(ws.root) / "autostop.log").read_text()
    assert "cancelled: a job was submitted" in log or log.count("armed:") == 2
    time.sleep(1.5)
    assert len(vast.stops) == 1
    assert_key_nowhere(ws)


def test_two_jobs_ending_together_give_one_stop(ws, vast):
    autostop.configure(ws, True, grace_seconds=2)
    jobs = [quick_job(ws) for _ in range(3)]
    for j in jobs:
        j.wait(timeout=60)
    wait_for(lambda: autostop.status(ws)["state"] == "stopped", timeout=30, what="stopped")
    time.sleep(2.5)
    assert vast.stops == [(4242, f"Bearer {KEY}")]


def test_nothing_is_stopped_when_the_setting_is_off(ws, vast):
    ws.settings.set("autostop_grace_seconds", 0.5)                       # off by default
    quick_job(ws).wait(timeout=60)
    time.sleep(3)
    assert vast.stops == [] and autostop.status(ws)["state"] == "off"
    assert not (Path(ws.root) / "autostop.log").exists()


def test_turning_it_off_during_the_grace_cancels(ws, vast):
    autostop.configure(ws, True, grace_seconds=3)
    quick_job(ws).wait(timeout=60)
    wait_for(lambda: autostop.status(ws)["state"] == "armed", timeout=10, what="armed")
    autostop.configure(ws, False)
    time.sleep(4.5)
    assert vast.stops == [] and autostop.status(ws)["state"] == "cancelled"


@pytest.mark.parametrize("breakage, sentence", [
    ("401", "refused the API key (HTTP 401) while trying to stop instance 4242"),
    ("500", "answered HTTP 500 while trying to stop instance 4242"),
    ("down", "could not be reached"),
])
def test_api_errors_leave_one_sentence_and_the_jobs_intact(ws, vast, monkeypatch, breakage, sentence):
    if breakage == "401":
        monkeypatch.setenv("CONTAINER_API_KEY", "wrong-key-abcdef")
    elif breakage == "500":
        vast.fail_status = 500
    else:
        monkeypatch.setenv("LORA_NB_VAST_URL", f"http://127.0.0.1:{free_port()}")
    autostop.configure(ws, True, grace_seconds=0.5)
    job = quick_job(ws)
    assert job.wait(timeout=60).value == "succeeded"
    wait_for(lambda: autostop.status(ws)["state"] == "failed", timeout=30, what="state failed")
    message = autostop.status(ws)["message"]
    assert message.startswith("Auto-stop could not stop instance 4242: ") and sentence in message
    assert "Traceback" not in (Path(ws.root) / "autostop.log").read_text()
    assert job.snapshot().error is None and vast.stops == []
    quick_job(ws).wait(timeout=60)                                       # the next job still runs and ends normally
    assert_key_nowhere(ws)


def test_an_instance_without_a_container_id_is_not_stopped_and_says_why(ws, vast, monkeypatch):
    monkeypatch.delenv("CONTAINER_ID")
    autostop.configure(ws, True, grace_seconds=0.5)
    quick_job(ws).wait(timeout=60)
    wait_for(lambda: autostop.status(ws)["state"] == "failed", timeout=10, what="failed")
    assert "not a Vast.ai instance" in autostop.status(ws)["message"] and vast.stops == []


def test_a_superseded_waiter_steps_aside(ws, vast):
    autostop.configure(ws, True, grace_seconds=0.2)
    first = autostop.arm(ws, spawn=False)
    second = autostop.arm(ws, spawn=False)
    assert first and second and first != second
    assert autostop.wait_and_stop(ws, first) == "superseded"
    assert autostop.wait_and_stop(ws, second) == "stopped"
    assert vast.stops == [(4242, f"Bearer {KEY}")]
