"""``ws.models``: the base models, VAEs and text encoders in ``<workspace>/models``, and downloads as jobs.

>>> import lora_nb, tempfile
>>> ws = lora_nb.Workspace(tempfile.mkdtemp())
>>> ws.models.list()
[]
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import LoraFileError
from ..families import detect_model_family
from .sources import parse_source

if TYPE_CHECKING:  # pragma: no cover
    from ..ports import JobHandle, JobSubmitter

__all__ = ["ModelEntry", "ModelLibrary", "classify"]

_PIPELINES = {"StableDiffusionXLPipeline": "sdxl", "FluxPipeline": "flux", "StableDiffusion3Pipeline": "sd3",
              "StableDiffusionPipeline": "sd15"}


@dataclass(frozen=True)
class ModelEntry:
    path: Path
    kind: str         # checkpoint | diffusers | vae | text_encoder | unet | lora | unknown
    family: str       # sd15 | sd2 | sdxl | flux | sd3 | unknown
    size: int

    @property
    def name(self) -> str:
        return self.path.name


def classify(path: Path) -> tuple[str, str]:
    """(kind, family) of a .safetensors file from its header keys."""
    from ..lora.header import read_header
    from ..lora.info import module_pairs

    h = read_header(path)
    keys = list(h.tensors)
    shapes = {k: t.shape for k, t in h.tensors.items()}
    if module_pairs(keys):
        from ..families import detect_lora_family

        return "lora", detect_lora_family(keys, shapes)
    joined = "\n".join(keys[:5000])
    has_unet = "model.diffusion_model." in joined or "down_blocks." in joined or "double_blocks." in joined or "joint_blocks." in joined
    if not has_unet and ("encoder.down" in joined or "decoder.up" in joined) and "first_stage_model" not in joined:
        return "vae", "unknown"
    if not has_unet and ("text_model.encoder" in joined or "encoder.block." in joined or "text_projection" in joined):
        return "text_encoder", "unknown"
    family = detect_model_family(keys, shapes)
    if has_unet and "first_stage_model" not in joined and "cond_stage_model" not in joined and "conditioner" not in joined:
        return ("unet" if family != "flux" else "checkpoint"), family
    return "checkpoint", family


class ModelLibrary:
    """Local models and downloads. ``ws.models`` is one."""

    def __init__(self, folder: Path, jobs: "JobSubmitter") -> None:
        self._folder = Path(folder)
        self._jobs = jobs

    @property
    def folder(self) -> Path:
        self._folder.mkdir(exist_ok=True)
        return self._folder

    def list(self) -> list[ModelEntry]:
        """Every model file and diffusers folder under ``models/`` with its kind and family (headers only)."""
        out: list[ModelEntry] = []
        diffusers_roots: list[Path] = []
        for index in sorted(self.folder.rglob("model_index.json")):
            root = index.parent
            diffusers_roots.append(root)
            try:
                cls = json.loads(index.read_text()).get("_class_name", "")
            except (OSError, ValueError):
                cls = ""
            family = _PIPELINES.get(cls, "unknown")
            if family == "sd15":
                try:
                    unet = json.loads((root / "unet" / "config.json").read_text())
                    family = "sd2" if unet.get("cross_attention_dim") == 1024 else "sd15"
                except (OSError, ValueError):
                    pass
            size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
            out.append(ModelEntry(root, "diffusers", family, size))
        for p in sorted(self.folder.rglob("*")):
            if not p.is_file() or p.name.startswith(".") or p.suffix not in (".safetensors", ".ckpt", ".pt", ".bin", ".sft", ".gguf"):
                continue
            if any(root in p.parents for root in diffusers_roots):
                continue
            if p.suffix in (".safetensors", ".sft"):
                try:
                    kind, family = classify(p)
                except LoraFileError:
                    continue
                if kind == "lora":
                    continue
            else:
                kind, family = "checkpoint", "unknown"
            out.append(ModelEntry(p, kind, family, p.stat().st_size))
        return out

    def starters(self, family: str | None = None) -> dict[str, Any]:
        from .starters import STARTERS

        return {family: STARTERS[family]} if family else dict(STARTERS)

    def download(self, source: str, filename: str | None = None, subfolder: str | None = None, sha256: str | None = None) -> "JobHandle":
        """Download a model as a job into ``models/`` (or ``models/<subfolder>``).

        ``source``: ``hf:owner/repo/file.safetensors`` (huggingface_hub and its cache, HF_TOKEN for gated
        repos), ``civitai:<model id>``, ``civitai:v<version id>``, a civitai.com page/download link
        (CIVITAI_TOKEN optional; resumable; the published SHA256 is checked), or any https link.
        """
        from ..paths import safe_join

        src = parse_source(source, filename)
        dest_dir = safe_join(self.folder, subfolder) if subfolder else self.folder
        env = {k: os.environ[k] for k in ("HF_TOKEN", "CIVITAI_TOKEN", "HF_HOME", "HF_ENDPOINT", "HF_HUB_OFFLINE", "LORA_NB_CIVITAI_API")
               if k in os.environ}
        params = {"kind": src.kind, "repo_id": src.repo_id, "filename": src.filename, "version_id": src.version_id,
                  "model_id": src.model_id, "url": src.url, "dest_dir": str(dest_dir), "sha256": sha256}
        label = src.filename or (f"civitai {src.version_id or src.model_id}" if src.kind == "civitai" else (src.url or "")[-40:])
        return self._jobs.submit_task("download_model", params, name=f"download {label}", env=env)
