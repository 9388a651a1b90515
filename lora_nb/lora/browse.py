"""The LoRAs of a workspace (run outputs and ``loras/``), and resizing as a job.

>>> import lora_nb, tempfile
>>> ws = lora_nb.Workspace(tempfile.mkdtemp())
>>> list_loras(ws)
[]
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import LoraFileError
from .info import LoraInfo, lora_info

if TYPE_CHECKING:  # pragma: no cover
    from ..ports import JobHandle, LorasHome

__all__ = ["list_loras", "resize_job", "loras_dir"]


def loras_dir(ws: "LorasHome") -> Path:
    ws.loras_dir.mkdir(exist_ok=True)
    return ws.loras_dir


def list_loras(ws: "LorasHome") -> list[LoraInfo]:
    """Every readable LoRA in ``loras/`` and in the runs' output folders, newest first (unreadable files are skipped)."""
    found: list[Path] = []
    for base, pattern in ((loras_dir(ws), "**/*.safetensors"), (ws.runs_dir, "*/output/**/*.safetensors")):
        found += [p for p in base.glob(pattern) if p.is_file() and not p.name.startswith(".")]
    out = []
    for p in sorted(set(found), key=lambda p: p.stat().st_mtime, reverse=True):
        try:
            info = lora_info(p)
        except LoraFileError:
            continue
        if info.modules:
            out.append(info)
    return out


def resize_job(ws: "LorasHome", src: str | os.PathLike[str], dst: str | os.PathLike[str] | None = None, **options: Any) -> "JobHandle":
    """Run :func:`lora_nb.lora.resize` as a job (``dst`` defaults to ``loras/<name>-r<rank>.safetensors``)."""
    from .header import read_header
    from .rank_resize import METHODS

    src = Path(src).resolve()
    read_header(src)                                    # a clear error now for a broken file
    rank = options.get("rank") or 4
    method = options.get("method")
    if method is not None and method not in METHODS:
        from ..errors import ConfigError

        raise ConfigError(f"'{method}' is not a resize method.", fix="Use sv_ratio, sv_fro, sv_cumulative, or none for a fixed rank.")
    if dst is None:
        tag = f"r{rank}" if not method else f"{method}{options.get('param')}"
        dst = loras_dir(ws) / f"{src.stem}-{tag}.safetensors"
    params = {"src": str(src), "dst": str(Path(dst).resolve()), **{k: v for k, v in options.items() if v is not None}}
    from ..nvml import device_indices

    # on CUDA it holds a GPU slot like any GPU job; told device="cpu" (or with no GPU) it holds none and sees none
    on_gpu = options.get("device") != "cpu" and bool(device_indices())
    return ws.jobs.submit_task("resize_lora", params, name=f"resize {src.name}", gpus=1 if on_gpu else 0)
