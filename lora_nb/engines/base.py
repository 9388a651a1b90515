"""The Engine protocol and the values it exchanges with the job system."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # pragma: no cover
    from ..config.model import TrainingConfig

__all__ = ["Engine", "EngineStatus", "LaunchPlan", "Artifact"]


@dataclass(frozen=True)
class EngineStatus:
    """Whether an engine can run here, and exactly what to do if not."""

    name: str
    installed: bool
    path: Path | None = None
    python: Path | None = None
    version: str | None = None          # git commit of the checkout, when known
    problems: tuple[str, ...] = ()      # each one sentence with its fix

    @property
    def ok(self) -> bool:
        return self.installed and not self.problems

    def summary(self) -> str:
        if self.ok:
            return f"{self.name} at {self.path} ({self.version or 'unknown commit'})"
        return " ".join(self.problems) or f"{self.name} is not installed."


@dataclass(frozen=True)
class LaunchPlan:
    """What the job system runs: the command, its folder and environment, and how to read its output."""

    argv: list[str]
    cwd: Path
    env: dict[str, str]
    parser: str
    parser_options: dict[str, Any] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)   # rendered config files, by role
    # mid-run control per action ("save", "sample"): how to ask (lora_nb.jobs.control) or {"unavailable": why}
    controls: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Artifact:
    path: Path
    kind: str            # "lora" | "checkpoint" | "state" | "sample" | "config" | "tensorboard" | "log"
    epoch: int | None = None
    step: int | None = None


class Engine(Protocol):
    name: str

    def check(self) -> EngineStatus: ...

    def prepare(self, config: "TrainingConfig", run_dir: Path) -> LaunchPlan: ...

    def parser(self) -> str: ...

    def artifacts(self, run_dir: Path) -> list[Artifact]: ...
