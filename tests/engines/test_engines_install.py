"""`lora-nb engines install` against a local git repository (real git, real venv, real pip), and the
`engines`/`train` command line. No network: the "engine" is a small repository made here."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from lora_nb.engines import get_engine
from lora_nb.engines.install import install_engine
from lora_nb.errors import EngineError
from lora_nb.progress.events import JobStatus


def git(cwd, *args):
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True,
                          env=dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t",
                                   GIT_COMMITTER_EMAIL="t@t")).stdout.strip()


@pytest.fixture
def engine_repo(tmp_path):
    """A git repository shaped like sd-scripts: two commits, the pinned one first."""
    repo = tmp_path / "sd-scripts-src"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "train_network.py").write_text("print('v1')\n")
    (repo / "requirements.txt").write_text("# nothing to install in the test engine\n")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "v1")
    pinned = git(repo, "rev-parse", "HEAD")
    (repo / "train_network.py").write_text("print('v2')\n")
    git(repo, "commit", "-qam", "v2")
    return repo, pinned


def test_install_from_a_local_repository(ws, engine_repo):
    repo, pinned = engine_repo
    job = install_engine(ws, "kohya", url=str(repo), commit=pinned, torch="skip")
    assert job.wait(240) is JobStatus.SUCCEEDED, (job.error, job.log_tail(30))
    dest = ws.engines_dir / "sd-scripts"
    assert (dest / "train_network.py").read_text() == "print('v1')\n"            # the pinned commit, not HEAD
    assert (dest / "venv" / "bin" / "python").exists()
    assert ws.settings.get("kohya_dir") == str(dest)
    assert ws.settings.get("kohya_python") == str(dest / "venv" / "bin" / "python")
    assert not (ws.engines_dir / "sd-scripts.partial").exists()
    markers = [json.loads(line.split(" ", 1)[1]) for line in job.log_path.read_text().splitlines() if line.startswith("@@lora-nb ")]
    phases = [m.get("phase") for m in markers if m["event"] == "progress"]
    steps = [p for p in phases if p in ("clone", "checkout", "venv", "torch", "requirements", "settings", "installed")]
    assert steps == ["clone", "checkout", "venv", "torch", "requirements", "settings", "installed"]
    status = get_engine("kohya", ws).check()
    assert status.path == dest and status.version == pinned
    assert not status.ok and "lacks torch" in status.problems[0]                    # honest: the test engine has no torch


def test_a_failed_install_leaves_nothing_and_changes_no_setting(ws, engine_repo):
    repo, _ = engine_repo
    job = install_engine(ws, "kohya", url=str(repo), commit="0" * 40, torch="skip")
    assert job.wait(120) is JobStatus.FAILED
    assert "Installing kohya failed" in " ".join(job.hints)
    assert not (ws.engines_dir / "sd-scripts").exists() and not (ws.engines_dir / "sd-scripts.partial").exists()
    assert ws.settings.get("kohya_dir") is None


def test_a_forced_reinstall_that_fails_keeps_the_old_engine(ws, engine_repo):
    repo, _ = engine_repo
    old = ws.engines_dir / "sd-scripts"
    old.mkdir(parents=True)
    (old / "train_network.py").write_text("mine")
    with pytest.raises(EngineError, match="already exists.*force=True"):
        install_engine(ws, "kohya", url=str(repo), torch="skip")
    job = install_engine(ws, "kohya", url=str(repo), commit="0" * 40, torch="skip", force=True)
    assert job.wait(120) is JobStatus.FAILED
    assert (old / "train_network.py").read_text() == "mine"


@pytest.mark.parametrize("kw, message", [
    (dict(name="comfy"), "no engine called 'comfy'"),
    (dict(name="kohya", url="https://user:ghp_abcdefghijklmnopqrstuvwxyz0123456789@github.com/x/y.git"), "contains credentials"),
    (dict(name="kohya", torch="tensorflow"), "not a torch choice"),
])
def test_bad_install_requests_are_refused(ws, kw, message):
    name = kw.pop("name")
    with pytest.raises(EngineError, match=message):
        install_engine(ws, name, **kw)
    assert ws.jobs.list() == []


def cli(ws, *args, timeout=120):
    return subprocess.run([sys.executable, "-m", "lora_nb.cli", "-w", str(ws.root), *args], capture_output=True, text=True,
                          timeout=timeout)


def test_engines_check_cli(ws):
    out = cli(ws, "engines", "check", "--json")
    assert out.returncode == 1
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert {r["name"] for r in rows} == {"kohya", "ai-toolkit"} and not any(r["ok"] for r in rows)
    assert "lora-nb engines install kohya" in next(r for r in rows if r["name"] == "kohya")["problems"][0]


def test_train_cli_dry_run_and_follow(ws, dataset, model_file, standin_kohya, tmp_path):
    cfg = tmp_path / "alice.toml"
    cfg.write_text(f'engine = "kohya"\nmodel_family = "sd15"\ndataset = "alice"\npretrained_model_name_or_path = "{model_file}"\n'
                   'resolution = "64"\nmin_bucket_reso = 64\nmax_bucket_reso = 128\nmax_train_epochs = 2\noutput_name = "demo"\n'
                   'mixed_precision = "no"\noptimizer_type = "AdamW"\n')
    dry = cli(ws, "train", str(cfg), "--dry-run", "--set", "max_train_epochs=3")
    assert dry.returncode == 0, dry.stderr
    assert "60 steps (3 epochs x 20 steps)" in dry.stdout and ws.jobs.list() == []
    run = cli(ws, "train", str(cfg), "--follow", timeout=240)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr
    assert "model saved." in run.stdout and "succeeded]" in run.stdout
    assert ws.jobs.list()[0].status is JobStatus.SUCCEEDED


def test_train_cli_bad_file(ws, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("engine = \n")
    out = cli(ws, "train", str(bad))
    assert out.returncode != 0 and "is not valid TOML" in out.stderr and "Traceback" not in out.stderr
    out = cli(ws, "train", str(tmp_path / "missing.json"))
    assert "does not exist" in out.stderr
