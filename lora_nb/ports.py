"""The small protocols through which the domain packages reach the rest of a workspace.

lora-nb's layers point one way (see docs/architecture.md): the low layer (this module, ``errors``,
``files``, ``paths``, ``store``, ``settings`` ...) <- the domain packages (``captions``,
``datasets``, ``config``, ``engines``, ``tagging``, ``lora``, ``models``) <- ``jobs`` <-
``workspace`` (the composition root) <- ``cli``, ``tasks`` and the widgets. A domain package never
imports :class:`~lora_nb.workspace.Workspace`: it asks for what it uses — a folder, the settings,
a job submitter, a dataset lookup — through one of these protocols, and the workspace (or a test's
stand-in) is passed in. Each protocol lists only what its users call.

>>> import pathlib
>>> class Submitter:                          # anything with submit_task is a JobSubmitter
...     def submit_task(self, task, params, name=None, uses_gpu=False, env=None, meta=None):
...         return f"queued {task} {params}"
>>> class Home:
...     jobs = Submitter()
>>> def queue_it(home: HasJobs) -> object:
...     return home.jobs.submit_task("resize_lora", {"rank": 8})
>>> queue_it(Home())
"queued resize_lora {'rank': 8}"
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, Sequence

from .settings import Settings
from .store import Store

__all__ = ["JobHandle", "JobSubmitter", "HasJobs", "ImageView", "DatasetView", "DatasetSource", "HasDatasets",
           "Folders", "JobsHome", "EngineHome", "TrainingHome", "DatasetsHome", "StepsHome", "LorasHome"]


class JobHandle(Protocol):
    """What domain code hands back from a submission: the ``Job`` of :mod:`lora_nb.jobs.manager`."""

    id: str

    def wait(self, timeout: float | None = None, poll: float = 0.2) -> Any: ...

    def stop(self, grace: float = 10.0, wait: bool = True) -> Any: ...


class JobSubmitter(Protocol):
    """Queues work as jobs (``ws.jobs`` is one). Domain code submits; it never runs long work itself."""

    def submit_task(self, task: str, params: dict[str, Any], name: str | None = None, uses_gpu: bool = False,
                    env: dict[str, str] | None = None, meta: dict[str, Any] | None = None,
                    gpus: int | None = None) -> JobHandle: ...

    def submit_command(self, argv: Sequence[str], name: str | None = None, cwd: Any = None,
                       env: dict[str, str] | None = None, parser: str = "plain", **kwargs: Any) -> JobHandle: ...

    def reserve(self, name: str | None = None, kind: str = "command") -> tuple[str, Path]: ...

    def list(self, status: Any = None, kind: str | None = None) -> Sequence[Any]: ...


class HasJobs(Protocol):
    @property
    def jobs(self) -> JobSubmitter: ...


class ImageView(Protocol):
    """One image of a dataset as the step calculator and the launcher read it."""

    path: Path
    subset: str
    width: int | None
    height: int | None
    size: int
    caption: str | None


class DatasetView(Protocol):
    """A dataset as the config and engine layers read it (``lora_nb.datasets.Dataset`` is one)."""

    name: str
    path: Path

    def images(self) -> Sequence[Any]: ...

    def subsets(self) -> Sequence[Any]: ...

    def doctor(self, folders: Any = None) -> Sequence[Any]: ...


class DatasetSource(Protocol):
    """Looks datasets up by name (``ws.datasets`` is one)."""

    def get(self, name: str) -> DatasetView: ...


class HasDatasets(Protocol):
    @property
    def datasets(self) -> DatasetSource: ...


class Folders(Protocol):
    """A workspace's folders (:class:`lora_nb.paths.WorkspaceFolders` provides them)."""

    @property
    def root(self) -> Path: ...

    @property
    def datasets_dir(self) -> Path: ...

    @property
    def models_dir(self) -> Path: ...

    @property
    def runs_dir(self) -> Path: ...

    @property
    def loras_dir(self) -> Path: ...

    @property
    def presets_dir(self) -> Path: ...

    @property
    def engines_dir(self) -> Path: ...

    @property
    def tmp_dir(self) -> Path: ...


class JobsHome(Protocol):
    """What the job system needs: the folder of run folders, the database, the settings."""

    @property
    def root(self) -> Path: ...

    @property
    def runs_dir(self) -> Path: ...

    @property
    def store(self) -> Store: ...

    @property
    def settings(self) -> Settings: ...


class DatasetsHome(Folders, HasJobs, Protocol):
    """What the datasets package needs: the folders (datasets, scratch) and a job submitter."""


class LorasHome(Folders, HasJobs, Protocol):
    """What the LoRA browser needs: the ``loras/`` and ``runs/`` folders and a job submitter (resize)."""


class StepsHome(HasDatasets, HasJobs, Protocol):
    """What the step calculator needs: the datasets (image sizes) and, for the time estimate, past runs."""


class EngineHome(Folders, HasDatasets, HasJobs, Protocol):
    """What an engine adapter needs: where engines live, the settings that point at them, the datasets,
    and the jobs (past runs for the time estimate, the install job)."""

    @property
    def settings(self) -> Settings: ...


class TrainingHome(EngineHome, Protocol):
    """What launching a training run needs: an engine home plus the database (to tell a queued run from a failed one)."""

    @property
    def store(self) -> Store: ...


