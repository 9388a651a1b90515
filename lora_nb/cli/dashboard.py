"""``lora-nb dashboard``: serve the panels as a standalone web app with Voila.

    $ lora-nb dashboard                       # http://127.0.0.1:8866, the default workspace
    $ lora-nb dashboard --port 18866 --workspace /workspace/lora-nb --no-browser
    $ lora-nb dashboard --ip 0.0.0.0 --token "$(openssl rand -hex 16)"   # a public address needs a token

Binds 127.0.0.1 unless told otherwise and refuses a non-loopback address without a token (the
dashboard can start jobs on your GPU and read your workspace). The notebook it serves and the Voila
template ship inside the package; the workspace is Voila's root folder so run outputs can be
downloaded from the Jobs panel (``/voila/files/...``, only the file types listed in FILE_TYPES).
"""
from __future__ import annotations

import argparse
import ipaddress
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from ..errors import ConfigError

__all__ = ["register", "voila_command", "data_paths", "FILE_TYPES"]

FILE_TYPES = r".*\.(safetensors|png|jpg|jpeg|webp|gif|toml|json|yaml|txt|log|csv|zip)$"


def data_paths() -> tuple[Path, Path]:
    """(dashboard.ipynb, the folder that holds voila/templates/lora-nb's parent), from the package or the checkout."""
    import lora_nb

    here = Path(lora_nb.__file__).resolve().parent
    # an installed wheel has them inside the package; a source checkout (editable install) beside it
    for nb_dir, tpl_dir in ((here / "_notebooks", here / "_voila_templates"), (here.parent / "notebooks", here.parent / "voila_templates")):
        if (nb_dir / "dashboard.ipynb").is_file() and (tpl_dir / "lora-nb" / "conf.json").is_file():
            return nb_dir / "dashboard.ipynb", tpl_dir
    raise ConfigError("The dashboard notebook or its Voila template is missing from this installation.",
                      fix="Reinstall lora-nb (pip install --force-reinstall lora-nb).")


def _is_loopback(ip: str) -> bool:
    if ip in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


def voila_command(ws_root: Path, port: int, ip: str, token: str | None, open_browser: bool) -> tuple[list[str], dict[str, str]]:
    """The Voila command line and environment for a workspace (pure: tests check it without starting Voila)."""
    if not _is_loopback(ip) and not token:
        raise ConfigError(f"Refusing to serve the dashboard on {ip} without a token: anyone who can reach it could run jobs on this machine.",
                          fix="Add --token SECRET (or use 127.0.0.1 with an SSH tunnel or the Vast.ai portal).")
    if not (0 < port < 65536):
        raise ConfigError(f"{port} is not a port number.", fix="Use a port from 1024 to 65535.")
    notebook, templates = data_paths()
    site = ws_root / ".lora-nb"                          # the template copy (hidden: never served)
    app = ws_root / "dashboard"                          # Voila refuses to serve notebooks from hidden folders
    site.mkdir(parents=True, exist_ok=True)
    app.mkdir(exist_ok=True)
    served = app / "lora-nb.ipynb"                       # Voila titles the page with the notebook name
    shutil.copyfile(notebook, served)                     # fresh each start: an upgrade brings its notebook
    # Voila finds templates in <jupyter path>/voila/templates/<name>: put ours first on JUPYTER_PATH
    jp = site / "jupyter"
    link = jp / "voila" / "templates" / "lora-nb"
    if link.is_symlink() or link.exists():
        if link.is_symlink() or link.is_file():
            link.unlink()
        else:
            shutil.rmtree(link)
    link.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(templates / "lora-nb", link)
    env = dict(os.environ)
    env["JUPYTER_PATH"] = os.pathsep.join([str(jp)] + ([env["JUPYTER_PATH"]] if env.get("JUPYTER_PATH") else []))
    env["LORA_NB_HOME"] = str(ws_root)
    env["LORA_NB_FILES_URL"] = "/voila/files/"
    argv = [sys.executable, "-m", "voila", str(served), f"--Voila.root_dir={ws_root}", "--template=lora-nb",
            f"--port={port}", f"--Voila.ip={ip}", "--no-browser" if not open_browser else "--Voila.open_browser=True",
            f"--VoilaConfiguration.file_allowlist=['{FILE_TYPES}']",
            "--VoilaConfiguration.file_denylist=['(^|.*/)\\..*', '.*\\.db.*']",   # dot-folders (.lora-nb), the database
            "--Voila.tornado_settings={'websocket_max_message_size': 104857600}",
            # a busy box (a training run, 2 cores) can take longer than nbclient's 4 s to deliver the cell's
            # output after it finished; without this the page comes up empty
            "--VoilaExecutor.iopub_timeout=60",
            f"--token={token or ''}"]
    return argv, env


def cmd_dashboard(args: argparse.Namespace) -> int:
    from . import open_workspace

    ws = open_workspace(args)
    argv, env = voila_command(ws.root, args.port, args.ip, args.token, open_browser=not args.no_browser)
    host = "127.0.0.1" if args.ip in ("", "localhost") else args.ip
    print(f"lora-nb dashboard on http://{host}:{args.port}/  (workspace {ws.root})", flush=True)
    # become Voila (same pid): a supervisor's SIGTERM, Ctrl+C and `kill` reach the server itself, which
    # shuts its kernels down; nothing is left running behind a wrapper process
    os.execve(argv[0], argv, env)
    return 0  # pragma: no cover


def register(sub: Any) -> None:
    p = sub.add_parser("dashboard", help="serve the dashboard with Voila (127.0.0.1 unless told otherwise)")
    p.add_argument("--port", type=int, default=int(os.environ.get("LORA_NB_PORT", "8866")))
    p.add_argument("--ip", default="127.0.0.1", help="address to bind; anything but loopback needs --token")
    p.add_argument("--token", default=os.environ.get("LORA_NB_TOKEN"), help="require this token (?token=... in the URL)")
    p.add_argument("--no-browser", action="store_true")
    p.set_defaults(func=cmd_dashboard)
