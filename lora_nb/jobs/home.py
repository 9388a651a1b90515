"""The job system's own view of a workspace folder: its run folders, database and settings.

A supervisor process opens this, not a whole Workspace: the job layer needs nothing else (it sits
below the workspace, the composition root), and a supervisor starts faster without it.

>>> import tempfile
>>> home = JobsHomeAt(Path(tempfile.mkdtemp()))
>>> home.runs_dir.is_dir(), home.db_path.is_file()
(True, True)
"""
from __future__ import annotations

from pathlib import Path

from ..paths import WorkspaceFolders
from ..settings import Settings
from ..store import Store

__all__ = ["JobsHomeAt"]


class JobsHomeAt(WorkspaceFolders):
    """The folders, ``lora_nb.db`` and settings of the workspace at ``root`` (a :class:`~lora_nb.ports.JobsHome`)."""

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        super().__init__(root.resolve())
        self.runs_dir.mkdir(exist_ok=True)
        self.store = Store(self.db_path)
        self.settings = Settings(self.store)
