"""Task: install a training engine (git clone of a pinned commit + its own venv + pip), with progress.

Run by ``lora_nb.engines.install.install_engine`` as ``python -m lora_nb.tasks.install_engine
<run_dir>/task.json``. Steps: clone, checkout, venv, torch, requirements, then the workspace
settings point at the new checkout. Everything is built in ``<dest>.partial`` and moved into
place at the end; on failure (or a stop) the partial folder is removed and nothing changes.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

from .progress_reporter import Reporter, load_params

_GIT_PROGRESS = re.compile(r"(Receiving objects|Resolving deltas|Updating files|Counting objects|Compressing objects):\s+(\d+)%\s+\((\d+)/(\d+)\)")
_PIP_LINE = re.compile(r"^(Collecting|Downloading|Installing collected packages|Successfully installed|Building wheel|ERROR:)")

STEPS = ["clone", "checkout", "venv", "torch", "requirements", "settings"]


class StepFailed(Exception):
    pass


def _stream(argv: list[str], cwd: Path | None, on_line: Callable[[str], None]) -> None:
    """Run a command, passing each \\r- or \\n-terminated piece of its output to on_line; raise on failure."""
    env = dict(os.environ, GIT_TERMINAL_PROMPT="0", PIP_DISABLE_PIP_VERSION_CHECK="1", PYTHONUNBUFFERED="1")
    try:
        proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    except OSError as e:
        raise StepFailed(f"{argv[0]} could not be started ({e.strerror or e}).") from e
    assert proc.stdout is not None
    tail: list[str] = []
    buf = b""
    while True:
        chunk = proc.stdout.read1(65536) if hasattr(proc.stdout, "read1") else proc.stdout.read(4096)
        if not chunk:
            break
        buf += chunk
        parts = re.split(rb"[\r\n]", buf)
        buf = parts.pop()
        for raw in parts:
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                tail = (tail + [line])[-15:]
                on_line(line)
    if buf.strip():
        tail.append(buf.decode("utf-8", "replace"))
        on_line(tail[-1])
    code = proc.wait()
    if code != 0:
        last = next((t for t in reversed(tail) if t.strip()), "")
        raise StepFailed(f"`{' '.join(Path(a).name if i == 0 else a for i, a in enumerate(argv[:4]))}` failed with exit code {code}: {last}")


def _interrupt(*_: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    from ..engines.install import torch_argv
    from ..workspace import Workspace

    params = load_params(argv)
    ws = Workspace(params["workspace"])
    dest = Path(params["dest"])
    partial = dest.with_name(dest.name + ".partial")
    rep = Reporter(total=len(STEPS), unit="step")
    signal.signal(signal.SIGTERM, _interrupt)   # Stop: git/pip get it too (same process group)

    def step(i: int, name: str, text: str) -> None:
        rep.progress(i, phase=name)
        rep.message(text)

    last_pct: dict[str, int] = {}

    def git_line(line: str) -> None:
        m = _GIT_PROGRESS.search(line)
        if m:
            what, pct = m.group(1), int(m.group(2))
            if pct - last_pct.get(what, -100) >= 5 or pct == 100:
                last_pct[what] = pct
                rep.progress(0, phase=f"clone: {what.lower()} {pct}%")
        elif line.startswith(("fatal:", "error:")):
            rep.message(line, "error")

    def pip_line(line: str) -> None:
        if _PIP_LINE.match(line):
            rep.message(line[:300], "error" if line.startswith("ERROR:") else "info")

    placed = False
    previous = dest.with_name(dest.name + ".previous")   # a forced reinstall keeps the old one until the new one works

    def clean_up() -> None:
        shutil.rmtree(partial, ignore_errors=True)
        if placed:
            shutil.rmtree(dest, ignore_errors=True)
            if previous.exists():
                os.replace(previous, dest)

    try:
        shutil.rmtree(partial, ignore_errors=True)
        partial.parent.mkdir(parents=True, exist_ok=True)
        step(0, "clone", f"Cloning {params['url']} into {dest}")
        _stream(["git", "clone", "--progress", "--no-checkout", params["url"], str(partial)], None, git_line)
        step(1, "checkout", f"Checking out {params['commit']}")
        _stream(["git", "-c", "advice.detachedHead=false", "checkout", "--progress", params["commit"]], partial, git_line)
        # pip records absolute paths (editable installs, script shebangs): the venv is built in the final folder
        if dest.is_dir() and not any(dest.iterdir()):
            dest.rmdir()
        if dest.exists():
            if not params.get("force"):
                raise StepFailed(f"{dest} appeared while installing; nothing was replaced.")
            shutil.rmtree(previous, ignore_errors=True)
            os.replace(dest, previous)
        os.replace(partial, dest)
        placed = True
        step(2, "venv", "Creating the engine's virtual environment")
        venv_args = [sys.executable, "-m", "venv"] + (["--system-site-packages"] if params["torch"] == "system" else []) + [str(dest / "venv")]
        _stream(venv_args, None, pip_line)
        python = dest / "venv" / "bin" / "python"
        torch_cmd = torch_argv(params["torch"], str(python))
        step(3, "torch", "Installing torch" if torch_cmd else f"Leaving torch alone (torch={params['torch']})")
        if torch_cmd:
            _stream(torch_cmd, dest, pip_line)
        step(4, "requirements", f"Installing {params['requirements']}")
        if not (dest / params["requirements"]).is_file():
            raise StepFailed(f"The checkout has no {params['requirements']}; is {params['url']} really {params['engine']}?")
        _stream([str(python), "-m", "pip", "install", "--progress-bar", "off", "-r", params["requirements"]], dest, pip_line)
        step(5, "settings", "Updating the workspace settings")
        ws.settings.set(params["dir_setting"], str(dest))
        ws.settings.set(params["python_setting"], str(dest / "venv" / "bin" / "python"))
        shutil.rmtree(previous, ignore_errors=True)
        rep.progress(len(STEPS), phase="installed")
        rep.message(f"{params['engine']} is installed at {dest} ({params['commit'][:12]})")
        rep.artifact(str(dest), "engine")
        return 0
    except KeyboardInterrupt:
        clean_up()
        rep.message("Install stopped; the partial checkout was removed.", "warning")
        return 130
    except StepFailed as e:
        clean_up()
        rep.message(str(e), "error")
        rep.hint(f"Installing {params['engine']} failed: {e} Check the network (git and pip need internet) and try again.", "install_failed")
        return 1


if __name__ == "__main__":
    sys.exit(main())
