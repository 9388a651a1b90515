"""The Ray executor against a real Ray cluster on this machine (tests/ray_cluster.py): a head node
and a second node started into the same cluster with ``ray start``, 2 logical GPUs each (Ray
counts them; the jobs are small CPU Python programs standing in for trainers). Jobs go through
the ordinary JobManager; only the workspace's executor setting differs from local runs.

The tests run in order on one cluster: the node-killed test leaves one node, the last test stops
the cluster.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import textwrap
import time

import psutil
import pytest

import lora_nb
from lora_nb.errors import ClusterError
from lora_nb.jobs import records
from lora_nb.progress.events import JobStatus

from support import standin, wait_for

pytest.importorskip("ray.job_submission", reason="ray[default] is installed by scripts/test.sh (the dev extra)")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def cluster():
    from ray_cluster import LocalRayCluster

    c = LocalRayCluster(gpus_per_node=2, cpus_per_node=2, workers=1).start()
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture
def rws(ws, cluster):
    """The test's workspace, its jobs sent to the Ray cluster."""
    assert ws.jobs.set_executor(cluster.address) == cluster.address
    return ws


def _py(code: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code)]


def _numbers(log: str, tag: str) -> list[int]:
    return [int(line.split()[1]) for line in log.splitlines() if line.startswith(tag + " ")]


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_six_one_gpu_jobs_on_two_nodes_run_at_most_four_at_once_with_complete_logs(rws, tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    jobs = []
    for i in range(6):
        jobs.append(rws.jobs.submit_command(_py(f"""
            import json, os, time
            start = time.time()
            for n in range(200):
                print("line", n, flush=True)
            time.sleep(6)
            json.dump({{"start": start, "end": time.time(), "cuda": os.environ.get("CUDA_VISIBLE_DEVICES"),
                       "job": os.environ.get("LORA_NB_JOB_ID")}}, open({str(marks)!r} + "/{i}.json", "w"))
        """), name=f"ray-{i}", gpus=1))
    for job in jobs:
        assert job.wait(420) is JobStatus.SUCCEEDED, (job.error, (job.run_dir / "supervisor.err").read_text()[-2000:])
    spans = [json.loads((marks / f"{i}.json").read_text()) for i in range(6)]
    # never more than the cluster's 4 GPUs busy at once, and really in parallel (more than one at a time)
    most = max(sum(1 for s in spans if s["start"] <= t["start"] < s["end"]) for t in spans)
    assert 2 <= most <= 4, spans
    # Ray pinned each job to one of its node's (logical) GPUs, and the job knows who it is
    assert all(s["cuda"] in ("0", "1") for s in spans), spans
    assert sorted(s["job"] for s in spans) == sorted(j.id for j in jobs)
    for job in jobs:
        snap = job.snapshot()
        assert snap.executor == rws.jobs.executor and snap.remote_id and snap.remote_id.startswith("lora-nb-" + job.id)
        assert snap.exit_code == 0 and snap.started_at and snap.ended_at
        log = job.log_path.read_text()
        assert _numbers(log, "line") == list(range(200))          # every line, once, in order
        assert "Running entrypoint" not in log                    # Ray's own preamble stays out of our log
        assert job.log_tail(1) == ["line 199"]
        kinds = [e[2].get("status") for e in records.events(rws.store, job.id, "status")]
        assert kinds[0] == "queued" and "running" in kinds and kinds[-1] == "succeeded"


def test_a_trainer_and_a_task_keep_their_progress_artifacts_and_outputs_through_ray(rws, capsys):
    out = rws.root / "outputs"        # inside the workspace: the shared path every node sees
    train = rws.jobs.submit_command(standin("--steps", "50", "--delay", "0.02", "--out", str(out)), name="standin-train")
    import lora_nb.tasks as tasks_pkg  # a task module written on the fly (removed afterwards), as in test_lifecycle

    target = os.path.join(os.path.dirname(tasks_pkg.__file__), "_selftest_ray_task.py")
    with open(target, "w") as f:
        f.write("from lora_nb.tasks.progress_reporter import Reporter, load_params\n"
                "p = load_params(); r = Reporter(total=p['n'], unit='img')\n"
                "for i in range(1, p['n'] + 1): r.progress(i)\n"
                "r.artifact(p['workspace'] + '/x.txt', 'file')\n")
    try:
        task = rws.jobs.submit_task("_selftest_ray_task", {"n": 7})
        assert task.wait(300) is JobStatus.SUCCEEDED, task.error
    finally:
        os.remove(target)
    snap = task.snapshot()
    assert snap.executor == rws.jobs.executor and snap.remote_id and snap.gpus == 0
    assert snap.progress.step == 7 and snap.progress.rate_unit == "img/s"
    assert task.artifacts == [{"path": str(rws.root) + "/x.txt", "kind": "file"}]
    assert train.wait(300) is JobStatus.SUCCEEDED, train.error
    p = train.progress
    assert (p.step, p.total_steps) == (50, 50)
    assert train.log_tail(1) == ["model saved."]
    assert (out / "standin-000001.safetensors").is_file()   # written on the node straight into the workspace
    from lora_nb.cli import main

    assert main(["--workspace", str(rws.root), "jobs", "show", train.id]) == 0
    shown = capsys.readouterr().out
    assert f"runs on: Ray cluster {rws.jobs.executor}, submission {train.snapshot().remote_id}" in shown
    assert "status: succeeded" in shown


def test_stop_of_a_job_that_ignores_sigterm_leaves_no_process(rws):
    job = rws.jobs.submit_command(_py("""
        import os, signal, subprocess, sys, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        child = subprocess.Popen([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"])
        print("pids", os.getpid(), child.pid, flush=True)
        while True:
            time.sleep(0.2)
    """), name="stubborn")
    line = wait_for(lambda: next((l for l in job.log_tail(50) if l.startswith("pids ")), None), timeout=240, what="the job's pids")
    pids = [int(p) for p in line.split()[1:]]
    assert all(not _gone(p) for p in pids)
    assert job.status is JobStatus.RUNNING
    assert job.stop(grace=5, wait=True) is JobStatus.STOPPED
    wait_for(lambda: all(_gone(p) for p in pids), timeout=20, what="the job's process tree to be gone")
    assert job.snapshot().error is None


def test_supervisor_killed_mid_run_a_new_manager_reattaches_and_the_log_is_complete(rws):
    job = rws.jobs.submit_command(_py("""
        import time
        for n in range(300):
            print("tick", n, flush=True)
            time.sleep(0.05)
    """), name="reattach")
    wait_for(lambda: len(_numbers(job.log_path.read_text() if job.log_path.exists() else "", "tick")) >= 40,
             timeout=240, what="the first ticks in the log")
    first = job.snapshot()
    assert first.status is JobStatus.RUNNING and first.supervisor_pid
    os.kill(first.supervisor_pid, signal.SIGKILL)            # the kernel's host side dies with everything local
    wait_for(lambda: _gone(first.supervisor_pid), timeout=10)
    fresh = lora_nb.Workspace(rws.root)                       # a new kernel: its JobManager re-attaches
    again = fresh.jobs.get(job.id)
    assert again.snapshot().status in (JobStatus.STARTING, JobStatus.RUNNING)
    assert again.wait(240) is JobStatus.SUCCEEDED, again.error
    snap = again.snapshot()
    assert snap.supervisor_pid != first.supervisor_pid
    assert _numbers(again.log_path.read_text(), "tick") == list(range(300))   # nothing lost, nothing twice
    reasons = [e[2].get("reason", "") for e in records.events(rws.store, job.id, "status")]
    assert any(r.startswith("re-attaching") for r in reasons)


def test_a_worker_node_killed_mid_job_fails_its_jobs_with_the_reason(rws, cluster):
    jobs = [rws.jobs.submit_command(_py("""
        import time
        for n in range(100000):
            print("beat", n, flush=True)
            time.sleep(0.5)
    """), name=f"long-{i}", gpus=1) for i in range(4)]
    wait_for(lambda: all(j.snapshot().status is JobStatus.RUNNING for j in jobs), timeout=300, what="4 jobs running")
    wait_for(lambda: all("beat 1" in j.log_path.read_text() for j in jobs), timeout=120, what="output of all 4 jobs")
    assert cluster.kill_worker_node() > 0
    # two of the four ran on the killed node (4 GPUs, 2 per node): those fail with Ray's reason
    wait_for(lambda: sum(j.snapshot().status is JobStatus.FAILED for j in jobs) == 2, timeout=180, poll=1,
             what="the dead node's two jobs to fail")
    failed = [j for j in jobs if j.snapshot().status is JobStatus.FAILED]
    for j in failed:
        assert "Ray" in j.error and j.error.startswith("The job failed:"), j.error
    survivors = [j for j in jobs if j not in failed]
    assert all(j.snapshot().status is JobStatus.RUNNING for j in survivors)
    for j in survivors:
        assert j.stop(grace=5) is JobStatus.STOPPED


def test_a_stopped_cluster_gives_clear_errors_not_hangs(rws, cluster):
    rws.settings.set("ray_unreachable_seconds", 5.0)
    job = rws.jobs.submit_command(_py("""
        import os, time
        print("pid", os.getpid(), flush=True)
        time.sleep(600)
    """), name="orphan")
    line = wait_for(lambda: next((l for l in job.log_tail(20) if l.startswith("pid ")), None), timeout=240, what="the job's pid")
    cluster.stop()
    # the job is failed with the reason within the bounded retry, never left running
    assert job.wait(90) is JobStatus.FAILED
    assert "stopped answering" in job.error and cluster.address in job.error, job.error
    assert _gone(int(line.split()[1]))
    t = time.monotonic()
    with pytest.raises(ClusterError, match="cannot be reached"):
        rws.jobs.submit_command([sys.executable, "-c", "pass"], name="nowhere")
    with pytest.raises(ClusterError, match="cannot be reached"):
        rws.jobs.set_executor(cluster.address)
    assert time.monotonic() - t < 30
    assert [j.name for j in rws.jobs.list()] == ["orphan"]            # nothing half-submitted
    assert rws.jobs.executor == cluster.address
    assert rws.jobs.set_executor("local") == "local"                  # and back to local works at once
    assert rws.jobs.submit_command([sys.executable, "-c", "print('here')"]).wait(60) is JobStatus.SUCCEEDED
