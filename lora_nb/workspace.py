"""The workspace: one folder that holds everything a user owns, plus its database.

``Workspace`` is the composition root: it opens the store and the settings and wires the
managers of the domain packages and the job system together, each given only what it uses
(see :mod:`lora_nb.ports`). Nothing below this module imports it.

>>> import tempfile
>>> ws = Workspace(tempfile.mkdtemp())
>>> sorted(p.name for p in ws.root.iterdir() if p.is_dir())
['datasets', 'engines', 'loras', 'models', 'presets', 'runs']
>>> (ws.root / 'lora_nb.db').is_file()
True
"""
from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import InvalidName
from .paths import DB_NAME, SUBFOLDERS, WorkspaceFolders
from .settings import Settings
from .store import Store

if TYPE_CHECKING:  # pragma: no cover  (imported when first used: `import lora_nb` stays fast)
    from .config.model import TrainingConfig
    from .config.presets import Presets
    from .datasets import Datasets
    from .jobs.history import Runs
    from .jobs.manager import Job, JobManager
    from .models import ModelLibrary

__all__ = ["Workspace", "default_root", "SUBFOLDERS", "DB_NAME"]


def default_root() -> Path:
    """``$LORA_NB_HOME``, else ``/workspace/lora-nb`` when ``/workspace`` exists (Vast.ai), else ``~/lora-nb``."""
    env = os.environ.get("LORA_NB_HOME")
    if env:
        return Path(env).expanduser()
    if Path("/workspace").is_dir():
        return Path("/workspace/lora-nb")
    return Path.home() / "lora-nb"


class Workspace(WorkspaceFolders):
    """Folders plus ``lora_nb.db``, created if missing.

    The managers (``jobs``, ``datasets``, ``presets``, ``models``) are created on first use
    so that opening a workspace stays cheap.
    """

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        root_path = Path(root).expanduser() if root is not None else default_root()
        if "\x00" in str(root_path):
            raise InvalidName("The workspace path contains a NUL byte.", fix="Pass a normal folder path.")
        root_path.mkdir(parents=True, exist_ok=True)
        super().__init__(root_path.resolve())
        for name in SUBFOLDERS:
            (self.root / name).mkdir(exist_ok=True)
        self.store = Store(self.db_path)
        self.settings = Settings(self.store)

    # -- managers -----------------------------------------------------------------
    @functools.cached_property
    def jobs(self) -> "JobManager":
        from .jobs.manager import JobManager

        return JobManager(self, launch_training=self._submit_training)

    def _submit_training(self, config: "TrainingConfig") -> "Job":
        from .engines.launch import submit_training

        return submit_training(self, config)

    @functools.cached_property
    def runs(self) -> "Runs":
        """Run history and comparison of training runs (:class:`lora_nb.jobs.history.Runs`)."""
        from .jobs.history import Runs

        return Runs(self.jobs)

    @functools.cached_property
    def datasets(self) -> "Datasets":
        from .datasets import Datasets

        return Datasets(self)

    @functools.cached_property
    def presets(self) -> "Presets":
        from .config.presets import Presets

        return Presets(self.presets_dir)

    @functools.cached_property
    def models(self) -> "ModelLibrary":
        from .models import ModelLibrary

        return ModelLibrary(self.models_dir, self.jobs)

    def __repr__(self) -> str:
        return f"Workspace({str(self.root)!r})"

    def __fspath__(self) -> str:
        return str(self.root)
