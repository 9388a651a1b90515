"""Jobs end to end with real supervisors and the stand-in engine (a process-level imitation of a trainer)."""
from __future__ import annotations

import json
import os
import sys
import threading
import time

import pytest

from lora_nb.errors import JobError, NotFound
from lora_nb.progress.events import EventKind, JobStatus

from support import alive, standin, wait_for


def test_success_records_everything(ws, tmp_path):
    job = ws.jobs.submit_command(standin("--steps", "5", "--delay", "0", "--out", str(tmp_path / "o")), name="five")
    assert job.wait(30) is JobStatus.SUCCEEDED
    assert job.exit_code == 0 and job.error is None
    assert job.name == "five"
    p = job.progress
    assert (p.step, p.total_steps) == (5, 5)
    tail = job.log_tail(50)
    assert tail[-1] == "model saved."
    # the \r redraws collapsed: one bar line, showing its final state
    bars = [l for l in tail if l.startswith("steps:")]
    assert len(bars) == 1 and "5/5" in bars[0] and "saving checkpoint" in bars[0]
    exit_rec = json.loads((job.run_dir / "exit.json").read_text())
    assert exit_rec["status"] == "succeeded" and exit_rec["exit_code"] == 0
    sup = json.loads((job.run_dir / "supervisor.json").read_text())
    wait_for(lambda: not alive(sup["pid"]), timeout=10)  # it exits right after recording
    assert (tmp_path / "o" / "standin-000001.safetensors").is_file()


def test_failure_summary_has_exit_code_last_lines(ws):
    job = ws.jobs.submit_command(standin("--steps", "10", "--delay", "0", "--crash-at", "3"))
    assert job.wait(30) is JobStatus.FAILED
    assert job.exit_code == 1
    assert job.error.splitlines()[0] == "The job failed: exit code 1."
    assert "RuntimeError: stand-in crash" in job.error


def test_exit_zero_after_stop_is_still_stopped(ws, tmp_path):
    pidfile = tmp_path / "pid"
    job = ws.jobs.submit_command(standin("--steps", "1000", "--delay", "0.05", "--exit-zero-on-term", "--pidfile", str(pidfile)))
    wait_for(pidfile.exists)
    assert job.stop(grace=5) is JobStatus.STOPPED
    assert job.exit_code == 0
    assert job.error is None


def test_stop_kills_a_tree_that_ignores_sigterm_within_grace(ws, tmp_path):
    pidfile = tmp_path / "pid"
    job = ws.jobs.submit_command(standin("--steps", "100000", "--delay", "0.05", "--ignore-term", "--child", "--pidfile", str(pidfile)))
    wait_for(pidfile.exists)
    engine_pid, child_pid = map(int, pidfile.read_text().split())
    wait_for(lambda: job.status is JobStatus.RUNNING)
    t0 = time.monotonic()
    assert job.stop(grace=1.0) is JobStatus.STOPPED
    wait_for(lambda: not alive(engine_pid) and not alive(child_pid), timeout=3.0)
    assert time.monotonic() - t0 < 1.0 + 2.0 + 1.0
    assert job.exit_code == -9


def test_no_orphan_when_the_engine_leaves_a_child_behind(ws, tmp_path):
    pidfile = tmp_path / "pid"
    job = ws.jobs.submit_command(standin("--steps", "2", "--delay", "0", "--child", "--pidfile", str(pidfile)))
    assert job.wait(30) is JobStatus.SUCCEEDED
    _, child_pid = map(int, pidfile.read_text().split())
    wait_for(lambda: not alive(child_pid), timeout=5)


def test_stop_a_queued_job_takes_it_off_the_queue(ws, tmp_path):
    first = ws.jobs.submit_command(standin("--steps", "1000", "--delay", "0.05"))
    second = ws.jobs.submit_command(standin("--steps", "1"))
    assert second.status is JobStatus.QUEUED
    assert second.stop() is JobStatus.STOPPED
    first.stop(grace=1)
    time.sleep(0.5)
    assert second.status is JobStatus.STOPPED and second.started_at is None


