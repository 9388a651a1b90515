"""A real two-node Ray cluster on this machine, for the Ray executor's tests and benchmark.

``ray start --head`` plus a second node started into the same cluster with ``ray start --address``,
each declaring logical GPUs with ``--num-gpus`` (Ray only counts them; the jobs are CPU stand-ins).
Every port is picked free, the session lives in its own short temp folder, and :meth:`stop` kills
exactly this cluster's processes (never ``ray stop``, which would end every Ray on the machine).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from support import free_port

RAY = str(Path(sys.executable).parent / "ray")

# quick failure detection for the node-killed test; tiny object stores for a 2-core, 24 GB machine
ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_health_check_initial_delay_ms": "5000",
    "RAY_health_check_period_ms": "2000",
    "RAY_health_check_timeout_ms": "5000",
    "RAY_health_check_failure_threshold": "5",   # a dead node is noticed in ~10-25 s, a busy one is not taken for dead
    "RAY_raylet_start_wait_time_s": "180",       # a loaded 2-core machine starts nodes slowly
}


class LocalRayCluster:
    """Start with :meth:`start`; ``address`` is the dashboard (Jobs API); :meth:`stop` always cleans up."""

    def __init__(self, gpus_per_node: int = 2, cpus_per_node: int = 2, workers: int = 1) -> None:
        self.temp = tempfile.mkdtemp(prefix="lnray")    # short: Ray's unix socket paths must fit 107 chars
        self.gpus, self.cpus, self.workers = gpus_per_node, cpus_per_node, workers
        self.gcs_port = free_port()
        self.dashboard_port = free_port()
        self.address = f"http://127.0.0.1:{self.dashboard_port}"
        self.worker_node_ports: list[int] = []
        self.env = dict(os.environ, **ENV)

    def _node_args(self) -> list[str]:
        return ["--num-gpus", str(self.gpus), "--num-cpus", str(self.cpus), "--object-store-memory", "100000000",
                "--node-manager-port", str(free_port()),
                "--object-manager-port", str(free_port()), "--dashboard-agent-listen-port", str(free_port()),
                "--dashboard-agent-grpc-port", str(free_port()), "--metrics-export-port", str(free_port()),
                "--runtime-env-agent-port", str(free_port()), "--disable-usage-stats"]

    def _ray(self, *args: str, timeout: float = 480) -> None:
        r = subprocess.run([RAY, *args], env=self.env, cwd=self.temp, capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError(f"ray {' '.join(args[:2])} failed: {_errors(r.stdout + r.stderr)}")

    def start(self, attempts: int = 2) -> "LocalRayCluster":
        """Start the head and the workers; on a loaded machine Ray's start can time out, so try again once."""
        for attempt in range(attempts):
            try:
                return self._start()
            except (RuntimeError, subprocess.TimeoutExpired):
                if attempt == attempts - 1:
                    raise
                self.temp = tempfile.mkdtemp(prefix="lnray")
                self.gcs_port, self.dashboard_port = free_port(), free_port()
                self.address = f"http://127.0.0.1:{self.dashboard_port}"
                self.worker_node_ports = []
        raise AssertionError("unreachable")

    def _start(self) -> "LocalRayCluster":
        self.client_port = free_port()      # Ray Client (ray://): shipped jobs' outputs come back through it
        self.client_address = f"ray://127.0.0.1:{self.client_port}"
        try:
            self._ray("start", "--head", "--port", str(self.gcs_port), "--dashboard-port", str(self.dashboard_port),
                      "--dashboard-host", "127.0.0.1", "--include-dashboard", "true", "--temp-dir", self.temp,
                      "--ray-client-server-port", str(self.client_port), *self._node_args())
            for _ in range(self.workers):
                args = self._node_args()
                self.worker_node_ports.append(int(args[args.index("--node-manager-port") + 1]))
                self._ray("start", "--address", f"127.0.0.1:{self.gcs_port}", *args)
            self.wait_gpus(self.gpus * (1 + self.workers))
        except BaseException:
            self.stop()
            raise
        return self

    def total_gpus(self) -> float:
        r = subprocess.run([RAY, "status", "--address", f"127.0.0.1:{self.gcs_port}"], env=self.env,
                           capture_output=True, text=True, timeout=60)
        for line in r.stdout.splitlines():
            if line.strip().endswith(" GPU") and "/" in line:
                return float(line.split("/")[1].split()[0])
        return 0.0

    def wait_gpus(self, n: int, timeout: float = 120) -> None:
        from lora_nb.jobs.ray_executor import check_reachable

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                check_reachable(self.address)
                if self.total_gpus() >= n:
                    return
            except Exception:
                pass
            time.sleep(1)
        raise RuntimeError(f"the Ray cluster did not show {n} GPUs within {timeout} s")

    def _processes(self, match: "callable") -> list[psutil.Process]:
        found: dict[int, psutil.Process] = {}
        for p in psutil.process_iter(["cmdline"]):
            cmd = " ".join(p.info.get("cmdline") or [])
            if match(cmd):
                found[p.pid] = p
                try:
                    found.update({c.pid: c for c in p.children(recursive=True)})
                except psutil.Error:
                    pass
        return list(found.values())

    def kill_worker_node(self) -> int:
        """SIGKILL the second node's raylet and everything under it (a machine that lost power); count killed."""
        port = self.worker_node_ports[0]
        procs = self._processes(lambda cmd: "raylet" in cmd and f"--node_manager_port={port}" in cmd)
        for p in procs:
            try:
                p.kill()
            except psutil.Error:
                pass
        return len(procs)

    def stop(self) -> None:
        """Kill every process of this cluster (its session folder or GCS port is on their command line)."""
        needle = re.compile(rf":{self.gcs_port}\b")
        for _ in range(3):
            procs = self._processes(lambda cmd: self.temp in cmd or bool(needle.search(cmd)))
            if not procs:
                break
            for p in procs:
                try:
                    p.kill()
                except psutil.Error:
                    pass
            psutil.wait_procs(procs, timeout=10)
        shutil.rmtree(self.temp, ignore_errors=True)


def _errors(output: str) -> str:
    """The lines of ``ray start`` output that say what went wrong (its INFO lines are many)."""
    lines = [l for l in output.splitlines() if l.strip() and " INFO " not in l]
    return "\n".join(lines[-40:])[-4000:]
