"""Presets: named TrainingConfig settings saved as TOML under ``<workspace>/presets/``, plus built-ins.

A preset holds settings, not a dataset or model paths unless you saved them; loading one
gives a TrainingConfig you then point at your data.

>>> import lora_nb, tempfile
>>> ws = lora_nb.Workspace(tempfile.mkdtemp())
>>> "sdxl-24gb" in ws.presets.list()
True
>>> ws.presets.load("sdxl-24gb", dataset="alice", pretrained_model_name_or_path="/m/sdxl.safetensors").network_dim
32
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, InvalidName, NotFound
from ..paths import safe_name

if TYPE_CHECKING:  # pragma: no cover
    from .model import TrainingConfig

__all__ = ["Presets", "BUILTIN"]

_SD15 = dict(model_family="sd15", resolution="512", min_bucket_reso=256, max_bucket_reso=1024, bucket_reso_steps=64,
             network_dim=16, network_alpha=8.0, learning_rate=1e-4, optimizer_type="AdamW8bit", train_batch_size=2,
             max_train_epochs=10, mixed_precision="fp16", save_precision="fp16")
_SDXL = dict(model_family="sdxl", resolution="1024", min_bucket_reso=512, max_bucket_reso=2048, bucket_reso_steps=64,
             network_dim=32, network_alpha=16.0, learning_rate=1e-4, optimizer_type="AdamW8bit", train_batch_size=1,
             max_train_epochs=10, mixed_precision="bf16", save_precision="bf16", network_train_unet_only=True,
             cache_text_encoder_outputs=True)
_FLUX = dict(model_family="flux", resolution="1024", min_bucket_reso=256, max_bucket_reso=2048, bucket_reso_steps=64,
             network_dim=16, network_alpha=16.0, learning_rate=1e-4, optimizer_type="AdamW8bit", train_batch_size=1,
             max_train_epochs=16, mixed_precision="bf16", save_precision="bf16", network_train_unet_only=True,
             cache_text_encoder_outputs=True, fp8_base=True, timestep_sampling="flux_shift", model_prediction_type="raw",
             guidance_scale=1.0)
_SD3 = dict(model_family="sd3", resolution="1024", min_bucket_reso=256, max_bucket_reso=2048, bucket_reso_steps=64,
            network_dim=16, network_alpha=16.0, learning_rate=1e-4, optimizer_type="AdamW8bit", train_batch_size=1,
            max_train_epochs=10, mixed_precision="bf16", save_precision="bf16", network_train_unet_only=True,
            cache_text_encoder_outputs=True)

# per family and GPU memory: what fits, from the sd-scripts and ai-toolkit docs' advice
BUILTIN: dict[str, dict[str, Any]] = {
    "sd15-8gb": {**_SD15, "train_batch_size": 1, "gradient_checkpointing": True},
    "sd15-12gb": {**_SD15, "train_batch_size": 2},
    "sd15-16gb": {**_SD15, "train_batch_size": 4},
    "sd15-24gb": {**_SD15, "train_batch_size": 6, "network_dim": 32, "network_alpha": 16.0},
    "sdxl-8gb": {**_SDXL, "network_dim": 8, "network_alpha": 4.0, "optimizer_type": "Adafactor",
                 "optimizer_args": ["scale_parameter=False", "relative_step=False", "warmup_init=False"],
                 "fp8_base": True, "resolution": "768", "max_bucket_reso": 1536},
    "sdxl-12gb": {**_SDXL, "network_dim": 16, "network_alpha": 8.0, "fp8_base": True},
    "sdxl-16gb": {**_SDXL, "network_dim": 32, "network_alpha": 16.0},
    "sdxl-24gb": {**_SDXL, "network_dim": 32, "network_alpha": 16.0, "train_batch_size": 2},
    "flux-8gb": {**_FLUX, "blocks_to_swap": 28, "network_dim": 4, "network_alpha": 4.0, "resolution": "512", "optimizer_type": "Adafactor",
                 "optimizer_args": ["relative_step=False", "scale_parameter=False", "warmup_init=False"]},
    "flux-12gb": {**_FLUX, "blocks_to_swap": 16, "network_dim": 8, "network_alpha": 8.0, "resolution": "768"},
    "flux-16gb": {**_FLUX, "blocks_to_swap": 8},
    "flux-24gb": {**_FLUX},
    "sd3-12gb": {**_SD3, "blocks_to_swap": 12, "fp8_base": True},
    "sd3-16gb": {**_SD3, "fp8_base": True},
    "sd3-24gb": {**_SD3},
}
_SAVED_FIELDS_EXCLUDED = {"resume"}


class Presets:
    """``ws.presets``: built-in presets plus the user's own, saved as TOML."""

    def __init__(self, folder: Path) -> None:
        self.dir = Path(folder)

    def _path(self, name: str) -> Path:
        return self.dir / (safe_name(name, "preset name") + ".toml")

    def list(self) -> list[str]:
        """Built-in names first, then the user's, sorted."""
        own = sorted(p.stem for p in self.dir.glob("*.toml"))
        return [*BUILTIN, *[n for n in own if n not in BUILTIN]]

    def save(self, name: str, cfg: "TrainingConfig", overwrite: bool = True) -> Path:
        """Save every setting of ``cfg`` (atomically). Built-in names cannot be overwritten."""
        import tomli_w

        if name in BUILTIN:
            raise InvalidName(f"'{name}' is a built-in preset.", fix="Save under another name.")
        path = self._path(name)
        if path.exists() and not overwrite:
            from ..errors import AlreadyExists

            raise AlreadyExists(f"A preset called '{name}' exists.", fix="Pick another name or pass overwrite=True.")
        data = {k: v for k, v in cfg.model_dump(mode="json", exclude_none=True).items() if k not in _SAVED_FIELDS_EXCLUDED}
        # TOML has no null: fields set to None whose default is not None are listed, so loading keeps them unset
        fields = type(cfg).model_fields
        unset = sorted(k for k, f in fields.items() if getattr(cfg, k) is None and f.default is not None and k not in _SAVED_FIELDS_EXCLUDED)
        if unset:
            data["unset"] = unset
        tmp = path.with_suffix(".toml.tmp")
        tmp.write_text("# lora-nb training preset\n" + tomli_w.dumps(data), encoding="utf-8")
        os.replace(tmp, path)
        return path

    def raw(self, name: str) -> dict[str, Any]:
        """The preset's settings as a dict."""
        if name in BUILTIN:
            return dict(BUILTIN[name])
        path = self._path(name)
        if not path.is_file():
            raise NotFound(f"There is no preset called '{name}'.", fix=f"Use one of: {', '.join(self.list())}.")
        from .._compat import tomllib

        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"The preset file {path.name} is not valid TOML ({e}).", fix="Fix or delete the file.") from e
        for key in data.pop("unset", []) or []:
            data[key] = None
        return data

    def load(self, name: str, **overrides: Any) -> "TrainingConfig":
        """A TrainingConfig from the preset, with ``overrides`` laid over it."""
        from .model import TrainingConfig

        data = self.raw(name)
        data.update(overrides)
        data.setdefault("dataset", "")
        return TrainingConfig(**data)

    def delete(self, name: str) -> None:
        if name in BUILTIN:
            raise InvalidName(f"'{name}' is a built-in preset and cannot be deleted.", fix="Delete one of your own presets.")
        path = self._path(name)
        if not path.is_file():
            raise NotFound(f"There is no preset called '{name}'.", fix="List presets with ws.presets.list().")
        path.unlink()
