"""The SkyPilot task that brings up GPU nodes for a Ray cluster of lora-nb jobs (``lora-nb cluster up``).

:func:`task_config` is a pure function from :class:`ClusterOptions` to the task in SkyPilot's own YAML schema
(what ``sky.Task.from_yaml_config`` reads): resources (``infra``, ``accelerators``), ``num_nodes``, a file mount
of our provisioning script, ``setup`` (install lora-nb, Ray and the engine with ``scripts/vast-provision.sh``,
non-interactively, without the dashboard service) and ``run`` (node 0 starts the Ray head, the others join it
through ``SKYPILOT_NODE_IPS``; the head keeps the SkyPilot job alive while Ray has jobs, then ends it, so
SkyPilot's autostop counts idle time from the last job). Autostop is a launch option, not part of the task:
:mod:`lora_nb.cloud.sky_driver` passes it to ``sky.launch``.

SkyPilot itself runs in its own Python (its pinned ``click<8.2`` clashes with the Jupyter stack):
:func:`skypilot_python` finds it.

>>> cfg = task_config(ClusterOptions(gpus="RTX4090:1", nodes=1, cloud="vast"), provision_script="/x/vast-provision.sh")
>>> cfg["resources"], cfg["num_nodes"]
({'accelerators': 'RTX4090:1', 'infra': 'vast'}, 1)
>>> ClusterOptions(gpus="RTX4090", nodes=1).validate()
Traceback (most recent call last):
...
lora_nb.errors.ConfigError: --gpus 'RTX4090' is not NAME:COUNT. Write it like RTX4090:1 or A100-80GB:2.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..errors import ConfigError, LoraNbError

__all__ = ["ClusterOptions", "ClusterError", "call_driver", "task_config", "setup_script", "run_script", "render_yaml", "skypilot_python",
           "provision_script_path", "REMOTE_PROVISION", "SKYPILOT_VERSION", "CLOUDS", "ENGINES", "RAY_VERSION"]

SKYPILOT_VERSION = "0.14.1"          # what the `cloud` extra pins and the tests validate against
RAY_VERSION = "2.60.0"               # Ray on the nodes (the executor's client must match its minor version)
REMOTE_PROVISION = "~/.lora-nb/vast-provision.sh"
CLOUDS = ("vast", "runpod", "lambda", "aws", "gcp", "azure", "kubernetes")
ENGINES = ("kohya", "ai-toolkit")
SINGLE_NODE_CLOUDS = {"vast": "SkyPilot's Vast.ai cloud runs one node per cluster ('Multi-node not supported yet, as the "
                              "interconnection among nodes are non-trivial on Vast')"}
_GPUS = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.-]*):([1-9][0-9]?)$")
_NAME = re.compile(r"^[a-z]([-a-z0-9]{0,33}[a-z0-9])?$")


@dataclass(frozen=True)
class ClusterOptions:
    """What ``lora-nb cluster up`` was asked for."""

    gpus: str = "RTX4090:1"               # accelerator NAME:COUNT per node
    nodes: int = 1
    cloud: str | None = "vast"            # None: SkyPilot picks the cheapest enabled cloud
    autostop_minutes: int | None = 30     # idle minutes before SkyPilot stops the cluster; None: never
    engine: str | None = None             # kohya | ai-toolkit | None
    name: str = "lora-nb"
    lora_nb_spec: str = "lora-nb[gpu]"    # pip requirement for lora-nb on the nodes
    ray_port: int = 6379                  # our Ray (SkyPilot's own runtime Ray uses 6380)
    dashboard_port: int = 8265            # the Ray dashboard: the Jobs API the executor submits to
    idle_seconds: int = 300               # the head ends the SkyPilot job after this long without Ray jobs
    envs: Mapping[str, str] = field(default_factory=dict)

    def validate(self) -> "ClusterOptions":
        """Raise ConfigError (one sentence and the fix) for options SkyPilot or our nodes cannot honour."""
        if not _GPUS.match(self.gpus or ""):
            raise ConfigError(f"--gpus '{self.gpus}' is not NAME:COUNT.", fix="Write it like RTX4090:1 or A100-80GB:2.")
        if not isinstance(self.nodes, int) or not 1 <= self.nodes <= 64:
            raise ConfigError(f"--nodes must be 1 to 64 (got {self.nodes}).", fix="Give a node count such as --nodes 2.")
        if self.cloud is not None and self.cloud not in CLOUDS:
            raise ConfigError(f"--cloud '{self.cloud}' is not one lora-nb knows.", fix=f"Use one of: {', '.join(CLOUDS)}.")
        if self.nodes > 1 and self.cloud in SINGLE_NODE_CLOUDS:
            raise ConfigError(f"{self.nodes} nodes on {self.cloud} cannot be one cluster: {SINGLE_NODE_CLOUDS[self.cloud]}.",
                              fix=f"Use --nodes 1 with a multi-GPU --gpus (e.g. {self.gpus.split(':')[0]}:4) on Vast.ai, "
                                  "or --cloud runpod|lambda|aws|gcp|azure|kubernetes for several nodes.")
        if self.engine is not None and self.engine not in ENGINES:
            raise ConfigError(f"--engine '{self.engine}' is not kohya or ai-toolkit.", fix="Use --engine kohya or --engine ai-toolkit.")
        if self.autostop_minutes is not None and not 0 <= self.autostop_minutes <= 7 * 24 * 60:
            raise ConfigError(f"--autostop must be 0 to 10080 minutes (got {self.autostop_minutes}).",
                              fix="Give idle minutes, e.g. --autostop 30, or --no-autostop.")
        if not _NAME.match(self.name):
            raise ConfigError(f"The cluster name '{self.name}' is not valid for SkyPilot.",
                              fix="Use lower-case letters, digits and '-', starting with a letter (e.g. lora-nb).")
        return self

    @property
    def accelerator(self) -> tuple[str, int]:
        name, count = self.gpus.split(":")
        return name, int(count)


def provision_script_path() -> Path:
    """scripts/vast-provision.sh of this checkout (the file the nodes run)."""
    path = Path(__file__).resolve().parents[2] / "scripts" / "vast-provision.sh"
    if not path.is_file():
        raise ConfigError("scripts/vast-provision.sh is not beside this lora-nb (an installed wheel has no scripts/).",
                          fix="Run `lora-nb cluster up` from a source checkout, or pass --provision-script PATH.")
    return path


def setup_script(opts: ClusterOptions) -> str:
    """The ``setup`` of every node: a venv with lora-nb, Ray and the engine, by our provisioning script.

    Non-interactive and idempotent (SkyPilot re-runs setup on ``sky launch`` of an existing cluster). The dashboard
    service and portal steps are skipped (``LORA_NB_DASHBOARD=0``): jobs reach the nodes through Ray."""
    engine = opts.engine or ""
    return "\n".join([
        "set -euo pipefail",
        'LORA_NB_VENV="${LORA_NB_VENV:-$HOME/lora-nb-venv}"',
        '[ -x "$LORA_NB_VENV/bin/python" ] || python3 -m venv "$LORA_NB_VENV"',
        '[ "$(id -u)" = 0 ] || export LORA_NB_ROOT="${LORA_NB_ROOT:-$HOME/.lora-nb-root}"',
        f'LORA_NB_VENV="$LORA_NB_VENV" LORA_NB_DASHBOARD=0 LORA_NB_ENGINE={shlex.quote(engine)} '
        'WORKSPACE="${WORKSPACE:-$HOME/workspace}" '
        'LORA_NB_SPEC="${LORA_NB_SPEC}" LORA_NB_WITH="${LORA_NB_WITH-}" '
        f'bash {REMOTE_PROVISION}',
    ]) + "\n"


def run_script(opts: ClusterOptions) -> str:
    """The ``run`` of every node: node 0 starts the Ray head and stays while Ray has jobs; the others join it.

    Uses what SkyPilot sets on each node: ``SKYPILOT_NODE_RANK``, ``SKYPILOT_NODE_IPS`` (one per line, the head
    first) and ``SKYPILOT_NUM_GPUS_PER_NODE``. ``LORA_NB_BIN`` is where lora-nb and ray were installed."""
    port, dash = int(opts.ray_port), int(opts.dashboard_port)
    return "\n".join([
        "set -euo pipefail",
        'BIN="${LORA_NB_BIN:-${LORA_NB_VENV:-$HOME/lora-nb-venv}/bin}"',
        'RANK="${SKYPILOT_NODE_RANK:-0}"',
        'HEAD_IP="$(printf \'%s\\n\' "${SKYPILOT_NODE_IPS:-127.0.0.1}" | head -n1)"',
        'GPUS="${SKYPILOT_NUM_GPUS_PER_NODE:-0}"',
        f'PORT={port}',
        f'DASH={dash}',
        '# shellcheck disable=SC2086  # LORA_NB_RAY_ARGS: extra `ray start` words (e.g. --temp-dir=... on the head)',
        'if [ "$RANK" = 0 ]; then',
        '    "$BIN/ray" start --head --node-ip-address="$HEAD_IP" --port="$PORT" --num-gpus="$GPUS" '
        '--dashboard-host=0.0.0.0 --dashboard-port="$DASH" --disable-usage-stats ${LORA_NB_RAY_ARGS:-}',
        '    echo "lora-nb: Ray head at $HEAD_IP:$PORT (dashboard http://$HEAD_IP:$DASH); '
        'point the workspace at it: lora-nb jobs executor --set http://$HEAD_IP:$DASH"',
        f'    "$BIN/python" -m lora_nb.cloud.ray_idle --address "http://127.0.0.1:$DASH" --idle "${{LORA_NB_RAY_IDLE_SECONDS:-{int(opts.idle_seconds)}}}"',
        '    "$BIN/ray" stop',
        'else',
        '    exec "$BIN/ray" start --address="$HEAD_IP:$PORT" --num-gpus="$GPUS" --disable-usage-stats --block ${LORA_NB_WORKER_RAY_ARGS:-}',
        'fi',
    ]) + "\n"


def task_config(opts: ClusterOptions, provision_script: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The SkyPilot task, in SkyPilot's YAML schema (``sky.Task.from_yaml_config`` reads it)."""
    opts.validate()
    script = str(provision_script) if provision_script is not None else str(provision_script_path())
    resources: dict[str, Any] = {"accelerators": opts.gpus}
    if opts.cloud:
        resources["infra"] = opts.cloud
    envs = {"LORA_NB_SPEC": opts.lora_nb_spec, "LORA_NB_WITH": f"ray[default]=={RAY_VERSION}", **dict(opts.envs)}
    return {
        "name": opts.name,
        "resources": resources,
        "num_nodes": opts.nodes,
        "envs": envs,
        "file_mounts": {REMOTE_PROVISION: script},
        "setup": setup_script(opts),
        "run": run_script(opts),
    }


