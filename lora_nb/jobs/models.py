"""Pydantic models for job requests and descriptions (loaded only when a job is submitted or described)."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..progress.events import JobStatus


class SubmitRequest(BaseModel):
    """What a caller asks for when submitting a command job."""

    model_config = ConfigDict(extra="forbid")

    argv: list[str]
    name: str | None = None
    cwd: str | None = None
    env: dict[str, str] = Field(default_factory=dict)
    parser: str = "plain"
    parser_options: dict[str, Any] = Field(default_factory=dict)
    kind: str = "command"
    meta: dict[str, Any] = Field(default_factory=dict)
    uses_gpu: bool = True


class JobDescription(BaseModel):
    """A job as the CLI and the panels show it."""

    id: str
    name: str
    kind: str
    status: JobStatus
    argv: list[str]
    cwd: str | None
    parser: str
    uses_gpu: bool
    run_dir: str
    created_at: float
    started_at: float | None
    ended_at: float | None
    exit_code: int | None
    error: str | None
    progress: dict[str, Any]
    meta: dict[str, Any]

    @classmethod
    def from_record(cls, rec: Any) -> "JobDescription":
        return cls(id=rec.id, name=rec.name, kind=rec.kind, status=rec.status, argv=rec.argv, cwd=rec.cwd, parser=rec.parser,
                   uses_gpu=rec.uses_gpu, run_dir=str(rec.run_dir), created_at=rec.created_at, started_at=rec.started_at,
                   ended_at=rec.ended_at, exit_code=rec.exit_code, error=rec.error, progress=rec.progress, meta=rec.meta)
