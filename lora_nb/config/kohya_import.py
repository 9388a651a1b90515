"""Read a user's existing sd-scripts training TOML into a TrainingConfig.

Sections are flattened like sd-scripts does; keys that are TrainingConfig fields carry over;
``network_module`` picks the family hint; keys lora-nb does not model are reported, not
silently dropped.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ConfigError, NotFound

__all__ = ["from_kohya_toml", "read_kohya_toml", "flatten"]

_MODULE_FAMILY = {"networks.lora_flux": "flux", "networks.lora_sd3": "sd3"}
_IGNORED = {"network_module", "dataset_config", "output_dir", "logging_dir", "train_data_dir", "reg_data_dir",
            "config_file", "console_log_simple", "sample_prompts", "log_prefix", "tokenizer_cache_dir"}


def flatten(data: dict[str, Any]) -> dict[str, Any]:
    """sd-scripts' rule: tables one level deep are lifted to the top; later keys win."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(value)
        else:
            out[key] = value
    return out


def from_kohya_toml(cls: Any, path: str | Path, **overrides: Any) -> Any:
    """The TrainingConfig of an sd-scripts TOML (``read_kohya_toml`` also lists keys it left out)."""
    return read_kohya_toml(cls, path, **overrides)[0]


def read_kohya_toml(cls: Any, path: str | Path, **overrides: Any) -> tuple[Any, list[str]]:
    import toml

    p = Path(path)
    if not p.is_file():
        raise NotFound(f"The TOML file {p} does not exist.", fix="Check the path.")
    try:
        raw = toml.loads(p.read_text(encoding="utf-8"))
    except toml.TomlDecodeError as e:
        raise ConfigError(f"{p.name} is not valid TOML ({e}).", fix="Fix the line named, e.g. unbalanced quotes or brackets.") from e
    flat = flatten(raw)
    fields = cls.model_fields
    data: dict[str, Any] = {}
    unknown = []
    for key, value in flat.items():
        if key in fields:
            data[key] = value
        elif key not in _IGNORED:
            unknown.append(key)
    module = flat.get("network_module", "networks.lora")
    if module in _MODULE_FAMILY:
        data.setdefault("model_family", _MODULE_FAMILY[module])
    elif module.startswith("lycoris"):
        algo = next((a.split("=", 1)[1] for a in flat.get("network_args", []) if a.startswith("algo=")), "locon")
        data.setdefault("network_type", algo if algo in ("locon", "loha", "lokr", "ia3", "dylora", "full") else "locon")
    if flat.get("v2"):
        data.setdefault("model_family", "sd2")
    if "resolution" in data and isinstance(data["resolution"], int):
        data["resolution"] = str(data["resolution"])
    data.update(overrides)
    data.setdefault("dataset", "imported")
    return cls(**data), sorted(unknown)
