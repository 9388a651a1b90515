"""A job's three shapes: what was asked for, what was submitted, and what it is now.

- :class:`SubmitRequest` — what a caller asks for (``ws.jobs.submit_command`` builds it).
- :class:`JobSpec` — the request as submitted: its id, workspace and the names (never the values) of
  secret environment variables added. It is written once to ``runs/<id>/job.json``, it is the one
  source of the job's database row (:func:`lora_nb.jobs.records.insert`), and the supervisor reads
  it back as this same model.
- :class:`JobSnapshot` — one immutable read of the job's row plus its artifacts and hints, taken in
  one query, so everything shown from it belongs to the same moment. ``Job.snapshot()`` returns one;
  ``Job.describe()`` is its JSON form. Frames of the panels and lines of the CLI are drawn from one
  snapshot each.

>>> spec = JobSpec(id="20261202-120000-ab12", workspace="/w", name="hello", argv=["echo", "hi"])
>>> spec.row()["argv"], spec.row()["gpus"]
('["echo", "hi"]', 1)
>>> JobSpec.model_validate_json(spec.model_dump_json()) == spec
True
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..progress.events import JobStatus, Progress

__all__ = ["SubmitRequest", "JobSpec", "JobSnapshot", "JSON_COLUMNS"]

JSON_COLUMNS = ("argv", "env", "parser_options", "meta", "progress", "slots", "devices")   # stored as JSON text in the row


class SubmitRequest(BaseModel):
    """What a caller asks for when submitting a command job."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    argv: list[str]
    name: str | None = None
    cwd: str | None = None
    env: dict[str, str] = Field(default_factory=dict)
    parser: str = "plain"
    parser_options: dict[str, Any] = Field(default_factory=dict)
    kind: str = "command"
    meta: dict[str, Any] = Field(default_factory=dict)
    gpus: int = Field(1, ge=0, le=64, description="GPU slots the job holds while it runs (0: none, it starts at once).")


class JobSpec(SubmitRequest):
    """A submitted job: ``runs/<id>/job.json``, the source of its row, what its supervisor reads.

    ``env`` holds only the variables that may be saved; the secret ones are named in
    ``secret_env_keys`` and reach the supervisor through its environment alone.
    """

    id: str
    workspace: str
    name: str
    secret_env_keys: list[str] = Field(default_factory=list)
    executor: str = "local"   # where it runs: 'local' or a Ray dashboard address (lora_nb.jobs.ray_executor)
    ray_files: str = "shared"  # a Ray job's files: on a path every node sees, or shipped (lora_nb.jobs.ray_ship)

    def row(self) -> dict[str, Any]:
        """The columns of the job's row that come from the spec (JSON fields encoded)."""
        out: dict[str, Any] = {k: getattr(self, k) for k in ("id", "name", "kind", "argv", "cwd", "env", "parser",
                                                            "parser_options", "meta", "executor")}
        for key in JSON_COLUMNS:
            if key in out:
                out[key] = json.dumps(out[key])
        out["gpus"] = self.gpus
        out["uses_gpu"] = int(self.gpus > 0)   # the column of schema 1, kept for older readers
        return out

    @classmethod
    def read(cls, run_dir: Path) -> "JobSpec":
        return cls.model_validate_json((run_dir / "job.json").read_text(encoding="utf-8"))

    def write(self, run_dir: Path) -> None:
        (run_dir / "job.json").write_text(self.model_dump_json(indent=1), encoding="utf-8")


class JobSnapshot(BaseModel):
    """One job as it is at one moment: its row, artifacts and hints, read together (immutable)."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    id: str
    seq: int
    name: str
    kind: str
    status: JobStatus
    argv: list[str]
    cwd: str | None = None
    env: dict[str, str] = Field(default_factory=dict)
    parser: str = "plain"
    parser_options: dict[str, Any] = Field(default_factory=dict)
    meta: dict[str, Any] = Field(default_factory=dict)
    gpus: int = 1
    slots: list[int] = Field(default_factory=list)     # the GPU slots it holds (claimed by the scheduler)
    devices: list[int] = Field(default_factory=list)   # their device indices: its CUDA_VISIBLE_DEVICES
    run_dir: Path
    created_at: float
    claimed_at: float | None = None
    started_at: float | None = None
    ended_at: float | None = None
    supervisor_pid: int | None = None
    supervisor_started: float | None = None
    engine_pid: int | None = None
    engine_started: float | None = None
    exit_code: int | None = None
    error: str | None = None
    progress: Progress = Field(default_factory=Progress)
    stop_requested: float | None = None
    stop_grace: float | None = None
    executor: str = "local"        # 'local' or the Ray dashboard address it was submitted to
    remote_id: str | None = None   # its Ray submission id (a new supervisor re-attaches by it)
    artifacts: tuple[dict[str, Any], ...] = ()   # {"path", "kind"}, one per path, in the order they appeared
    hints: tuple[str, ...] = ()

    @field_validator("progress", mode="before")
    @classmethod
    def _progress(cls, value: Any) -> Progress:
        return value if isinstance(value, Progress) else Progress.from_dict(value)

    @property
    def log_path(self) -> Path:
        return self.run_dir / "log"

    @property
    def uses_gpu(self) -> bool:
        return self.gpus > 0

    @property
    def is_active(self) -> bool:
        return self.status in (JobStatus.STARTING, JobStatus.RUNNING)

    def describe(self) -> dict[str, Any]:
        """JSON-able: every field, progress as a dict without unknowns, the status as its value."""
        d = self.model_dump(mode="json", exclude={"progress"})
        d["progress"] = self.progress.to_dict()
        return d
