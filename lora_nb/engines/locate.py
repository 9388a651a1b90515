"""Finding an engine checkout and its Python: settings, then an environment variable, then the workspace."""
from __future__ import annotations

import functools
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from ..ports import EngineHome
    from .base import EngineStatus

__all__ = ["engine_dir", "engine_python", "git_commit", "check_checkout", "missing_modules"]


def engine_dir(ws: "EngineHome", setting: str, env: str, default_name: str) -> Path:
    value = ws.settings.get(setting) or os.environ.get(env)
    return Path(value).expanduser() if value else ws.engines_dir / default_name


def engine_python(ws: "EngineHome", setting: str, folder: Path) -> Path:
    value = ws.settings.get(setting)
    if value:
        return Path(value).expanduser()
    for candidate in (folder / "venv" / "bin" / "python", folder / ".venv" / "bin" / "python"):
        if candidate.exists():
            return candidate
    return Path(sys.executable)


def git_commit(folder: Path) -> str | None:
    """The checked-out commit, read from .git without running git."""
    head = folder / ".git" / "HEAD"
    try:
        ref = head.read_text().strip()
    except OSError:
        return None
    if not ref.startswith("ref: "):
        return ref[:40]
    name = ref[5:]
    loose = folder / ".git" / name
    if loose.is_file():
        return loose.read_text().strip()[:40]
    packed = folder / ".git" / "packed-refs"
    if packed.is_file():
        for line in packed.read_text().splitlines():
            if line.endswith(" " + name):
                return line.split()[0][:40]
    return None


def check_checkout(name: str, folder: Path, python: Path, markers: tuple[str, ...], modules: tuple[str, ...], what: str,
                   fix_install: str, python_setting: str) -> "EngineStatus":
    """The shared part of every engine's ``check()``: the folder, its marker files, the Python and its modules."""
    from .base import EngineStatus

    if not folder.is_dir():
        return EngineStatus(name, False, folder, python, None, (f"{what} was not found at {folder}. {fix_install}",))
    problems = []
    if not all((folder / m).exists() for m in markers):
        problems.append(f"{folder} is not a {what} checkout (no {' and '.join(markers)}). {fix_install}")
    if not python.exists():
        problems.append(f"The engine's Python {python} does not exist. Set ws.settings.set('{python_setting}', '/path/to/venv/bin/python').")
    elif not problems:
        missing = missing_modules(python, modules)
        if missing:
            problems.append(f"The engine's Python lacks {', '.join(missing)}. Run `{python} -m pip install -r {folder}/requirements.txt` "
                            f"(or `lora-nb engines install {name}`).")
    return EngineStatus(name, not problems, folder, python, git_commit(folder), tuple(problems))


@functools.lru_cache(maxsize=16)
def missing_modules(python: Path, modules: tuple[str, ...]) -> list[str]:
    """The names in ``modules`` that ``python`` cannot import (asked in a subprocess, cached)."""
    code = ("import importlib.util, sys\n"
            f"print(','.join(m for m in {list(modules)!r} if importlib.util.find_spec(m) is None))")
    try:
        out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        return [f"(could not run it: {e})"]
    return [m for m in out.stdout.strip().split(",") if m]