def render_yaml(opts: ClusterOptions, provision_script: str | os.PathLike[str] | None = None) -> str:
    """The task as YAML text (what ``sky launch task.yaml`` would read)."""
    import yaml

    return yaml.safe_dump(task_config(opts, provision_script), sort_keys=False)


def skypilot_python(settings_value: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """The Python that has SkyPilot: ``$LORA_NB_SKYPILOT_PYTHON``, the ``skypilot_python`` setting, this Python
    if it imports ``sky``, else the cached venv ``~/.cache/lora-nb/skypilot-venv`` (scripts/skypilot-venv.sh)."""
    import importlib.util

    env = os.environ if env is None else env
    for candidate in (env.get("LORA_NB_SKYPILOT_PYTHON"), settings_value):
        if candidate:
            if shutil.which(candidate) or Path(candidate).is_file():
                return candidate
            raise ConfigError(f"The SkyPilot Python '{candidate}' does not exist.",
                              fix="Point LORA_NB_SKYPILOT_PYTHON (or the skypilot_python setting) at a python with skypilot installed.")
    if importlib.util.find_spec("sky") is not None:
        return sys.executable
    cached = Path(env.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lora-nb" / "skypilot-venv" / "bin" / "python"
    if cached.is_file():
        return str(cached)
    raise ConfigError("SkyPilot is not installed.",
                      fix=f"Run `bash scripts/skypilot-venv.sh` (skypilot[vast]=={SKYPILOT_VERSION} in its own venv: its click<8.2 "
                          "clashes with Jupyter), or set LORA_NB_SKYPILOT_PYTHON.")


class ClusterError(LoraNbError):
    """SkyPilot refused or failed (its own one-line reason is in the message)."""


DRIVER = Path(__file__).resolve().parent / "sky_driver.py"


def call_driver(request: dict[str, Any], python: str | None = None, env: Mapping[str, str] | None = None,
                timeout: float = 3600, stream: Any = None) -> dict[str, Any]:
    """Run :mod:`lora_nb.cloud.sky_driver` under the SkyPilot Python with ``request``; return its JSON answer.

    SkyPilot's own output goes to ``stream`` (default: this process's stderr) as it comes."""
    import json
    import subprocess

    exe = python or skypilot_python()
    stream = stream or sys.stderr
    proc = subprocess.Popen([exe, str(DRIVER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=None if env is None else dict(env))
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(json.dumps(request))
    proc.stdin.close()
    answer: dict[str, Any] | None = None
    for line in proc.stdout:
        if line.startswith("@@lora-nb-sky "):
            answer = json.loads(line[len("@@lora-nb-sky "):])
        elif not line.startswith("<sky-payload>"):
            stream.write(line)
    proc.wait(timeout=timeout)
    if answer is None:
        raise ClusterError(f"SkyPilot ended (exit code {proc.returncode}) without an answer to '{request.get('action')}'.",
                           fix="See its output above; check the SkyPilot Python with `<python> -c 'import sky'`.")
    if answer.get("error") and request.get("action") != "validate":
        verb = {"launch": "launch", "status": "read the status of", "down": "tear down"}.get(str(request.get("action")), "handle")
        raise ClusterError(f"SkyPilot could not {verb} the cluster: {answer['error'].rstrip('.:')}.",
                           fix="Run `sky check` in the SkyPilot venv to see which clouds are enabled.")
    return answer