def test_queue_respects_slots_and_drains(ws):
    jobs = [ws.jobs.submit_command(standin("--steps", "5", "--delay", "0.02")) for _ in range(3)]
    seen_running = 0
    deadline = time.monotonic() + 60
    while not all(j.status.is_final for j in jobs):
        seen_running = max(seen_running, sum(j.status is JobStatus.RUNNING for j in jobs))
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert seen_running == 1
    assert [j.status for j in jobs] == [JobStatus.SUCCEEDED] * 3
    starts = [j.started_at for j in jobs]
    assert starts == sorted(starts)
    for a, b in zip(jobs, jobs[1:]):
        assert b.started_at >= a.ended_at - 0.01  # one at a time


def test_non_gpu_jobs_do_not_wait_for_a_slot(ws):
    long = ws.jobs.submit_command(standin("--steps", "1000", "--delay", "0.05"))
    quick = ws.jobs.submit_command(standin("--steps", "2", "--delay", "0"), uses_gpu=False)
    assert quick.wait(30) is JobStatus.SUCCEEDED
    assert long.status is JobStatus.RUNNING
    long.stop(grace=1)


def test_max_concurrent_is_persisted_and_validated(ws):
    ws.jobs.max_concurrent = 2
    import lora_nb

    assert lora_nb.Workspace(ws.root).jobs.max_concurrent == 2
    with pytest.raises(JobError, match="whole number"):
        ws.jobs.max_concurrent = 0


@pytest.mark.parametrize("kwargs, message", [
    (dict(argv=["/no/such/program"]), "does not exist"),
    (dict(argv=["no-such-program-xyz"]), "not found on PATH"),
    (dict(argv=[]), "empty"),
    (dict(argv=["python3"], cwd="/no/such/dir"), "working folder"),
    (dict(argv=["python3"], parser="nope"), "no log parser"),
    (dict(argv=["python3"], meta={"x": object()}), "JSON"),
])
def test_bad_submits_fail_clearly_and_leave_nothing(ws, kwargs, message):
    before = set(ws.runs_dir.iterdir())
    with pytest.raises(JobError, match=message):
        ws.jobs.submit_command(**kwargs)
    assert set(ws.runs_dir.iterdir()) == before
    assert ws.jobs.list() == []


def test_not_executable(ws, tmp_path):
    script = tmp_path / "x.sh"
    script.write_text("echo hi")
    with pytest.raises(JobError, match="not executable"):
        ws.jobs.submit_command([str(script)])


def test_unknown_job(ws):
    with pytest.raises(NotFound, match="no job"):
        ws.jobs.get("nope")


def test_subscribe_gets_bounded_rate_events(ws):
    calls: list[tuple[float, list]] = []
    done = threading.Event()

    def cb(events):
        calls.append((time.monotonic(), events))
        if any(e.kind is EventKind.STATUS and e.data["status"] == "succeeded" for e in events):
            done.set()

    job = ws.jobs.submit_command(standin("--steps", "300", "--delay", "0.005", "--epochs", "2"))
    job.subscribe(cb, rate=5)
    assert done.wait(60)
    times = [t for t, _ in calls]
    gaps = [b - a for a, b in zip(times, times[1:])]
    # at most 5 calls a second (allow scheduling jitter)
    assert all(g >= 0.15 for g in gaps[:-1]), gaps
    progress = [e for _, evs in calls for e in evs if e.kind is EventKind.PROGRESS]
    assert progress and progress[-1].data["step"] == 600
    steps = [e.data["step"] for e in progress]
    assert steps == sorted(steps)
    logs = [l for _, evs in calls for e in evs if e.kind is EventKind.LOG for l in e.data["lines"]]
    assert "model saved." in logs and "epoch 2/2" in logs
    assert job.log_tail(3)[-1] == "model saved."


