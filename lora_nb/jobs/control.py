"""Mid-run control: ask a running training job to save or sample NOW, where its engine offers that.

An engine says at launch what it offers, in the job's ``meta["controls"]`` (written by
``lora_nb.engines.launch`` from the engine's LaunchPlan), one entry per action:

- ``{"flag_db": path, "table": "Job", "row": id, "column": "save_now"}``: the trainer polls that SQLite
  column after every step, acts, and clears it (ai-toolkit's ``diffusion_trainer``);
- ``{"unavailable": "one sentence why"}``: the engine cannot do it (sd-scripts reads no flag and
  handles no signal for it).

The job system knows no engine: it reads the entry and sets the flag.

>>> reason({"controls": {"save": {"unavailable": "sd-scripts cannot."}}}, "save")
'sd-scripts cannot.'
>>> reason({}, "sample")
'This run was started without mid-run control (an older lora-nb, or not a training run).'
"""
from __future__ import annotations

import sqlite3
from typing import Any

from ..errors import JobError

__all__ = ["ACTIONS", "reason", "reasons", "request"]

ACTIONS = {"save": "save a checkpoint now", "sample": "make sample images now"}
_NO_CONTROLS = "This run was started without mid-run control (an older lora-nb, or not a training run)."


def _entry(meta: dict[str, Any], action: str) -> dict[str, Any] | None:
    controls = meta.get("controls")
    entry = controls.get(action) if isinstance(controls, dict) else None
    return entry if isinstance(entry, dict) else None


def reason(meta: dict[str, Any], action: str) -> str | None:
    """Why ``action`` ("save" or "sample") cannot be asked of the run with this ``meta``; None when it can."""
    if action not in ACTIONS:
        raise JobError(f"There is no mid-run action '{action}'.", fix="Use one of: " + ", ".join(ACTIONS) + ".")
    entry = _entry(meta, action)
    if entry is None:
        return _NO_CONTROLS
    if entry.get("unavailable"):
        return str(entry["unavailable"])
    if not entry.get("flag_db"):
        return _NO_CONTROLS
    return None


def reasons(snap: Any) -> dict[str, str | None]:
    """``{action: why not | None}`` for a job snapshot (a JobSnapshot): only a running job takes requests."""
    from ..progress.events import JobStatus

    if snap.status is not JobStatus.RUNNING:
        return {a: f"The job is {snap.status.value}, not running." for a in ACTIONS}
    return {a: reason(snap.meta, a) for a in ACTIONS}


def request(meta: dict[str, Any], action: str) -> None:
    """Set the flag the trainer polls for ``action``; raises JobError with the reason when it cannot."""
    why = reason(meta, action)
    if why:
        raise JobError(f"Cannot {ACTIONS[action]}: {why[:1].lower()}{why[1:]}",
                       fix="Use the run's save/sample schedule (save_every_n_steps, sample_every_n_steps) instead.")
    entry = _entry(meta, action) or {}
    table, column = str(entry.get("table", "Job")), str(entry["column"])
    if not (table.isidentifier() and column.isidentifier()):
        raise JobError(f"The run's control entry names an invalid table or column ({table}.{column}).", fix="Start the run again.")
    try:
        conn = sqlite3.connect(str(entry["flag_db"]), timeout=30.0)
        try:
            with conn:
                changed = conn.execute(f"UPDATE {table} SET {column} = 1 WHERE id = ?", (str(entry["row"]),)).rowcount
        finally:
            conn.close()
    except sqlite3.Error as e:
        raise JobError(f"Could not set the {column} flag in {entry['flag_db']}: {e}.", fix="Check the run folder is still there and writable.") from None
    if changed != 1:
        raise JobError(f"The run's flag store {entry['flag_db']} has no row for it.", fix="Start the run again.")
