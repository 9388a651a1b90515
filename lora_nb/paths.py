"""The one place where user-supplied names and relative paths are checked.

Nothing lora-nb writes may land outside the workspace. Every dataset name, file
name from an upload or archive entry, and relative path goes through
:func:`safe_name` or :func:`safe_join` first.

>>> safe_name("alice_v2")
'alice_v2'
>>> from pathlib import Path
>>> import tempfile
>>> root = Path(tempfile.mkdtemp())
>>> safe_join(root, "img/001.png") == (root / "img" / "001.png").resolve()
True
>>> safe_join(root, "../etc/passwd")
Traceback (most recent call last):
...
lora_nb.errors.InvalidName: '../etc/passwd' is not a valid path: it leaves its folder. Use a path inside the folder, without '..'.
"""
from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath

from .errors import InvalidName

__all__ = ["safe_name", "safe_join", "is_within", "MAX_NAME_LENGTH", "WorkspaceFolders", "SUBFOLDERS", "DB_NAME"]

MAX_NAME_LENGTH = 128
# Windows device names: a file called "con.txt" breaks Samba shares and zip tools.
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))}
_NAME_OK = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9 _.+()\[\]@,=~-]*$")


def safe_name(name: object, what: str = "name") -> str:
    """Return ``name`` if it is usable as a single folder or file name, else raise InvalidName.

    Allowed: letters, digits, space and ``_ . + ( ) [ ] @ , = ~ -``; no leading dot or
    space, no trailing space or dot, no path separators, no NUL, not a reserved
    device name, at most 128 characters.

    >>> safe_name("my set (v2)", "dataset name")
    'my set (v2)'
    """
    if not isinstance(name, str):
        raise InvalidName(f"A {what} must be text, not {type(name).__name__}.", fix="Pass a string.")
    fix = "Use letters, digits, spaces and - _ . ( ) + only, starting with a letter or digit."
    shown = repr(name) if len(name) <= 60 else repr(name[:57] + "...")
    if not name:
        raise InvalidName(f"The {what} is empty.", fix="Give it a name.")
    if "\x00" in name:
        raise InvalidName(f"{shown} is not a valid {what}: it contains a NUL byte.", fix=fix)
    if "/" in name or "\\" in name:
        raise InvalidName(f"{shown} is not a valid {what}: it contains a path separator.", fix=fix)
    if name in {".", ".."} or name.startswith("."):
        raise InvalidName(f"{shown} is not a valid {what}: it starts with a dot.", fix=fix)
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidName(f"The {what} is {len(name)} characters long; the limit is {MAX_NAME_LENGTH}.", fix="Use a shorter name.")
    if name != name.strip() or name.endswith("."):
        raise InvalidName(f"{shown} is not a valid {what}: it ends or starts with a space or ends with a dot.", fix=fix)
    if name.split(".")[0].strip().lower() in _RESERVED:
        raise InvalidName(f"{shown} is not a valid {what}: it is a reserved device name.", fix="Pick another name.")
    if not _NAME_OK.match(name):
        raise InvalidName(f"{shown} is not a valid {what}: it contains characters that are not allowed.", fix=fix)
    return name


def is_within(path: Path, root: Path) -> bool:
    """True if ``path`` (after resolving symlinks) is ``root`` or lies below it."""
    try:
        Path(os.path.realpath(path)).relative_to(os.path.realpath(root))
        return True
    except ValueError:
        return False


def safe_join(root: Path | str, relpath: str | os.PathLike[str], what: str = "path") -> Path:
    """Join a user-supplied relative path onto ``root`` and return the resolved result.

    Raises InvalidName for absolute paths, ``..`` parts, NUL bytes, reserved or
    invalid part names, and for paths that leave ``root`` through a symlink.
    Forward and back slashes both separate parts (ZIP files made on Windows use ``\\``).
    """
    raw = os.fspath(relpath)
    shown = repr(raw) if len(raw) <= 60 else repr(raw[:57] + "...")
    if "\x00" in raw:
        raise InvalidName(f"{shown} is not a valid {what}: it contains a NUL byte.", fix="Remove the NUL byte.")
    norm = raw.replace("\\", "/")
    if norm.startswith("/") or re.match(r"^[A-Za-z]:", norm):
        raise InvalidName(f"{shown} is not a valid {what}: it is absolute.", fix="Use a path relative to the folder.")
    parts = [p for p in PurePosixPath(norm).parts if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise InvalidName(f"{shown} is not a valid {what}: it leaves its folder.", fix="Use a path inside the folder, without '..'.")
    if not parts:
        raise InvalidName(f"The {what} is empty.", fix="Give a file or folder name.")
    for p in parts:
        safe_name(p, f"part of a {what}")
    root_real = Path(os.path.realpath(root))
    target = root_real.joinpath(*parts)
    if not is_within(target, root_real):
        raise InvalidName(f"{shown} is not a valid {what}: it leads outside its folder through a link.", fix="Remove the symbolic link or use a real folder.")
    return target


SUBFOLDERS = ("datasets", "models", "runs", "loras", "presets", "engines")
DB_NAME = "lora_nb.db"


class WorkspaceFolders:
    """The folder layout of a workspace rooted at ``root`` (nothing is created here).

    >>> f = WorkspaceFolders(Path("/w"))
    >>> f.runs_dir, f.db_path
    (PosixPath('/w/runs'), PosixPath('/w/lora_nb.db'))
    """

    def __init__(self, root: Path) -> None:
        self.root: Path = root

    @property
    def db_path(self) -> Path:
        return self.root / DB_NAME

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