def test_progress_is_readable_from_another_process(ws):
    job = ws.jobs.submit_command(standin("--steps", "2000", "--delay", "0.01"))
    wait_for(lambda: (job.progress.step or 0) > 10, timeout=20)
    import subprocess

    out = subprocess.run([sys.executable, "-c", f"import lora_nb; j = lora_nb.Workspace({str(ws.root)!r}).jobs.get({job.id!r}); "
                          "print(j.status.value, j.progress.step, j.progress.total_steps)"], capture_output=True, text=True, check=True)
    status, step, total = out.stdout.split()
    assert status == "running" and int(step) > 0 and total == "2000"
    job.stop(grace=1)


def test_secret_env_reaches_the_engine_but_never_the_disk(ws):
    token = "hf_" + "S3cr3tT0k3n" * 3
    job = ws.jobs.submit_command(standin("--secret-env", "HF_TOKEN", "--leak-env", "HF_TOKEN", "--steps", "1"), env={"HF_TOKEN": token, "VISIBLE": "1"})
    assert job.wait(30) is JobStatus.SUCCEEDED
    tail = job.log_tail(20)
    assert "secret HF_TOKEN is set" in tail
    assert "using token [secret] for upload" in tail  # an engine that prints it is masked in the log
    for path in [*ws.root.rglob("*")]:
        if path.is_file():
            assert token.encode() not in path.read_bytes(), path
    assert job.snapshot().env == {"VISIBLE": "1"}


def test_task_job_reports_progress_and_artifacts(ws, tmp_path, monkeypatch):
    # a task module written on the fly into lora_nb/tasks (removed afterwards)
    script = (
        "from lora_nb.tasks.progress_reporter import Reporter, load_params\n"
        "p = load_params(); r = Reporter(total=p['n'], unit='img')\n"
        "for i in range(1, p['n'] + 1): r.progress(i)\n"
        "r.artifact(p['workspace'] + '/x.txt', 'file')\n"
    )
    import lora_nb.tasks as tasks_pkg

    target = os.path.join(os.path.dirname(tasks_pkg.__file__), "_selftest_task.py")
    with open(target, "w") as f:
        f.write(script)
    try:
        job = ws.jobs.submit_task("_selftest_task", {"n": 7})
        assert job.wait(30) is JobStatus.SUCCEEDED
        assert job.progress.step == 7 and job.progress.rate_unit == "img/s"
        assert job.artifacts == [{"path": str(ws.root) + "/x.txt", "kind": "file"}]
        assert json.loads((job.run_dir / "task.json").read_text())["workspace"] == str(ws.root)
    finally:
        os.remove(target)


def test_task_params_refuse_secrets_and_unknown_tasks(ws):
    with pytest.raises(JobError, match="looks like a secret"):
        ws.jobs.submit_task("tag", {"hf_token": "abc"})
    with pytest.raises(JobError, match="no task called"):
        ws.jobs.submit_task("no_such_task", {})
    assert list(ws.runs_dir.iterdir()) == []


def test_follower_ends_quietly_when_its_job_is_deleted(ws):
    import threading

    from lora_nb.errors import NotFound
    from support import standin

    job = ws.jobs.submit_command(standin("--steps", "400", "--delay", "0.05"), uses_gpu=False)
    errors = []
    old_hook = threading.excepthook
    threading.excepthook = lambda args: errors.append(args.exc_value)
    try:
        follower = job.follow(rate=10)

        def gone():                          # the job was deleted (another kernel, a test's teardown) mid-follow
            raise NotFound(f"There is no job '{job.id}'.")

        job._refresh_status = gone
        follower._thread.join(10)
    finally:
        threading.excepthook = old_hook
        job.__dict__.pop("_refresh_status", None)
        job.stop(grace=2)
    assert not follower._thread.is_alive() and errors == []
