"""Crash safety with real processes: a kernel killed mid-run, a supervisor killed, several
schedulers at once, and a queue that drains with no kernel alive. The engine is the
stand-in (tests/standin_engine.py), not a real trainer."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import lora_nb
from lora_nb.progress.events import JobStatus

from support import STANDIN, alive, wait_for


def _kernel(ws_root, code: str) -> subprocess.Popen:
    """A separate Python process standing in for a Jupyter kernel."""
    prog = f"import lora_nb, sys, time, json\nws = lora_nb.Workspace({str(ws_root)!r})\n" + textwrap.dedent(code)
    return subprocess.Popen([sys.executable, "-c", prog], stdout=subprocess.PIPE, text=True)


def test_kernel_killed_mid_run_then_reattach_loses_nothing(ws):
    kernel = _kernel(ws.root, f"""
        job = ws.jobs.submit_command([sys.executable, {STANDIN!r}, "--steps", "150", "--delay", "0.01", "--epochs", "2"])
        job.subscribe(lambda events: None)
        print(job.id, flush=True)
        time.sleep(3600)
    """)
    job_id = kernel.stdout.readline().strip()
    fresh = lora_nb.Workspace(ws.root)
    job = fresh.jobs.get(job_id)
    wait_for(lambda: (job.progress.step or 0) >= 20, timeout=20)
    kernel.kill()  # kill -9 of the kernel side, mid-run
    kernel.wait()
    assert job.status is JobStatus.RUNNING  # the supervisor owns the engine, not the kernel
    # a brand-new process re-attaches and follows to the end
    follower = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
        import lora_nb
        ws = lora_nb.Workspace({str(ws.root)!r})
        job = ws.jobs.get({job_id!r})
        print(job.wait(60).value, job.progress.step, job.exit_code)
    """)], capture_output=True, text=True, check=True)
    assert follower.stdout.split() == ["succeeded", "300", "0"]
    lines = job.log_tail(10_000)
    assert lines[0] == "" and lines[1] == "epoch 1/2" and "epoch 2/2" in lines and lines[-1] == "model saved."
    raw = job.log_path.read_text()
    # every redraw of every step is in the log: nothing lost while no kernel watched
    for step in range(1, 301):
        assert f"| {step}/300 [" in raw


def test_supervisor_killed_marks_the_job_failed_and_kills_the_engine(ws, tmp_path):
    pidfile = tmp_path / "pid"
    job = ws.jobs.submit_command([sys.executable, STANDIN, "--steps", "100000", "--delay", "0.05", "--pidfile", str(pidfile)])
    wait_for(pidfile.exists)
    engine_pid = int(pidfile.read_text().split()[0])
    sup = json.loads((job.run_dir / "supervisor.json").read_text())
    os.kill(sup["pid"], signal.SIGKILL)
    # any process that looks at the job sees the truth: failed, with the reason
    fresh = lora_nb.Workspace(ws.root).jobs.get(job.id)
    assert fresh.wait(10) is JobStatus.FAILED
    assert "supervisor" in fresh.error and "vanished without recording an exit" in fresh.error
    wait_for(lambda: not alive(engine_pid), timeout=5)


def test_two_processes_scheduling_one_queue_never_exceed_the_limit(ws):
    ws.jobs.max_concurrent = 2
    progs = [_kernel(ws.root, f"""
        for i in range(4):
            ws.jobs.submit_command([sys.executable, {STANDIN!r}, "--steps", "6", "--delay", "0.03"], name="k{k}-" + str(i))
        print("ok", flush=True)
    """) for k in range(2)]
    seen = 0
    deadline = time.monotonic() + 90
    done = False
    while not done:
        rows = ws.store.query("SELECT status FROM jobs")
        running = sum(r[0] in ("starting", "running") for r in rows)
        seen = max(seen, running)
        assert running <= 2
        done = len(rows) == 8 and all(r[0] in ("succeeded", "failed", "stopped") for r in rows)
        assert time.monotonic() < deadline
        time.sleep(0.01)
    for p in progs:
        assert p.wait(10) == 0
    assert seen == 2
    assert [j.status for j in ws.jobs.list()] == [JobStatus.SUCCEEDED] * 8


def test_queue_drains_after_every_job_manager_is_gone(ws):
    kernel = _kernel(ws.root, f"""
        ids = [ws.jobs.submit_command([sys.executable, {STANDIN!r}, "--steps", "3", "--delay", "0.02"]).id for _ in range(3)]
        print(" ".join(ids), flush=True)
    """)
    ids = kernel.stdout.readline().split()
    assert kernel.wait(10) == 0  # the submitting process is gone at once
    # nobody in this process touches the jobs (no JobManager here) until all are done
    deadline = time.monotonic() + 60
    while True:
        rows = dict(ws.store.query("SELECT id, status FROM jobs")) if ws.store.schema_version("jobs") else {}
        if rows and all(rows[i] == "succeeded" for i in ids):
            break
        assert time.monotonic() < deadline, rows
        time.sleep(0.1)
