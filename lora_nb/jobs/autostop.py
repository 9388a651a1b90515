"""Stop this Vast.ai instance when the queue drains (off by default).

When a job ends, its supervisor (the process that outlives every kernel) calls :func:`arm`. If the setting
``autostop_when_drained`` is on and nothing is queued, starting or running, it records an *armed* auto-stop
with a fresh token in the ``autostop`` row and starts a detached waiter (``python -m lora_nb.jobs.autostop
<root> <token>``, its own session). The waiter sleeps the grace period (``autostop_grace_seconds``, default
600 s), then, in ONE write transaction, checks that its token is still the armed one, that the setting is
still on and that the queue is still empty, and marks the row *stopping*. Only then does it call the Vast.ai
API (``PUT /api/v0/instances/{id}/ {"state": "stopped"}``), once, and records *stopped* or *failed* with one
sentence.

Race-safe: a job submitted during the grace cancels the stop (the waiter sees it, at the latest in its final
transaction); a job that ends during the grace re-arms with a new token, so the older waiter steps aside and
only one process ever calls the API. The API key comes from the environment (see :mod:`lora_nb.cloud.vast`)
and is never written to the log (``<root>/autostop.log``), the database or a run folder.

>>> import tempfile
>>> from pathlib import Path
>>> from lora_nb.jobs.home import JobsHomeAt
>>> home = JobsHomeAt(Path(tempfile.mkdtemp()))
>>> status(home)["state"], arm(home, env={"CONTAINER_ID": "7"})     # off by default: nothing is armed
('off', None)
"""
from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from ..cloud.vast import VastAPI, instance_id
from ..errors import ConfigError, LoraNbError
from ..progress.events import JobStatus
from . import records

if TYPE_CHECKING:  # pragma: no cover
    from ..ports import JobsHome

__all__ = ["ENABLED", "GRACE", "arm", "status", "configure", "wait_and_stop", "main"]

ENABLED = "autostop_when_drained"
GRACE = "autostop_grace_seconds"
POLL = 1.0                      # how often the waiter looks at the queue during the grace
LOG_NAME = "autostop.log"

MIGRATIONS = ["""
    CREATE TABLE autostop (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        state TEXT NOT NULL,
        token TEXT,
        instance_id INTEGER,
        armed_at REAL,
        act_at REAL,
        waiter_pid INTEGER,
        message TEXT,
        updated_at REAL NOT NULL
    )
"""]

_BUSY = (JobStatus.QUEUED.value, *records.ACTIVE)


def _schema(home: "JobsHome") -> None:
    home.store.ensure_schema("jobs", records.MIGRATIONS)      # a fresh workspace may not have opened its jobs yet
    home.store.ensure_schema("autostop", MIGRATIONS)


def _drained(conn: Any) -> bool:
    marks = ",".join("?" * len(_BUSY))
    return conn.execute(f"SELECT count(*) FROM jobs WHERE status IN ({marks})", _BUSY).fetchone()[0] == 0


def _set(conn: Any, **fields: Any) -> None:
    fields["updated_at"] = time.time()
    if conn.execute("SELECT 1 FROM autostop WHERE id=1").fetchone() is None:
        fields.setdefault("state", "idle")
        cols = ", ".join(["id", *fields])
        conn.execute(f"INSERT INTO autostop({cols}) VALUES({', '.join('?' * (len(fields) + 1))})", (1, *fields.values()))
    else:
        conn.execute(f"UPDATE autostop SET {', '.join(f'{k}=?' for k in fields)} WHERE id=1", tuple(fields.values()))


def _log(home: "JobsHome", text: str) -> None:
    with open(Path(home.root) / LOG_NAME, "a", encoding="utf-8") as f:
        f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {text}\n")


def configure(home: "JobsHome", enabled: bool, grace_seconds: float | None = None) -> None:
    """Turn "stop this instance when the queue drains" on or off (and set the grace period, seconds)."""
    if grace_seconds is not None:
        if not (0 <= float(grace_seconds) <= 24 * 3600):
            raise ConfigError(f"The auto-stop grace period must be 0 to 86400 seconds (got {grace_seconds}).",
                              fix="Give minutes between 0 and 1440, e.g. --grace 10.")
        home.settings.set(GRACE, float(grace_seconds))
    home.settings.set(ENABLED, bool(enabled))
    if not enabled:
        _schema(home)
        with home.store.transaction() as c:
            row = c.execute("SELECT state FROM autostop WHERE id=1").fetchone()
            if row and row[0] == "armed":
                _set(c, state="cancelled", token=None, message="Auto-stop was turned off during the grace period.")


def status(home: "JobsHome") -> dict[str, Any]:
    """``{"enabled", "grace_seconds", "state", "instance_id", "act_at", "message"}``; state is ``off``, ``idle``,
    ``armed`` (stop at ``act_at`` unless a job comes), ``stopping``, ``stopped``, ``cancelled`` or ``failed``."""
    _schema(home)
    enabled = bool(home.settings.get(ENABLED))
    row = home.store.query("SELECT state, instance_id, act_at, message FROM autostop WHERE id=1")
    state, inst, act_at, message = row[0] if row else ("idle", None, None, None)
    if not enabled and state in ("idle", "armed"):
        state = "off"
    return {"enabled": enabled, "grace_seconds": float(home.settings.get(GRACE)), "state": state,
            "instance_id": inst, "act_at": act_at, "message": message}


