"""Job rows in the workspace database: the schema and the few queries everything shares.

A job is a row in ``jobs`` plus a run folder ``runs/<id>/``. ``job_events`` keeps
the events worth keeping after the process is gone (artifacts, hints, status).
"""
from __future__ import annotations

import json
import os
import secrets
import time
from pathlib import Path
from typing import Any, Sequence

from ..progress.events import JobStatus
from ..store import Store
from .models import JSON_COLUMNS, JobSnapshot, JobSpec

__all__ = ["MIGRATIONS", "new_job_id", "snapshot_from_row", "load", "load_all", "insert", "update", "add_event", "events", "ACTIVE"]

MIGRATIONS = [
    """
    CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        seq INTEGER NOT NULL,
        name TEXT NOT NULL,
        kind TEXT NOT NULL,
        status TEXT NOT NULL,
        argv TEXT NOT NULL,
        cwd TEXT,
        env TEXT NOT NULL DEFAULT '{}',
        parser TEXT NOT NULL,
        parser_options TEXT NOT NULL DEFAULT '{}',
        meta TEXT NOT NULL DEFAULT '{}',
        uses_gpu INTEGER NOT NULL DEFAULT 1,
        run_dir TEXT NOT NULL,
        created_at REAL NOT NULL,
        claimed_at REAL,
        started_at REAL,
        ended_at REAL,
        supervisor_pid INTEGER,
        supervisor_started REAL,
        engine_pid INTEGER,
        engine_started REAL,
        exit_code INTEGER,
        error TEXT,
        progress TEXT NOT NULL DEFAULT '{}',
        stop_requested REAL,
        stop_grace REAL
    );
    CREATE INDEX jobs_status ON jobs(status, seq);
    CREATE TABLE job_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
        time REAL NOT NULL,
        kind TEXT NOT NULL,
        data TEXT NOT NULL
    );
    CREATE INDEX job_events_job ON job_events(job_id, id);
    """,
    # 2: GPU slots are devices: how many a job holds, which slots and which device indices it was given
    """
    ALTER TABLE jobs ADD COLUMN gpus INTEGER NOT NULL DEFAULT 1;
    UPDATE jobs SET gpus = uses_gpu;
    ALTER TABLE jobs ADD COLUMN slots TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE jobs ADD COLUMN devices TEXT NOT NULL DEFAULT '[]';
    """,
    # 3: where a job runs: 'local' or a Ray dashboard address, and the Ray submission id (re-attach by it)
    """
    ALTER TABLE jobs ADD COLUMN executor TEXT NOT NULL DEFAULT 'local';
    ALTER TABLE jobs ADD COLUMN remote_id TEXT;
    """,
]

ACTIVE = (JobStatus.STARTING.value, JobStatus.RUNNING.value)


def new_job_id() -> str:
    """Sortable and unique: ``20261122-143012-a3f9``."""
    return time.strftime("%Y%m%d-%H%M%S", time.localtime()) + "-" + secrets.token_hex(2)


_COLUMNS = [f for f in JobSnapshot.model_fields if f not in ("artifacts", "hints")]
# The artifacts and hints ride along in the same query (one read, one moment), in the order they were added.
_EVENTS = ("(SELECT json_group_array(json_array(e.id, e.kind, json(e.data))) FROM job_events e "
           "WHERE e.job_id = jobs.id AND e.kind IN ('artifact', 'hint'))")
_SELECT = "SELECT " + ", ".join(_COLUMNS) + ", " + _EVENTS + " FROM jobs"


def snapshot_from_row(row: Sequence[Any]) -> JobSnapshot:
    """The one place a row becomes a :class:`JobSnapshot`."""
    d = dict(zip(_COLUMNS, row))
    for key in JSON_COLUMNS:
        d[key] = json.loads(d[key]) if d[key] else ([] if key in ("argv", "slots", "devices") else {})
    artifacts: dict[str, dict[str, Any]] = {}
    hints: list[str] = []
    for _, kind, data in sorted(json.loads(row[len(_COLUMNS)] or "[]"), key=lambda e: e[0]):
        if kind == "artifact":
            artifacts[data.get("path", "")] = data      # a path seen again keeps its place, with its newest kind
        else:
            hints.append(data.get("text", ""))
    return JobSnapshot(**d, artifacts=tuple(artifacts.values()), hints=tuple(hints))


def load(store: Store, job_id: str) -> JobSnapshot | None:
    rows = store.query(_SELECT + " WHERE id=?", (job_id,))
    return snapshot_from_row(rows[0]) if rows else None


def load_all(store: Store, where: str = "", params: tuple = ()) -> list[JobSnapshot]:
    return [snapshot_from_row(r) for r in store.query(f"{_SELECT} {where} ORDER BY seq", params)]


def insert(conn: Any, spec: JobSpec, status: JobStatus, run_dir: Path, created_at: float) -> None:
    """Insert the row of a submitted job, every spec column from the spec (inside the caller's transaction)."""
    cols = dict(spec.row(), status=status.value, run_dir=str(run_dir), created_at=created_at)
    cols["seq"] = conn.execute("SELECT coalesce(max(seq), 0) + 1 FROM jobs").fetchone()[0]
    conn.execute(f"INSERT INTO jobs({', '.join(cols)}) VALUES({', '.join('?' * len(cols))})", tuple(cols.values()))


def update(conn: Any, job_id: str, **fields: Any) -> None:
    """Set columns of one job (inside the caller's transaction)."""
    for key in JSON_COLUMNS:
        if key in fields:
            fields[key] = json.dumps(fields[key])
    if isinstance(fields.get("status"), JobStatus):
        fields["status"] = fields["status"].value
    sets = ", ".join(f"{k}=?" for k in fields)
    conn.execute(f"UPDATE jobs SET {sets} WHERE id=?", (*fields.values(), job_id))


def add_event(conn: Any, job_id: str, kind: str, data: dict[str, Any], when: float | None = None) -> None:
    conn.execute("INSERT INTO job_events(job_id, time, kind, data) VALUES(?, ?, ?, ?)",
                 (job_id, when or time.time(), kind, json.dumps(data, default=str)))


def events(store: Store, job_id: str, kind: str | None = None) -> list[tuple[float, str, dict[str, Any]]]:
    sql = "SELECT time, kind, data FROM job_events WHERE job_id=?" + (" AND kind=?" if kind else "") + " ORDER BY id"
    params = (job_id, kind) if kind else (job_id,)
    return [(t, k, json.loads(d)) for t, k, d in store.query(sql, params)]


def process_identity(pid: int) -> float | None:
    """The start time of a live, non-zombie process ``pid``; None if gone or a zombie (reaped if ours)."""
    import psutil

    try:
        p = psutil.Process(pid)
        if p.status() == psutil.STATUS_ZOMBIE:
            try:  # a supervisor that died as our child: reap it so the pid can go
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
            return None
        return p.create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def same_process(pid: int | None, started: float | None) -> bool:
    """True if ``pid`` is still the process that started at ``started`` (pid reuse safe)."""
    if not pid or started is None:
        return False
    now = process_identity(pid)
    return now is not None and abs(now - started) < 0.05
