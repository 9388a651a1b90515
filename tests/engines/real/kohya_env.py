"""Where the REAL sd-scripts set up by scripts/kohya-cpu-setup.sh is, and a client for kohya_harness.py.

``scripts/test.sh`` runs the set-up script and exports ``LORA_NB_REAL_KOHYA_DIR`` (the cache folder
holding sd-scripts/, venv/, sd15-random/, tok/, data/img/5_alice). Without it the real-engine tests
skip, except on CI (``CI=true``), where a missing engine is a failure, never a silent skip.
"""
from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

import pytest

HARNESS = Path(__file__).with_name("kohya_harness.py")
ON_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def real_kohya_dir() -> Path:
    """The engine folder, or skip (fail on CI) saying how to set it up."""
    value = os.environ.get("LORA_NB_REAL_KOHYA_DIR")
    why = None
    if not value:
        why = "LORA_NB_REAL_KOHYA_DIR is not set (scripts/test.sh sets it: export LORA_NB_REAL_KOHYA_DIR=\"$(bash scripts/kohya-cpu-setup.sh)\")"
    else:
        k = Path(value)
        missing = [p for p in ("sd-scripts/train_network.py", "venv/bin/python", "venv/.lora-nb-ready",
                               "sd15-random/.lora-nb-ready", "data/.lora-nb-ready") if not (k / p).exists()]
        if missing:
            why = f"LORA_NB_REAL_KOHYA_DIR={k} is not a finished set-up (missing {', '.join(missing)}); run bash scripts/kohya-cpu-setup.sh {k}"
    if why:
        if ON_CI:
            pytest.fail("CI must run the real sd-scripts: " + why, pytrace=False)
        pytest.skip(why)
    return Path(value)


def harness_env(tmp: Path) -> dict[str, str]:
    """The engine's environment for the harness: no hub, no user accelerate config, threads limited."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "LORA_NB_"))}
    env.update(HF_HOME=str(tmp / "hf"), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", OMP_NUM_THREADS="1",
               PYTHONUNBUFFERED="1", PYTHONIOENCODING="utf-8", COLUMNS="250")
    return env


class Harness:
    """One long-lived harness process in the engine venv: sd-scripts is imported once, then each case costs
    milliseconds (one JSON line per case over stdin/stdout; the engine's own output goes to ``log``)."""

    def __init__(self, kohya: Path, log: Path) -> None:
        self.log_path = log
        self._log = open(log, "ab")
        tmp = Path(tempfile.mkdtemp(prefix="kohya-harness-"))
        self.proc = subprocess.Popen([str(kohya / "venv" / "bin" / "python"), str(HARNESS), "--sd-scripts", str(kohya / "sd-scripts"),
                                      "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
                                     env=harness_env(tmp), text=True, encoding="utf-8")
        first = self.proc.stdout.readline()
        if not first or not json.loads(first).get("ready"):
            raise RuntimeError(f"the harness did not start; see {log}:\n" + log.read_text(errors="replace")[-3000:])

    def run(self, case_id: str, argv: list[str]) -> dict:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps({"id": case_id, "argv": argv}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the harness died; see {self.log_path}:\n" + self.log_path.read_text(errors="replace")[-3000:])
        return json.loads(line)

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._log.close()


def options(kohya: Path) -> dict:
    """The real parsers' options: {script: {dest: {"kind", "nargs"?, "choices"?}}}."""
    tmp = Path(tempfile.mkdtemp(prefix="kohya-options-"))
    r = subprocess.run([str(kohya / "venv" / "bin" / "python"), str(HARNESS), "--sd-scripts", str(kohya / "sd-scripts"), "--options"],
                       capture_output=True, text=True, env=harness_env(tmp), timeout=600)
    if r.returncode != 0:
        raise RuntimeError(r.stderr[-3000:])
    return json.loads(r.stdout)


__all__ = ["real_kohya_dir", "Harness", "options", "ON_CI", "harness_env", "HARNESS"]
