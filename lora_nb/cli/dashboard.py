"""``lora-nb dashboard``: serve the panels as a standalone web app with Voila.

    $ lora-nb dashboard                       # http://127.0.0.1:8866, the default workspace
    $ lora-nb dashboard --port 18866 --workspace /workspace/lora-nb --no-browser
    $ lora-nb dashboard --ip 0.0.0.0 --token "$(openssl rand -hex 16)"   # a public address needs a token

Binds 127.0.0.1 unless told otherwise and refuses a non-loopback address without a token (the
dashboard can start jobs on your GPU and read your workspace). The notebook it serves and the Voila
template ship inside the package; the workspace is Voila's root folder so run outputs can be
downloaded from the Jobs panel (``/voila/files/...``, only the file types listed in FILE_TYPES).

Every visit gets its own kernel. A kernel whose tab is gone (closed, crashed, a laptop that slept)
is shut down by the server's idle culler once it has been quiet for ``--cull-idle`` seconds: the
page pings its kernel while it is open, and without pings the panels stop redrawing, so the kernel
goes quiet. Jobs are not touched: they belong to their supervisors. The settings that are lists or
dicts (file allow/deny lists, tornado settings) and the culler's go to Voila in a config file
(``<workspace>/.lora-nb/config/voila.json``), not as command-line literals, which traitlets deprecates.
"""
from __future__ import annotations

import argparse
import ipaddress
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from ..errors import ConfigError

__all__ = ["register", "voila_command", "voila_config", "data_paths", "FILE_TYPES", "CULL_IDLE", "CULL_INTERVAL"]

FILE_TYPES = r".*\.(safetensors|png|jpg|jpeg|webp|gif|toml|json|yaml|txt|log|csv|zip)$"
FILE_DENY = [r"(^|.*/)\..*", r".*\.db.*"]     # dot-folders (.lora-nb), the database
CULL_IDLE = 900          # seconds a kernel without a page may stay quiet before the server shuts it down
CULL_INTERVAL = 60       # how often the server looks
SERVE_MODULE = "lora_nb.widgets.voila_serve"   # Voila with the token on file downloads too (run as python -m)
TOKEN_ENV = "LORA_NB_VOILA_TOKEN"             # how the token reaches it (that module clears it before kernels start)


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


def voila_config(cull_idle: int = CULL_IDLE, cull_interval: int = CULL_INTERVAL) -> dict[str, Any]:
    """What goes into Voila's config file: the served file types, the websocket limit, the output timeout, the culler.

    >>> voila_config(30, 5)["MappingKernelManager"]
    {'cull_idle_timeout': 30, 'cull_interval': 5, 'cull_connected': False, 'cull_busy': False}
    """
    return {
        "VoilaConfiguration": {"file_allowlist": [FILE_TYPES], "file_denylist": FILE_DENY},
        # the uploader's slices, with room to spare
        "Voila": {"tornado_settings": {"websocket_max_message_size": 100 * 2**20}},
        # a busy box (a training run, 2 cores) can take longer than nbclient's 4 s to deliver the cell's output
        # after it finished; without this the page comes up empty
        "VoilaExecutor": {"iopub_timeout": 60},
        # kernels whose page is gone go quiet (no pings, no redraws) and are shut down; a kernel with an open
        # page (connected) or running code (busy) is left alone
        "MappingKernelManager": {"cull_idle_timeout": int(cull_idle), "cull_interval": int(cull_interval),
                                 "cull_connected": False, "cull_busy": False},
    }


def voila_command(ws_root: Path, port: int, ip: str, token: str | None, open_browser: bool, cull_idle: int = CULL_IDLE,
                  cull_interval: int = CULL_INTERVAL) -> tuple[list[str], dict[str, str]]:
    """The Voila command line and environment for a workspace (pure: tests check it without starting Voila);
    writes the notebook, the template and Voila's config file into the workspace."""
    if not _is_loopback(ip) and not token:
        raise ConfigError(f"Refusing to serve the dashboard on {ip} without a token: anyone who can reach it could run jobs on this machine.",
                          fix="Add --token SECRET (or use 127.0.0.1 with an SSH tunnel or the Vast.ai portal).")
    if not (0 < port < 65536):
        raise ConfigError(f"{port} is not a port number.", fix="Use a port from 1024 to 65535.")
    if cull_idle <= 0 or cull_interval <= 0:
        raise ConfigError("The cull times must be positive numbers of seconds.", fix="Use e.g. --cull-idle 900 --cull-interval 60.")
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
    config_dir = site / "config"
    config_dir.mkdir(exist_ok=True)
    (config_dir / "voila.json").write_text(json.dumps(voila_config(cull_idle, cull_interval), indent=1), encoding="utf-8")
    env = dict(os.environ)
    env["JUPYTER_PATH"] = os.pathsep.join([str(jp)] + ([env["JUPYTER_PATH"]] if env.get("JUPYTER_PATH") else []))
    env["LORA_NB_HOME"] = str(ws_root)
    env["LORA_NB_FILES_URL"] = "/voila/files/"
    # the page pings its kernel this often; three missed pings and the panels stop redrawing (see widgets/page.py)
    env["LORA_NB_PING_SECONDS"] = str(max(0.5, min(30.0, cull_idle / 6)))
    from jupyter_core.paths import jupyter_config_path

    # our config file first (it wins), then the usual places (a user's voila.json may add settings);
    # one path per option: the form traitlets wants for list options on the command line
    search = [str(config_dir)] + [p for p in jupyter_config_path() if p != str(config_dir)]
    # Voila through lora_nb.widgets.voila_serve: its file downloads need the token too, and the token travels in the
    # environment (never on a command line that `ps` shows), which that module clears before kernels start
    argv = [sys.executable, "-m", SERVE_MODULE, str(served), f"--Voila.root_dir={ws_root}", "--template=lora-nb",
            f"--port={port}", f"--Voila.ip={ip}", "--no-browser" if not open_browser else "--Voila.open_browser=True",
            *(f"--Voila.config_file_paths={p}" for p in search)]
    env.pop("LORA_NB_TOKEN", None)
    env[TOKEN_ENV] = token or ""
    return argv, env


def cmd_dashboard(args: argparse.Namespace) -> int:
    from . import open_workspace

    ws = open_workspace(args)
    argv, env = voila_command(ws.root, args.port, args.ip, args.token, open_browser=not args.no_browser,
                              cull_idle=args.cull_idle, cull_interval=args.cull_interval)
    host = "127.0.0.1" if args.ip in ("", "localhost") else args.ip
    # the URL with the token goes to this terminal only (Voila's own log line shows "?token=...")
    query = f"?token={args.token}" if args.token else ""
    print(f"lora-nb dashboard on http://{host}:{args.port}/{query}  (workspace {ws.root})", flush=True)
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
    p.add_argument("--cull-idle", type=int, default=CULL_IDLE, metavar="SECONDS",
                   help=f"shut down a kernel whose page is gone after this long (default {CULL_IDLE}); jobs go on")
    p.add_argument("--cull-interval", type=int, default=CULL_INTERVAL, metavar="SECONDS",
                   help=f"how often to look for such kernels (default {CULL_INTERVAL})")
    p.set_defaults(func=cmd_dashboard)
