"""Check a config's extra engine options (``TrainingConfig.engine_options``) against the engine's own option list,
one sentence per problem, fast enough to run on every key press.

- kohya: the argparse options of the family's script (``kohya_options.json``, checked against the real scripts by
  tests/engines/real): unknown names get the closest one, values the type and choices the script declares (the
  same check ``render_training`` makes before launch), names lora-nb has a field for or sets itself are named;
- ai-toolkit: ``section.key`` paths of the job YAML, the keys of its config classes (``aitoolkit_options.json``,
  made by scripts/gen_aitoolkit_options.py from toolkit/config_modules.py), typed by their defaults.

``parse_option_lines`` reads the editor's ``KEY = VALUE`` lines (TOML values; bare text is a string).

>>> check_engine_options("kohya", "sd15", {"noise_offset_random_strenght": True})
{'noise_offset_random_strenght': "train_network.py has no option 'noise_offset_random_strenght'; did you mean 'noise_offset_random_strength'?"}
>>> check_engine_options("kohya", "sd15", {"network_dim": 8})
{'network_dim': "lora-nb has a field for 'network_dim': set 'Rank (dim)' (network_dim) in the form instead."}
>>> parse_option_lines("debiased_estimation_loss = true\\nlr_scheduler_args = ['lr_end=1e-9']")
({'debiased_estimation_loss': True, 'lr_scheduler_args': ['lr_end=1e-9']}, {})
"""
from __future__ import annotations

import difflib
import functools
import json
import tomllib
from pathlib import Path
from typing import Any

from ..errors import ConfigError

__all__ = ["check_engine_options", "parse_option_lines", "format_option_lines", "AITK_FIELDS"]

# ai-toolkit job paths that render_job writes from a lora-nb field
AITK_FIELDS = {
    "network.type": "network_type", "network.linear": "network_dim", "network.linear_alpha": "network_alpha",
    "network.conv": "conv_dim", "network.conv_alpha": "conv_alpha", "network.dropout": "network_dropout",
    "save.dtype": "save_precision", "save.save_every": "save_every_n_steps", "save.max_step_saves_to_keep": "save_last_n_epochs",
    "train.batch_size": "train_batch_size", "train.steps": "max_train_steps", "train.gradient_accumulation": "gradient_accumulation_steps",
    "train.gradient_checkpointing": "gradient_checkpointing", "train.optimizer": "optimizer_type",
    "train.optimizer_params": "optimizer_args", "train.lr": "learning_rate", "train.lr_scheduler": "lr_scheduler",
    "train.dtype": "mixed_precision", "train.max_grad_norm": "max_grad_norm", "train.noise_offset": "noise_offset",
    "train.min_snr_gamma": "min_snr_gamma", "train.disable_sampling": "sample_prompts", "model.name_or_path": "pretrained_model_name_or_path",
    "model.arch": "model_family", "model.quantize": "fp8_base", "sample.prompts": "sample_prompts",
    "sample.sample_every": "sample_every_n_steps", "sample.seed": "seed",
}
# kohya options lora-nb writes itself for every run (render_training's 'managed'), and what stands for them
KOHYA_MANAGED = {"dataset_config": "the Dataset field", "output_dir": "the run folder", "logging_dir": "the run folder",
                 "sample_prompts": "the Sample prompts field", "network_module": "the Network type field",
                 "config_file": "the rendered training file", "train_data_dir": "the Dataset field",
                 "reg_data_dir": "a subset marked as regularisation", "in_json": "the Dataset field"}
AITK_SECTIONS = ("network", "save", "train", "model", "sample", "logging")
_KINDS = {"flag": "true or false", "bool": "true or false", "int": "a whole number", "float": "a number",
          "int_or_float": "a number", "str": "a text", "Path": "a path (text)", "list": "a list", "dict": "a table"}


@functools.lru_cache(maxsize=1)
def _aitk_options() -> dict[str, dict[str, str]]:
    data = json.loads(Path(__file__).with_name("aitoolkit_options.json").read_text())
    return {k: v for k, v in data.items() if not k.startswith("_")}


def _field_label(name: str) -> str:
    from ..config.model import TrainingConfig

    extra = TrainingConfig.model_fields[name].json_schema_extra
    label = extra.get("label", name) if isinstance(extra, dict) else name
    return f"'{label}' ({name})"


def _closest(key: str, names: list[str], prefix: str = "") -> str:
    found = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
    return f"; did you mean '{prefix}{found[0]}'?" if found else "."


