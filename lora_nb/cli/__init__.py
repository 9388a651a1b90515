"""The ``lora-nb`` command.

Each area adds its own sub-commands from a module of this package with a
``register(subparsers)`` function (``lora_nb.cli.jobs``, ``lora_nb.cli.engines`` ...). The CLI is
the top layer: it opens a Workspace and calls the public API, like the widgets do. A command's handler
returns an exit code; a ``LoraNbError`` is printed as one line, without a traceback.

    $ lora-nb jobs list
    $ lora-nb dashboard --port 8866
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import TYPE_CHECKING, Sequence

from ..errors import LoraNbError

if TYPE_CHECKING:  # pragma: no cover
    from ..workspace import Workspace

COMMAND_MODULES = [
    "lora_nb.cli.jobs",        # jobs list|show|logs|stop|submit
    "lora_nb.cli.runs",        # runs list|compare
    "lora_nb.cli.datasets",    # datasets list|create|import|report
    "lora_nb.cli.tagging",     # tag
    "lora_nb.cli.captioning",  # caption
    "lora_nb.cli.engines",     # engines check|install, train
    "lora_nb.cli.lora",        # lora info|resize|verify|publish
    "lora_nb.cli.models",      # models list|download
    "lora_nb.cli.dashboard",   # dashboard
    "lora_nb.cli.demo",        # demo
    "lora_nb.cli.cluster",     # cluster up|status|down (SkyPilot)
]


def open_workspace(args: argparse.Namespace) -> "Workspace":
    """The workspace a command works on: ``-w/--workspace``, else the default resolution."""
    from ..workspace import Workspace

    return Workspace(args.workspace)


WORKSPACE_HELP = "workspace folder (default: $LORA_NB_HOME, /workspace/lora-nb or ~/lora-nb)"


def _add_workspace_option(parser: argparse.ArgumentParser, default: object) -> None:
    """The one definition of ``-w/--workspace``; the top-level parser and every sub-command parser get it."""
    parser.add_argument("--workspace", "-w", dest="workspace", default=default, help=WORKSPACE_HELP)


def _add_workspace_to_subcommands(parser: argparse.ArgumentParser, seen: set[int] | None = None) -> None:
    """Give every (nested) sub-command ``-w/--workspace`` so ``lora-nb dashboard -w DIR`` works like
    ``lora-nb -w DIR dashboard``. Their default is SUPPRESS: argparse copies a sub-parser's namespace over the
    parent's, so a plain default would clobber a value given before the sub-command; given after, it wins."""
    seen = set() if seen is None else seen
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        for child in action.choices.values():
            if id(child) in seen:  # aliases share one parser
                continue
            seen.add(id(child))
            if "--workspace" not in child._option_string_actions:
                _add_workspace_option(child, argparse.SUPPRESS)
            _add_workspace_to_subcommands(child, seen)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lora-nb", description="Jupyter-native LoRA training manager.")
    _add_workspace_option(parser, None)
    parser.add_argument("--version", action="version", version=f"lora-nb {__import__('lora_nb').__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name and (name == e.name or name.startswith(e.name + ".")):  # that area is not in this build
                continue
            raise
        module.register(sub)
    _add_workspace_to_subcommands(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except LoraNbError as e:
        print(f"lora-nb: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
