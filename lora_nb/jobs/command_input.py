"""What a person types for a command job, checked: the command line (shell quoting) and ``KEY=VALUE`` lines.

Error sentences name the line and the key, never a value (a value may be a token).

>>> split_command("python train.py --name 'my run' --lr 1e-4")
['python', 'train.py', '--name', 'my run', '--lr', '1e-4']
>>> parse_env("# comment\\nHF_HOME=/data/hf\\n\\nWANDB_MODE = offline")
{'HF_HOME': '/data/hf', 'WANDB_MODE': 'offline'}
>>> secret_keys({"HF_TOKEN": "hf_abcdefghijklmnopqrstuvwxyz", "HF_HOME": "/data"})
['HF_TOKEN']
"""
from __future__ import annotations

import re
import shlex

from ..errors import JobError
from ..settings import looks_secret

__all__ = ["split_command", "parse_env", "secret_keys"]

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def split_command(text: str) -> list[str]:
    """A command line split as a POSIX shell would (quotes, backslashes); no shell runs it."""
    if not text or not text.strip():
        raise JobError("The command is empty.", fix="Type the program and its arguments, e.g. python train.py --epochs 3.")
    try:
        argv = shlex.split(text, comments=False, posix=True)
    except ValueError as e:
        raise JobError(f"The command line cannot be split into arguments: {str(e).lower()}.",
                       fix="Close every quote you open, or escape a lone quote with a backslash.") from None
    if not argv:
        raise JobError("The command is empty.", fix="Type the program and its arguments, e.g. python train.py --epochs 3.")
    return argv


def parse_env(text: str) -> dict[str, str]:
    """``KEY=VALUE`` lines (blank lines and ``#`` comments skipped; spaces around ``=`` dropped) to a dict."""
    env: dict[str, str] = {}
    for n, raw in enumerate((text or "").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep:
            shown = key if _KEY.match(key) and not looks_secret(key, key) else "it"
            raise JobError(f"Environment line {n} ({shown}) is not KEY=VALUE.", fix="Write one variable a line, e.g. HF_HOME=/data/hf.")
        if not _KEY.match(key):
            raise JobError(f"Environment line {n}: the name before '=' is not a variable name.",
                           fix="Use letters, digits and '_', not starting with a digit (e.g. WANDB_MODE).")
        if key in env:
            raise JobError(f"Environment line {n} sets {key} a second time.", fix="Keep one line per variable.")
        env[key] = value.strip()
    return env


def secret_keys(env: dict[str, str]) -> list[str]:
    """The variables whose name or value looks like a credential: they never reach the job record or its log."""
    return [k for k, v in env.items() if looks_secret(k, v)]