def _kohya(family: str, key: str, value: Any) -> str | None:
    from ..config.model import TrainingConfig
    from .kohya import SCRIPTS, _option_spec, _typed_option, accepted_keys

    script = SCRIPTS[family][0]
    if key in KOHYA_MANAGED:
        return f"lora-nb sets '{key}' itself from {KOHYA_MANAGED[key]}; remove it here."
    if key in TrainingConfig.model_fields and key != "engine_options":
        return f"lora-nb has a field for '{key}': set {_field_label(key)} in the form instead."
    accepted = accepted_keys(family)
    if key not in accepted:
        return f"{script} has no option '{key}'" + _closest(key, sorted(accepted))
    try:
        _typed_option(script, key, value, _option_spec(family, key))
    except ConfigError as e:
        msg = e.message.removeprefix("engine_options: ")
        if "must be" in msg or not e.fix:
            return msg
        return f"{msg.rstrip('.')}; {e.fix[:1].lower()}{e.fix[1:]}"
    return None


def _aitk(path: str, value: Any) -> str | None:
    head, _, rest = path.partition(".")
    if head not in AITK_SECTIONS or not rest:
        return (f"'{path}' is not a section.key path of ai-toolkit's job; start it with one of "
                + ", ".join(AITK_SECTIONS) + " (e.g. model.low_vram).")
    if path in AITK_FIELDS:
        return f"lora-nb writes '{path}' from {_field_label(AITK_FIELDS[path])}; set that in the form instead."
    keys = _aitk_options()[head]
    key, _, deeper = rest.partition(".")
    if key not in keys:
        return f"ai-toolkit's {head} section has no key '{key}'" + _closest(key, sorted(keys), f"{head}.")
    kind = keys[key]
    if deeper:
        return None if kind in ("dict", "any") else f"{head}.{key} is {_KINDS.get(kind, kind)}, not a table; write '{head}.{key} = value'."
    ok = {"bool": lambda v: isinstance(v, bool), "int": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
          "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool), "str": lambda v: isinstance(v, str),
          "list": lambda v: isinstance(v, list), "dict": lambda v: isinstance(v, dict)}.get(kind)
    if ok is not None and not ok(value):
        want = "a number" if kind in ("int", "float") else _KINDS.get(kind, kind)
        return f"{path} must be {want}, not {value!r}."
    return None


def check_engine_options(engine: str, family: str, options: dict[str, Any]) -> dict[str, str]:
    """``{key: one sentence}`` for every extra option the engine would reject or lora-nb sets from a field; {} if all fit."""
    out: dict[str, str] = {}
    for key, value in options.items():
        if engine == "kohya":
            problem = _kohya(family, key, value)
        elif engine == "ai-toolkit":
            problem = _aitk(key, value)
        else:
            problem = f"There is no engine '{engine}' to check '{key}' against."
        if problem:
            out[key] = problem
    return out


def _value(raw: str) -> Any:
    raw = raw.strip()
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw              # bare text, e.g. a path or a scheduler name


def parse_option_lines(text: str) -> tuple[dict[str, Any], dict[str, str]]:
    """``KEY = VALUE`` lines -> (options, {line key or 'line N': one sentence}). Blank lines and ``#`` comments are skipped;
    values are TOML (true, 0.1, "text", [1, 2]), anything else is taken as text."""
    options: dict[str, Any] = {}
    problems: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, eq, raw = line.partition("=")
        key = key.strip()
        if not eq or not key:
            problems[f"line {n}"] = f"Line {n} is not KEY = VALUE."
            continue
        if not raw.strip():
            problems[key] = f"{key} has no value; write {key} = VALUE."
            continue
        if key in options:
            problems[key] = f"{key} is given twice; keep one line."
        options[key] = _value(raw)
    return options, problems


def format_option_lines(options: dict[str, Any]) -> str:
    """The editor's text for ``options`` (the inverse of :func:`parse_option_lines`).

    >>> format_option_lines({"model.low_vram": True, "lr_scheduler_args": ["lr_end=1e-9"]})
    'model.low_vram = true\\nlr_scheduler_args = ["lr_end=1e-9"]'
    """
    return "\n".join(f"{key} = {_toml(value)}" for key, value in options.items())


def _toml(value: Any) -> str:
    """One TOML value on one line (inline arrays and tables)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {_toml(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(value)
