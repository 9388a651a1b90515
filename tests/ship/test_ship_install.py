"""Install paths: the built wheel (contents, installs into a fresh venv and runs), the Vast.ai
provisioning script against a scratch root (real bash, real venv, real pip, a fake supervisorctl),
and environment.yml kept in step with pyproject's extras.

Nothing here reaches the network: wheels are built locally (`pip wheel --no-build-isolation`) and
installed with `--no-index`; the template's torch is a hand-made `torch` wheel, so the script's
"never touch torch" guard is tested for real without downloading several GB.
"""
from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from support import build_lora_wheel

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "vast-provision.sh"


def make_wheel(folder: Path, name: str, version: str, requires: list[str] = ()) -> Path:
    """A minimal pure-Python wheel with one module, written by hand."""
    dist = f"{name}-{version}"
    path = folder / f"{name}-{version}-py3-none-any.whl"
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n" + "".join(f"Requires-Dist: {r}\n" for r in requires)
    files = {f"{name}/__init__.py": f"__version__ = '{version}'\n", f"{dist}.dist-info/METADATA": meta,
             f"{dist}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: lora-nb-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = "".join(f"{k},,\n" for k in files) + f"{dist}.dist-info/RECORD,,\n"
    with zipfile.ZipFile(path, "w") as z:
        for k, v in files.items():
            z.writestr(k, v)
        z.writestr(f"{dist}.dist-info/RECORD", record)
    return path


@pytest.fixture(scope="module")
def wheels(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheels")
    build_lora_wheel(out)
    make_wheel(out, "torch", "2.5.1")
    make_wheel(out, "greedy", "1.0", ["torch==9.9"])
    make_wheel(out, "torch", "9.9")
    return out


def lora_wheel(wheels: Path) -> Path:
    return next(wheels.glob("lora_nb-*.whl"))


@pytest.fixture(scope="module")
def template_venv(tmp_path_factory, wheels):
    """A stand-in for the template's /venv/main: a fresh venv whose torch is 2.5.1."""
    venv = tmp_path_factory.mktemp("tpl") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-index", str(wheels / "torch-2.5.1-py3-none-any.whl")],
                   check=True, timeout=300)
    return venv


def test_wheel_contents(wheels):
    names = set(zipfile.ZipFile(lora_wheel(wheels)).namelist())
    assert "lora_nb/widgets/__init__.py" in names                       # widgets/ ships as lora_nb.widgets
    assert "lora_nb/engines/kohya_options.json" in names
    assert "lora_nb/tasks/install_engine.py" in names
    assert not any(n.startswith(("tests/", "bench/", "widgets/")) for n in names)
    assert "lora_nb/_notebooks/dashboard.ipynb" in names, "the wheel must contain the notebook the dashboard serves"
    assert {"lora_nb/_voila_templates/lora-nb/conf.json", "lora_nb/_voila_templates/lora-nb/index.html.j2"} <= names
    assert "lora_nb/widgets/upload.py" in names and "lora_nb/cli/dashboard.py" in names
    entry = [n for n in names if n.endswith("entry_points.txt")]
    assert entry and "lora-nb = lora_nb.cli:main" in zipfile.ZipFile(lora_wheel(wheels)).read(entry[0]).decode()


def _deps_path() -> str:
    """The test environment's site-packages, so the bare venv can import lora-nb's dependencies."""
    return sysconfig.get_paths()["purelib"]


def run_provision(tmp_path, venv, spec, pip_args="--no-deps --no-index", **env):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True, exist_ok=True)
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir(exist_ok=True)
    calls = tmp_path / "supervisorctl.calls"
    ctl = fake_bin / "supervisorctl"
    ctl.write_text(f"#!/bin/sh\necho \"$@\" >> {calls}\n")
    ctl.chmod(0o755)
    full = dict(os.environ, LORA_NB_VENV=str(venv), LORA_NB_SPEC=str(spec), LORA_NB_PIP_ARGS=pip_args, WORKSPACE=str(tmp_path / "workspace"),
                LORA_NB_ROOT=str(root), SUPERVISORCTL=str(ctl), PATH=f"{fake_bin}:/usr/bin:/bin", PIP_DISABLE_PIP_VERSION_CHECK="1")
    full.update(env)
    proc = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, env=full, timeout=600)
    return proc, root, calls


def torch_version(venv: Path) -> str:
    return subprocess.run([str(venv / "bin" / "python"), "-c", "import torch; print(torch.__version__)"], capture_output=True,
                          text=True).stdout.strip()