def arm(home: "JobsHome", env: Mapping[str, str] | None = None, spawn: bool = True) -> str | None:
    """Called when a job ends: arm the auto-stop if it is on and the queue is empty; return the token (or None).

    Arming replaces an earlier armed token, so the waiter of the last job to end is the one that acts."""
    if not home.settings.get(ENABLED):
        return None
    env = os.environ if env is None else env
    _schema(home)
    inst = instance_id(env)
    if inst is None:
        value = home.settings.get("vast_instance_id")
        inst = int(value) if value is not None and str(value).isdigit() else None
    now = time.time()
    with home.store.transaction() as c:
        if inst is None:
            _set(c, state="failed", token=None, message="Auto-stop is on but this is not a Vast.ai instance (no CONTAINER_ID); nothing was stopped.")
            return None
        if not _drained(c):
            return None
        token = secrets.token_hex(8)
        grace = float(home.settings.get(GRACE))
        _set(c, state="armed", token=token, instance_id=inst, armed_at=now, act_at=now + grace, waiter_pid=None,
             message=f"The queue is empty: instance {inst} stops at {time.strftime('%H:%M:%S', time.localtime(now + grace))} unless a job is submitted.")
    _log(home, f"armed: instance {inst} stops in {grace:.0f} s unless a job is submitted")
    if spawn:
        with open(Path(home.root) / LOG_NAME, "ab") as log:
            proc = subprocess.Popen([sys.executable, "-m", "lora_nb.jobs.autostop", str(home.root), token],
                                    stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True, close_fds=True,
                                    env={**os.environ, **dict(env)})
        with home.store.transaction() as c:
            c.execute("UPDATE autostop SET waiter_pid=? WHERE id=1 AND token=?", (proc.pid, token))
    return token


def _still_mine(home: "JobsHome", token: str) -> tuple[bool, float]:
    row = home.store.query("SELECT token, state, act_at FROM autostop WHERE id=1")
    return (bool(row) and row[0][0] == token and row[0][1] == "armed"), (row[0][2] if row else 0.0) or 0.0


def wait_and_stop(home: "JobsHome", token: str, env: Mapping[str, str] | None = None,
                  sleep: Callable[[float], None] = time.sleep) -> str:
    """The waiter: sleep out the grace, re-check in one transaction, then stop the instance once.

    Returns the final state (``stopped``, ``cancelled``, ``failed``, or ``superseded`` when a later arm took
    over). API errors are recorded as one sentence; nothing is raised."""
    _schema(home)
    while True:
        mine, act_at = _still_mine(home, token)
        if not mine:
            return "superseded"
        busy = home.store.query(f"SELECT count(*) FROM jobs WHERE status IN ({','.join('?' * len(_BUSY))})", _BUSY)[0][0]
        if busy or time.time() >= act_at:
            break
        sleep(min(POLL, max(0.0, act_at - time.time())))
    with home.store.transaction() as c:
        row = c.execute("SELECT token, state, instance_id FROM autostop WHERE id=1").fetchone()
        if row is None or row[0] != token or row[1] != "armed":
            return "superseded"
        inst = int(row[2])
        if not home.settings.get(ENABLED):
            _set(c, state="cancelled", token=None, message="Auto-stop was turned off during the grace period.")
            final = "cancelled"
        elif not _drained(c):
            _set(c, state="cancelled", token=None, message="A job was submitted during the grace period; the instance keeps running.")
            final = "cancelled"
        else:
            _set(c, state="stopping", message=f"Stopping instance {inst} through the Vast.ai API.")
            final = "stopping"
    if final == "cancelled":
        _log(home, "cancelled: a job was submitted (or auto-stop turned off) during the grace period")
        return final
    try:
        VastAPI.from_env(env).stop(inst)
    except LoraNbError as e:
        message = f"Auto-stop could not stop instance {inst}: {e}"
        with home.store.transaction() as c:
            _set(c, state="failed", token=None, message=message)
        _log(home, f"failed: {message}")
        return "failed"
    with home.store.transaction() as c:
        _set(c, state="stopped", token=None, message=f"Instance {inst} was stopped because the queue drained.")
    _log(home, f"stopped: instance {inst} (the queue drained)")
    return "stopped"


def main(argv: list[str] | None = None) -> int:
    """``python -m lora_nb.jobs.autostop <root> <token>``: the detached waiter."""
    from .home import JobsHomeAt

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m lora_nb.jobs.autostop <workspace> <token>", file=sys.stderr)
        return 2
    home = JobsHomeAt(Path(args[0]))
    try:
        wait_and_stop(home, args[1])
    except LoraNbError as e:     # e.g. the database stayed locked: one sentence, no traceback
        _log(home, f"failed: {e}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
