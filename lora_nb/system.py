"""System facts for the dashboard header: GPU name and memory, RAM, free disk of the workspace.

Pure and quick (nvidia-smi with a short timeout; torch is never imported for this).

>>> facts = info(".")
>>> sorted(facts)[:4], facts["ram_total"] > 0
(['cpus', 'disk_free', 'disk_total', 'gpus'], True)
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

__all__ = ["info", "summary", "gpus"]


def gpus(timeout: float = 2.0) -> list[dict[str, Any]]:
    """One dict per NVIDIA GPU (name, memory used/total in MiB, utilisation %), from nvidia-smi; [] without one."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return []
    try:
        out = subprocess.run([exe, "--query-gpu=name,memory.used,memory.total,utilization.gpu", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return []
    result = []
    for line in out.stdout.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 4:
            try:
                result.append({"name": parts[0], "memory_used": int(float(parts[1])), "memory_total": int(float(parts[2])),
                               "utilization": int(float(parts[3])) if parts[3].replace(".", "").isdigit() else None})
            except ValueError:
                continue
    return result


def info(workspace: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """``{"gpus": [...], "ram_used", "ram_total", "disk_free", "disk_total"}`` (bytes) for the workspace's disk."""
    import psutil

    vm = psutil.virtual_memory()
    root = Path(workspace) if workspace else Path.home()
    while not root.exists() and root != root.parent:
        root = root.parent
    du = shutil.disk_usage(root)
    return {"gpus": gpus(), "ram_used": vm.total - vm.available, "ram_total": vm.total, "disk_free": du.free, "disk_total": du.total,
            "cpus": os.cpu_count()}


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB"


def summary(facts: dict[str, Any]) -> str:
    """One line: ``RTX 4090 3.1/24.0 GiB · RAM 12.3/64.0 GiB · disk 212.4 GiB free``."""
    parts = [f"{g['name']} {g['memory_used'] / 1024:.1f}/{g['memory_total'] / 1024:.1f} GiB" for g in facts["gpus"]] or ["no GPU"]
    parts.append(f"RAM {_gib(facts['ram_used'])}/{_gib(facts['ram_total'])}")
    parts.append(f"disk {_gib(facts['disk_free'])} free")
    return " · ".join(parts)
