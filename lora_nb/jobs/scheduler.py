"""Picks queued jobs and starts their supervisors. Shared by every kernel and supervisor.

``kick(ws)`` claims as many queued jobs as the GPU slots allow inside ONE
``BEGIN IMMEDIATE`` transaction (so two processes never claim past the limit),
then starts a supervisor for each, each GPU job with the slots (devices) it holds
(:mod:`lora_nb.jobs.slots`). Jobs with ``gpus=0`` (downloads, uploads) take no slot
and start at once. Every JobManager calls it after a
submit, and every supervisor calls it when its job ends, so the queue keeps
draining after every kernel and browser tab is gone.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..progress.events import JobStatus
from . import records, slots
from .models import JobSnapshot

if TYPE_CHECKING:  # pragma: no cover
    from ..ports import JobsHome

__all__ = ["kick", "claim", "sweep", "STARTING_TIMEOUT"]

STARTING_TIMEOUT = 60.0   # a claimed job whose supervisor never showed up after this long has failed


def claim(ws: "JobsHome") -> list[str]:
    """Mark the queued jobs that may start now as ``starting``, giving each its GPU slots; return their ids.

    GPU jobs start in queue order: one that must wait for free devices (a 2-GPU run while one is
    free) holds back the GPU jobs behind it, so a big run is never starved by a stream of small
    ones. Jobs that hold no GPU start at once. A job asking for more devices than the slots have
    fails with that reason instead of waiting forever.
    """
    pool = slots.slot_devices(ws.settings)
    most = slots.distinct_count(pool)
    now = time.time()
    with ws.store.transaction() as c:
        held = held_slots(c)
        claimed: dict[str, list[int]] = {}
        waiting = False
        for job_id, gpus, executor in c.execute("SELECT id, gpus, executor FROM jobs WHERE status=? ORDER BY seq",
                                                (JobStatus.QUEUED.value,)).fetchall():
            if executor != "local":    # a Ray job: Ray places and queues it by its GPUs; no local slot
                claimed[job_id] = []
            elif gpus:
                if gpus > most:
                    error = (f"The job needs {gpus} GPUs but the GPU slots are on {most} device{'s' * (most != 1)}; "
                             "list more with ws.jobs.set_gpu_slots([...]) or ask for fewer.")
                    records.update(c, job_id, status=JobStatus.FAILED, ended_at=now, error=error)
                    records.add_event(c, job_id, "status", {"status": "failed", "reason": error}, now)
                    continue
                got = None if waiting else slots.pick_free(pool, held, gpus)
                if got is None:
                    waiting = True
                    continue
                held.update(got)
                claimed[job_id] = got
            else:
                claimed[job_id] = []
        for job_id, got in claimed.items():
            records.update(c, job_id, status=JobStatus.STARTING, claimed_at=now, slots=got, devices=[pool[i] for i in got])
            records.add_event(c, job_id, "status", {"status": "starting", **({"devices": [pool[i] for i in got]} if got else {})}, now)
    return list(claimed)


def held_slots(c: Any) -> set[int]:
    """The slots that starting and running jobs hold (read inside the caller's transaction)."""
    held: set[int] = set()
    for (taken,) in c.execute("SELECT slots FROM jobs WHERE gpus>0 AND status IN (?, ?)", records.ACTIVE).fetchall():
        held.update(json.loads(taken or "[]"))
    return held


def take_free_now(c: Any, ws: "JobsHome", gpus: int) -> tuple[list[int], list[int]]:
    """For a job that must start at once (its secrets are never stored, so it cannot wait in the queue):
    ``gpus`` free slots now and their devices, inside the caller's transaction, or a :class:`JobError`."""
    from ..errors import JobError

    pool = slots.slot_devices(ws.settings)
    got = slots.pick_free(pool, held_slots(c), gpus)
    if got is None:
        raise JobError(f"A job with a secret in its environment must start at once, but the {gpus} GPU{'s' * (gpus != 1)} it asks "
                       f"for {'are' if gpus != 1 else 'is'} not free now (its secrets are never stored, so it cannot wait in the queue).",
                       fix="Submit it when the running jobs end, pass gpus=0 if it needs no GPU, or let the program read "
                           "the token itself (e.g. `huggingface-cli login`) and submit it without the secret.")
    return got, [pool[i] for i in got]


def start_supervisor(ws: "JobsHome", job_id: str, extra_env: dict[str, str] | None = None) -> subprocess.Popen | None:
    """Start ``python -m lora_nb.jobs.supervise <run_dir>`` in a new session; record its pid."""
    rec = records.load(ws.store, job_id)
    if rec is None:
        return None
    env = dict(os.environ)
    env.update(extra_env or {})
    env["LORA_NB_HOME"] = str(ws.root)
    env["PYTHONUNBUFFERED"] = "1"
    try:
        with open(rec.run_dir / "supervisor.err", "ab") as err:
            proc = subprocess.Popen([sys.executable, "-m", "lora_nb.jobs.supervise", str(rec.run_dir)],
                                    stdin=subprocess.DEVNULL, stdout=err, stderr=err, env=env,
                                    start_new_session=True, close_fds=True, cwd=str(rec.run_dir))
    except OSError as e:
        with ws.store.transaction() as c:
            records.update(c, job_id, status=JobStatus.FAILED, ended_at=time.time(), error=f"The supervisor could not be started: {e}.")
        return None
    started = records.process_identity(proc.pid)
    with ws.store.transaction() as c:
        # the supervisor may already have written its own record; only fill in what is missing
        c.execute("UPDATE jobs SET supervisor_pid=coalesce(supervisor_pid, ?), supervisor_started=coalesce(supervisor_started, ?) WHERE id=?",
                  (proc.pid, started, job_id))
    # reap it when it ends, so it never lingers as a zombie of this process
    threading.Thread(target=proc.wait, name=f"reap-{job_id}", daemon=True).start()
    return proc


def kick(ws: "JobsHome", extra_env: dict[str, dict[str, str]] | None = None) -> list[str]:
    """Sweep dead jobs, claim what may start, and start it. Returns the ids started."""
    sweep(ws)
    started = claim(ws)
    for job_id in started:
        start_supervisor(ws, job_id, (extra_env or {}).get(job_id))
    return started


def sweep(ws: "JobsHome") -> list[str]:
    """Mark jobs whose supervisor is gone without recording an exit as failed; return their ids."""
    failed = []
    for rec in records.load_all(ws.store, "WHERE status IN (?, ?)", records.ACTIVE):
        reason = vanished_reason(rec)
        if reason and mark_vanished(ws, rec, reason):
            failed.append(rec.id)
    return failed


def vanished_reason(rec: JobSnapshot) -> str | None:
    """Why an active job is dead, or None if its supervisor is alive (or still being started)."""
    if rec.supervisor_pid is None:
        if rec.claimed_at is not None and time.time() - rec.claimed_at > STARTING_TIMEOUT:
            return "the process that claimed it died before its supervisor started"
        return None
    if rec.supervisor_started is None:
        return None if records.process_identity(rec.supervisor_pid) is not None else \
            f"its supervisor (pid {rec.supervisor_pid}) vanished without recording an exit"
    if records.same_process(rec.supervisor_pid, rec.supervisor_started):
        return None
    return f"its supervisor (pid {rec.supervisor_pid}) vanished without recording an exit"


def mark_vanished(ws: "JobsHome", rec: JobSnapshot, reason: str) -> bool:
    """Fail a job whose supervisor died; kill what is left of its engine. False if it ended meanwhile.

    A Ray job is not failed: it runs on the cluster, not under its supervisor, so a new supervisor
    is started that re-attaches to it by its submission id (:func:`reattach`)."""
    if rec.executor != "local" and rec.remote_id:
        reattach(ws, rec)
        return False
    kill_engine_group(rec)
    now = time.time()
    with ws.store.transaction() as c:
        row = c.execute("SELECT status, supervisor_pid FROM jobs WHERE id=?", (rec.id,)).fetchone()
        if row is None or row[0] not in records.ACTIVE or row[1] != rec.supervisor_pid:
            return False
        stopped = rec.stop_requested is not None
        status = JobStatus.STOPPED if stopped else JobStatus.FAILED
        error = None if stopped else f"The job failed: {reason}."
        records.update(c, rec.id, status=status, ended_at=now, error=error)
        records.add_event(c, rec.id, "status", {"status": status.value, "reason": reason}, now)
    try:
        _write_exit(rec.run_dir, {"status": status.value, "exit_code": None, "ended_at": now, "error": error})
    except OSError:
        pass
    return True


def reattach(ws: "JobsHome", rec: JobSnapshot) -> bool:
    """Start a new supervisor for a Ray job whose supervisor died (at most one process wins); True if this one did."""
    now = time.time()
    with ws.store.transaction() as c:
        row = c.execute("SELECT status, supervisor_pid FROM jobs WHERE id=?", (rec.id,)).fetchone()
        if row is None or row[0] not in records.ACTIVE or row[1] != rec.supervisor_pid:
            return False
        records.update(c, rec.id, supervisor_pid=None, supervisor_started=None, claimed_at=now)
        records.add_event(c, rec.id, "status", {"status": rec.status.value, "reason": f"re-attaching: {reason_text(rec)}"}, now)
    start_supervisor(ws, rec.id)
    return True


def reason_text(rec: JobSnapshot) -> str:
    return f"its supervisor (pid {rec.supervisor_pid}) died; a new one follows Ray job {rec.remote_id}"


def kill_engine_group(rec: JobSnapshot) -> None:
    """SIGKILL the engine's process group (and every descendant we can find) if it is still the same process."""
    import signal

    import psutil

    if not records.same_process(rec.engine_pid, rec.engine_started):
        return
    procs = []
    try:
        root = psutil.Process(rec.engine_pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        pass
    try:
        os.killpg(rec.engine_pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    for p in procs:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass


def _write_exit(run_dir: Path, data: dict) -> None:
    import json

    tmp = run_dir / "exit.json.tmp"
    tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
    os.replace(tmp, run_dir / "exit.json")