def test_provision_installs_without_touching_torch_and_registers_the_service(tmp_path, wheels, template_venv):
    portal_before = "applications:\n  Jupyter:\n    hostname: localhost\n    external_port: 8080\n    internal_port: 18080\n    open_path: /\n    name: Jupyter\n"
    (tmp_path / "root" / "etc").mkdir(parents=True)
    (tmp_path / "root" / "etc" / "portal.yaml").write_text(portal_before)
    for _ in range(2):                                                       # idempotent
        proc, root, calls = run_provision(tmp_path, template_venv, lora_wheel(wheels))
        assert proc.returncode == 0, proc.stdout + proc.stderr
    assert torch_version(template_venv) == "2.5.1"
    assert "keeping the template's torch 2.5.1" in proc.stdout
    assert (template_venv / "bin" / "lora-nb").exists()
    env = (root / "etc" / "environment").read_text()
    assert env.count("LORA_NB_HOME=") == 1 and f'LORA_NB_HOME="{tmp_path}/workspace/lora-nb"' in env
    assert (tmp_path / "workspace" / "lora-nb").is_dir()
    conf = (root / "etc" / "supervisor" / "conf.d" / "lora-nb.conf").read_text()
    assert "[program:lora-nb]" in conf and "command=/opt/supervisor-scripts/lora-nb.sh" in conf and "killasgroup=true" in conf
    start = (root / "opt" / "supervisor-scripts" / "lora-nb.sh").read_text()
    assert "dashboard --ip 127.0.0.1 --port 18866" in start and "/.provisioning" in start
    assert os.access(root / "opt" / "supervisor-scripts" / "lora-nb.sh", os.X_OK)
    portal = (root / "etc" / "portal.yaml").read_text()
    assert portal.startswith(portal_before) and portal.count("  lora-nb:") == 1
    assert "external_port: 8866" in portal and "internal_port: 18866" in portal
    log = calls.read_text().splitlines()
    assert log.count("restart caddy") == 1 and log.count("reread") == 2 and log.count("update") == 2
    # the installed package is the wheel, and it runs (dependencies from the test environment)
    # (run outside the repository: its lora_nb/ folder would shadow the installed package)
    run = subprocess.run([str(template_venv / "bin" / "lora-nb"), "--version"], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=_deps_path()), cwd=tmp_path)
    assert run.returncode == 0 and run.stdout.startswith("lora-nb "), run.stderr
    where = subprocess.run([str(template_venv / "bin" / "python"), "-c",
                            "import lora_nb.widgets, lora_nb; from lora_nb.cli.dashboard import data_paths; print(lora_nb.__file__); print(data_paths())"],
                           capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=_deps_path()), cwd=tmp_path)
    assert where.stdout.startswith(str(template_venv)), where.stderr
    assert where.stdout.count(str(template_venv)) == 3              # the dashboard's data comes from the installed wheel


def test_provision_refuses_a_package_that_would_replace_torch(tmp_path, wheels, template_venv):
    proc, _, _ = run_provision(tmp_path, template_venv, "greedy", pip_args=f"--no-index --find-links {wheels}")
    assert proc.returncode == 1
    assert "the template's torch was left alone" in proc.stderr
    assert torch_version(template_venv) == "2.5.1"


@pytest.mark.parametrize("env, message", [
    (dict(LORA_NB_PORT="8866"), "equal ports make Caddy skip authentication"),
    (dict(LORA_NB_ENGINE="comfy"), "LORA_NB_ENGINE must be kohya, ai-toolkit or empty"),
    (dict(LORA_NB_DASHBOARD="yes"), "LORA_NB_DASHBOARD must be 0 or 1 (got 'yes')"),
    (dict(LORA_NB_PORT="80; rm -rf /"), "must be numbers"),
])
def test_provision_rejects_bad_settings(tmp_path, template_venv, env, message):
    proc, root, _ = run_provision(tmp_path, template_venv, "lora-nb", **env)
    assert proc.returncode == 1 and message in proc.stderr
    assert not (root / "etc" / "supervisor").exists()


def test_provision_without_a_portal_file_says_what_to_add(tmp_path, wheels, template_venv):
    proc, root, _ = run_provision(tmp_path, template_venv, lora_wheel(wheels))
    assert proc.returncode == 0, proc.stderr
    assert "localhost:8866:18866:/:lora-nb" in proc.stdout and not (root / "etc" / "portal.yaml").exists()


def test_environment_yml_matches_the_extras():
    import tomllib

    import yaml

    env = yaml.safe_load((REPO / "environment.yml").read_text())
    assert "pytorch" not in env.get("channels", []) and "defaults" not in env.get("channels", [])
    pip_block = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    spec = pip_block[0]
    chosen = spec[spec.index("[") + 1:spec.index("]")].split(",")
    assert set(chosen) <= set(extras) and not {"cpu", "gpu"} <= set(chosen)    # never both onnxruntimes
