"""System facts for the dashboard header: GPU name and memory, RAM, free disk of the workspace; the
training settings this hardware can run; whether the Hugging Face Hub can be reached.

Pure and quick (nvidia-smi with a short timeout; torch is never imported for this).

>>> facts = info(".")
>>> sorted(facts)[:4], facts["ram_total"] > 0
(['cpus', 'disk_free', 'disk_total', 'gpus'], True)
>>> training_defaults([])
{'optimizer_type': 'AdamW', 'mixed_precision': 'no'}
>>> training_defaults([{"name": "Tesla T4", "memory_total": 15360, "compute_cap": 7.5}])["mixed_precision"]
'fp16'
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

__all__ = ["info", "summary", "gpus", "training_defaults", "hardware_note", "hub_status"]


_QUERY = "name,memory.used,memory.total,utilization.gpu"


def gpus(timeout: float = 2.0) -> list[dict[str, Any]]:
    """One dict per NVIDIA GPU (name, memory used/total in MiB, utilisation %, compute capability such as 8.9
    or None), from nvidia-smi; [] without one."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return []
    out = None
    for query in (_QUERY + ",compute_cap", _QUERY):      # drivers older than 510 do not know compute_cap
        try:
            out = subprocess.run([exe, f"--query-gpu={query}", "--format=csv,noheader,nounits"],
                                 capture_output=True, text=True, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired):
            return []
        if out.returncode == 0 and out.stdout.strip():
            break
    result = []
    for line in (out.stdout if out is not None and out.returncode == 0 else "").strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 4:
            try:
                cap: float | None = float(parts[4]) if len(parts) > 4 else None
            except ValueError:
                cap = None
            try:
                result.append({"name": parts[0], "memory_used": int(float(parts[1])), "memory_total": int(float(parts[2])),
                               "utilization": int(float(parts[3])) if parts[3].replace(".", "").isdigit() else None,
                               "compute_cap": cap})
            except ValueError:
                continue
    return result


def training_defaults(gpu_list: list[dict[str, Any]] | None = None) -> dict[str, str]:
    """Training settings this machine's hardware can run, for a form's defaults (``gpus()`` when not given).

    No NVIDIA GPU: AdamW and no mixed precision (8-bit optimizers need bitsandbytes on CUDA, bf16 needs
    a GPU). A GPU older than Ampere (compute capability below 8.0, or unknown): fp16. Ampere and newer:
    AdamW8bit and bf16.
    """
    found = gpus() if gpu_list is None else gpu_list
    if not found:
        return {"optimizer_type": "AdamW", "mixed_precision": "no"}
    cap = min((g.get("compute_cap") or 0.0) for g in found)
    return {"optimizer_type": "AdamW8bit", "mixed_precision": "bf16" if cap >= 8.0 else "fp16"}


def hardware_note(gpu_list: list[dict[str, Any]]) -> str:
    """One sentence about training on this machine: that it needs a GPU when there is none, else what was found."""
    if not gpu_list:
        return ("No NVIDIA GPU was found on this machine, and training a LoRA needs one: the form is set to AdamW without "
                "mixed precision, which only a CPU stand-in engine can run. To see a whole run here, use Try the demo "
                "(a CPU stand-in); train on a GPU host.")
    g = gpu_list[0]
    cap = g.get("compute_cap")
    more = f" (and {len(gpu_list) - 1} more)" if len(gpu_list) > 1 else ""
    precision = training_defaults(gpu_list)["mixed_precision"]
    return (f"{g['name']}{more}, {g['memory_total'] / 1024:.0f} GiB" + (f", compute capability {cap:g}" if cap else "")
            + f": the form defaults to {precision} mixed precision and AdamW8bit.")


def hub_status(timeout: float = 3.0) -> dict[str, Any]:
    """Whether models can be downloaded from the Hugging Face Hub from here:
    ``{"endpoint", "offline" (HF_HUB_OFFLINE is set), "reachable" (a TCP connection to the endpoint worked)}``.
    ``reachable`` is None when offline (nothing is tried)."""
    import socket
    from urllib.parse import urlparse

    endpoint = os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in ("1", "ON", "YES", "TRUE")
    if offline:
        return {"endpoint": endpoint, "offline": True, "reachable": None}
    url = urlparse(endpoint)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname or "", port), timeout=timeout).close()
        reachable = True
    except OSError:
        reachable = False
    return {"endpoint": endpoint, "offline": False, "reachable": reachable}


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
