"""Job rows in the workspace database: the schema and the few queries everything shares.

A job is a row in ``jobs`` plus a run folder ``runs/<id>/``. ``job_events`` keeps
the events worth keeping after the process is gone (artifacts, hints, status).
"""
from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..store import Store
from ..progress.events import JobStatus

__all__ = ["MIGRATIONS", "JobRecord", "new_job_id", "load", "load_all", "update", "add_event", "events", "ACTIVE"]

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
]

ACTIVE = (JobStatus.STARTING.value, JobStatus.RUNNING.value)


def new_job_id() -> str:
    """Sortable and unique: ``20261122-143012-a3f9``."""
    return time.strftime("%Y%m%d-%H%M%S", time.localtime()) + "-" + secrets.token_hex(2)


@dataclass(frozen=True)
class JobRecord:
    """One row of ``jobs``, decoded."""

    id: str
    seq: int
    name: str
    kind: str
    status: JobStatus
    argv: list[str]
    cwd: str | None
    env: dict[str, str]
    parser: str
    parser_options: dict[str, Any]
    meta: dict[str, Any]
    uses_gpu: bool
    run_dir: Path
    created_at: float
    claimed_at: float | None
    started_at: float | None
    ended_at: float | None
    supervisor_pid: int | None
    supervisor_started: float | None
    engine_pid: int | None
    engine_started: float | None
    exit_code: int | None
    error: str | None
    progress: dict[str, Any]
    stop_requested: float | None
    stop_grace: float | None

    @classmethod
    def from_row(cls, row: Any) -> "JobRecord":
        d = dict(zip(_COLUMNS, row))
        for key in ("argv", "env", "parser_options", "meta", "progress"):
            d[key] = json.loads(d[key]) if d[key] else ({} if key != "argv" else [])
        d["status"] = JobStatus(d["status"])
        d["uses_gpu"] = bool(d["uses_gpu"])
        d["run_dir"] = Path(d["run_dir"])
        return cls(**d)


_COLUMNS = [f for f in JobRecord.__dataclass_fields__]
_SELECT = "SELECT " + ", ".join(_COLUMNS) + " FROM jobs"


def load(store: Store, job_id: str) -> JobRecord | None:
    rows = store.query(_SELECT + " WHERE id=?", (job_id,))
    return JobRecord.from_row(rows[0]) if rows else None


def load_all(store: Store, where: str = "", params: tuple = ()) -> list[JobRecord]:
    return [JobRecord.from_row(r) for r in store.query(f"{_SELECT} {where} ORDER BY seq", params)]


def update(conn: Any, job_id: str, **fields: Any) -> None:
    """Set columns of one job (inside the caller's transaction)."""
    for key in ("argv", "env", "parser_options", "meta", "progress"):
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
