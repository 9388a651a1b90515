"""The workspace: one folder that holds everything a user owns, plus its database.

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
from .paths import safe_join
from .settings import Settings
from .store import Store

if TYPE_CHECKING:  # pragma: no cover
    from .config.presets import Presets
    from .datasets import Datasets
    from .jobs.manager import JobManager
    from .models import ModelLibrary

__all__ = ["Workspace", "default_root", "SUBFOLDERS"]

SUBFOLDERS = ("datasets", "models", "runs", "loras", "presets", "engines")
DB_NAME = "lora_nb.db"


def default_root() -> Path:
    """``$LORA_NB_HOME``, else ``/workspace/lora-nb`` when ``/workspace`` exists (Vast.ai), else ``~/lora-nb``."""
    env = os.environ.get("LORA_NB_HOME")
    if env:
        return Path(env).expanduser()
    if Path("/workspace").is_dir():
        return Path("/workspace/lora-nb")
    return Path.home() / "lora-nb"


class Workspace:
    """Folders plus ``lora_nb.db``, created if missing.

    The managers (``jobs``, ``datasets``, ``presets``, ``models``) are created on first use
    so that opening a workspace stays cheap.
    """

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        root_path = Path(root).expanduser() if root is not None else default_root()
        if "\x00" in str(root_path):
            raise InvalidName("The workspace path contains a NUL byte.", fix="Pass a normal folder path.")
        root_path.mkdir(parents=True, exist_ok=True)
        self.root: Path = root_path.resolve()
        for name in SUBFOLDERS:
            (self.root / name).mkdir(exist_ok=True)
        self.store = Store(self.root / DB_NAME)
        self.settings = Settings(self.store)

    # -- folders ------------------------------------------------------------------
    @property
    def datasets_dir(self) -> Path:
        return self.root / "datasets"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    @property
    def loras_dir(self) -> Path:
        return self.root / "loras"

    @property
    def presets_dir(self) -> Path:
        return self.root / "presets"

    @property
    def engines_dir(self) -> Path:
        return self.root / "engines"

    @property
    def tmp_dir(self) -> Path:
        """Scratch space on the workspace's own file system, so that ``rename`` into place is atomic."""
        p = self.root / ".tmp"
        p.mkdir(exist_ok=True)
        return p

    def path(self, relpath: str) -> Path:
        """Resolve a user-supplied path relative to the workspace root; refuses anything outside it."""
        return safe_join(self.root, relpath)

    # -- managers -----------------------------------------------------------------
    @functools.cached_property
    def jobs(self) -> "JobManager":
        from .jobs.manager import JobManager

        return JobManager(self)

    @functools.cached_property
    def datasets(self) -> "Datasets":
        from .datasets import Datasets

        return Datasets(self)

    @functools.cached_property
    def presets(self) -> "Presets":
        from .config.presets import Presets

        return Presets(self)

    @functools.cached_property
    def models(self) -> "ModelLibrary":
        from .models import ModelLibrary

        return ModelLibrary(self)

    def __repr__(self) -> str:
        return f"Workspace({str(self.root)!r})"

    def __fspath__(self) -> str:
        return str(self.root)
