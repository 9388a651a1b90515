"""`-w/--workspace` works before and after the sub-command (issue 15), through the real `lora-nb` entry point
in a subprocess: `lora-nb dashboard --workspace DIR` (what scripts/dashboard.sh passes on) was rejected."""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from support import free_port

import lora_nb


def _cli(*argv: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lora_nb.cli", *argv], capture_output=True, text=True, timeout=60, env=env)


@pytest.fixture()
def three(tmp_path: Path) -> tuple[Path, Path, dict[str, str]]:
    """Workspaces A and B with one dataset each, and $LORA_NB_HOME pointing at a third (the default)."""
    a, b, home = tmp_path / "a", tmp_path / "b", tmp_path / "home"
    lora_nb.Workspace(a).datasets.create("in-a")
    lora_nb.Workspace(b).datasets.create("in-b")
    lora_nb.Workspace(home).datasets.create("in-home")
    env = dict(os.environ, LORA_NB_HOME=str(home))
    return a, b, env


@pytest.mark.parametrize("argv, expected", [
    (["datasets", "list"], "in-home"),                                     # neither: the default
    (["-w", "{a}", "datasets", "list"], "in-a"),                           # before the sub-command
    (["datasets", "-w", "{a}", "list"], "in-a"),                           # between the levels
    (["datasets", "list", "--workspace", "{a}"], "in-a"),                  # after: was rejected
    (["-w", "{a}", "datasets", "list", "-w", "{b}"], "in-b"),              # both: the sub-command's wins
    (["--workspace", "{b}", "datasets", "--workspace", "{a}", "list"], "in-a"),
    (["datasets", "list", "-w", "{b}"], "in-b"),                           # a sub-command default never clobbers
])
def test_workspace_option_in_both_places(three, argv, expected):
    a, b, env = three
    out = _cli(*(x.format(a=a, b=b) for x in argv), env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"{expected}\t0 images"


def test_dashboard_accepts_workspace_after_the_subcommand(three):
    """The real `lora-nb dashboard --workspace DIR` starts on DIR (it announces the workspace before it becomes
    Voila; the test stops it there)."""
    a, _b, env = three
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "lora_nb.cli", "dashboard", "--workspace", str(a), "--port", str(port),
                             "--no-browser"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    try:
        line = proc.stdout.readline()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    assert f"(workspace {a.resolve()})" in line, proc.stderr.read()
    assert (a / "dashboard" / "lora-nb.ipynb").is_file()


def test_every_subcommand_takes_the_option():
    from lora_nb.cli import build_parser

    def walk(p: argparse.ArgumentParser, path: str):
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    yield f"{path} {name}", child
                    yield from walk(child, f"{path} {name}")

    missing = [path for path, p in walk(build_parser(), "lora-nb") if "--workspace" not in p._option_string_actions
               or "-w" not in p._option_string_actions]
    assert not missing, missing
