"""Helpers shared by tests (import as `support`). Everything here runs real processes: the stand-in engine
(tests/standin_engine.py, a process-level imitation of a trainer, not a real engine),
real supervisors and real SQLite."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

STANDIN = str(Path(__file__).resolve().parent / "standin_engine.py")
REPO = Path(__file__).resolve().parent.parent
# Debian's Chromium, never a browser a tool downloads; without the networking flags it calls out at every start
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run"]
BROWSER_ARTIFACTS = Path(os.environ.get("LORA_NB_TEST_ARTIFACTS", REPO / "test-artifacts")) / "browser"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def standin(*args: str) -> list[str]:
    return [sys.executable, STANDIN, *args]


def wait_for(predicate, timeout: float = 20.0, poll: float = 0.05, what: str = "condition"):
    """Poll ``predicate`` until it returns something truthy (returned); fail naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"{what} not met within {timeout} s")


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False




def wait_port(proc, port: int, log: Path, timeout: float = 180) -> None:
    """Wait until ``proc`` (a server) listens on ``port``; fail with the end of its ``log`` if it dies or is slow.

    Only a TCP connect: a GET of a Voila page would start (and leave) a kernel of its own."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
            return
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.5)
    proc.kill()
    pytest.fail(f"the server on port {port} did not answer: {Path(log).read_text()[-2000:]}")


def build_lora_wheel(out: Path) -> Path:
    """Build lora-nb's own wheel (no dependencies, no build isolation: offline) into ``out``; return its path."""
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(REPO)],
                           capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-3000:]
    return next(Path(out).glob("lora_nb-*.whl"))
