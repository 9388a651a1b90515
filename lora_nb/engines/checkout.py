"""What every engine adapter that runs a checkout with its own Python shares: finding it, checking it,
the environment its console output needs, and refusing a config meant for another engine.

An adapter (``KohyaEngine``, ``AIToolkitEngine``) declares its settings, marker files and modules and
writes only what is its own: ``prepare`` (rendering and the command line) and ``artifacts``.

>>> import lora_nb, tempfile
>>> from lora_nb.engines import get_engine
>>> eng = get_engine("kohya", lora_nb.Workspace(tempfile.mkdtemp()))
>>> eng.folder.name, eng.check().installed
('sd-scripts', False)
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import EngineError
from .base import EngineStatus
from .locate import check_checkout, engine_dir, engine_python

if TYPE_CHECKING:  # pragma: no cover
    from ..config.model import TrainingConfig
    from ..ports import EngineHome

__all__ = ["CheckoutEngine", "CONSOLE_ENV"]

# every engine: output as it is printed, UTF-8, and progress bars that are not wrapped
CONSOLE_ENV = {"PYTHONUNBUFFERED": "1", "PYTHONIOENCODING": "utf-8", "COLUMNS": "250"}


class CheckoutEngine:
    """Base of the adapters of engines that live in their own checkout (see ENGINES.md)."""

    name: str
    what: str                        # how messages name it: "sd-scripts", "ai-toolkit"
    dir_setting: str                 # workspace setting with the checkout folder
    dir_env: str                     # environment variable with the checkout folder
    default_folder: str              # <workspace>/engines/<default_folder>
    python_setting: str              # workspace setting with the engine's Python
    markers: tuple[str, ...]         # files a checkout has
    parser_name: str

    def __init__(self, ws: "EngineHome") -> None:
        self.ws = ws

    @property
    def folder(self) -> Path:
        return engine_dir(self.ws, self.dir_setting, self.dir_env, self.default_folder)

    @property
    def python(self) -> Path:
        return engine_python(self.ws, self.python_setting, self.folder)

    def modules(self) -> tuple[str, ...]:
        """The modules the engine's Python must be able to import."""
        return ("torch", "safetensors")

    def check(self) -> EngineStatus:
        fix = (f"Run `lora-nb engines install {self.name}`, or point lora-nb at a checkout: "
               f"ws.settings.set('{self.dir_setting}', '/path/to/{self.default_folder}').")
        return check_checkout(self.name, self.folder, self.python, self.markers, self.modules(), self.what, fix,
                              self.python_setting)

    def parser(self) -> str:
        return self.parser_name

    def require_own(self, cfg: "TrainingConfig") -> None:
        """Refuse a config written for another engine."""
        if cfg.engine != self.name:
            raise EngineError(f"This config is for {cfg.engine}, not {self.name}.", fix="Use get_engine(cfg.engine, ws).")
