"""kohya sd-scripts adapter: renders the training and dataset TOMLs, builds the launch command.

Follows ENGINES.md Part C: two files (a flat training TOML for ``--config_file`` and a strictly
typed dataset TOML), ``resolution`` only in the dataset TOML (integers there), ``.txt``
captions set explicitly, the script and network module chosen together per family,
``accelerate launch --num_cpu_threads_per_process 1`` with PYTHONUNBUFFERED=1, COLUMNS=250 and
PYTHONIOENCODING=utf-8.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, EngineError
from .base import Artifact, LaunchPlan
from .checkout import CONSOLE_ENV, CheckoutEngine

if TYPE_CHECKING:  # pragma: no cover
    from ..ports import EngineHome
    from ..config.model import TrainingConfig

__all__ = ["KohyaEngine", "SCRIPTS", "accepted_keys", "render_training", "render_dataset"]

SCRIPTS = {  # family -> (script, network module, option groups)
    "sd15": ("train_network.py", "networks.lora", ()),
    "sd2": ("train_network.py", "networks.lora", ()),
    "sdxl": ("sdxl_train_network.py", "networks.lora", ("sdxl",)),
    "flux": ("flux_train_network.py", "networks.lora_flux", ("dit", "flux")),
    "sd3": ("sd3_train_network.py", "networks.lora_sd3", ("dit", "sd3")),
}
DATASET_GENERAL = {"caption_extension": str, "shuffle_caption": bool, "keep_tokens": int, "caption_dropout_rate": float,
                   "caption_tag_dropout_rate": float, "flip_aug": bool}
DATASET_LEVEL = {"resolution": list, "batch_size": int, "enable_bucket": bool, "min_bucket_reso": int, "max_bucket_reso": int,
                 "bucket_reso_steps": int, "bucket_no_upscale": bool}
# sd-scripts (48d368f) has no request channel: no signal handler, no flag file or database it polls (docs/engines.md)
NO_MIDRUN_CONTROL = ("sd-scripts cannot save or sample on request while it trains (it reads no flag and handles no signal "
                     "for it); it saves and samples on the schedule set before the start.")
SUBSET_KEYS = {"image_dir": str, "num_repeats": int, "is_reg": bool, "class_tokens": str, "caption_extension": str,
               "keep_tokens": int, "flip_aug": bool, "random_crop": bool}

# TrainingConfig fields rendered under the same name (when set and valid for the family)
_DIRECT = [
    "pretrained_model_name_or_path", "v2", "v_parameterization", "vae", "clip_l", "clip_g", "t5xxl", "ae",
    "network_dim", "network_alpha", "network_dropout", "network_train_unet_only", "network_weights",
    "optimizer_type", "learning_rate", "unet_lr", "text_encoder_lr", "lr_scheduler", "lr_warmup_steps",
    "lr_scheduler_num_cycles", "lr_scheduler_power", "max_grad_norm", "max_train_epochs", "max_train_steps",
    "train_batch_size", "gradient_accumulation_steps", "mixed_precision", "save_precision", "full_bf16", "full_fp16",
    "gradient_checkpointing", "cache_latents", "cache_latents_to_disk", "cache_text_encoder_outputs", "sdpa",
    "xformers", "fp8_base", "blocks_to_swap", "max_data_loader_n_workers", "persistent_data_loader_workers",
    "noise_offset", "min_snr_gamma", "clip_skip", "seed", "prior_loss_weight", "timestep_sampling", "guidance_scale",
    "discrete_flow_shift", "model_prediction_type", "output_name", "save_every_n_epochs", "save_every_n_steps",
    "save_last_n_epochs", "save_state", "save_model_as", "resume", "training_comment", "sample_every_n_epochs",
    "sample_every_n_steps", "sample_sampler", "log_with",
]
_FLOATS = {"network_alpha", "network_dropout", "learning_rate", "unet_lr", "text_encoder_lr", "lr_scheduler_power", "max_grad_norm",
           "noise_offset", "min_snr_gamma", "prior_loss_weight", "guidance_scale", "discrete_flow_shift", "training_shift"}
_SECTIONS = {
    "model": {"pretrained_model_name_or_path", "v2", "v_parameterization", "vae", "clip_l", "clip_g", "t5xxl", "ae", "fp8_base", "blocks_to_swap"},
    "network": {"network_module", "network_dim", "network_alpha", "network_dropout", "network_args", "network_train_unet_only", "network_weights"},
    "optimizer": {"optimizer_type", "optimizer_args", "learning_rate", "unet_lr", "text_encoder_lr", "lr_scheduler", "lr_warmup_steps",
                  "lr_scheduler_num_cycles", "lr_scheduler_power", "max_grad_norm"},
    "saving": {"output_dir", "output_name", "save_every_n_epochs", "save_every_n_steps", "save_last_n_epochs", "save_state",
               "save_model_as", "save_precision", "resume", "training_comment"},
    "sample": {"sample_prompts", "sample_every_n_epochs", "sample_every_n_steps", "sample_sampler"},
    "logging": {"logging_dir", "log_with"},
}


@functools.lru_cache(maxsize=1)
def _options() -> dict[str, Any]:
    return json.loads((Path(__file__).with_name("kohya_options.json")).read_text())


def accepted_keys(family: str) -> set[str]:
    """Every option the family's training script accepts (ENGINES.md Appendix A)."""
    opts = _options()
    keys = set(opts["common"])
    for group in SCRIPTS[family][2]:
        keys |= set(opts[group])
    return keys


def render_training(cfg: "TrainingConfig", dataset_toml: Path, output_dir: Path, logging_dir: Path,
                    prompts_file: Path | None) -> dict[str, dict[str, Any]]:
    """The training TOML as {section: {key: value}} (sd-scripts flattens sections)."""
    family = cfg.model_family
    script, module, _ = SCRIPTS[family]
    accepted = accepted_keys(family)
    flat: dict[str, Any] = {}
    for key in _DIRECT:
        value = getattr(cfg, key)
        if value is None or value is False or value == []:
            continue
        target = "training_shift" if key == "discrete_flow_shift" and family == "sd3" else key
        if target not in accepted:
            continue
        if target in _FLOATS:
            value = float(value)
        flat[target] = value
    if family == "sd2":
        flat["v2"] = True
    if cfg.max_train_epochs is not None:
        flat.pop("max_train_steps", None)
    if not cfg.max_data_loader_n_workers:   # torch: "persistent_workers option needs num_workers > 0"
        flat.pop("persistent_data_loader_workers", None)
    if not cfg.cache_latents:   # the engine would switch latent caching on again (and warn)
        flat.pop("cache_latents_to_disk", None)
    if cfg.lr_scheduler == "constant":
        flat.pop("lr_warmup_steps", None)
    network_args = list(cfg.network_args)
    if cfg.network_type != "lora":
        module = "lycoris.kohya"
        network_args = [f"algo={cfg.network_type}", *[a for a in network_args if not a.startswith("algo=")]]
    if cfg.conv_dim:
        network_args += [f"conv_dim={cfg.conv_dim}", f"conv_alpha={cfg.conv_alpha or cfg.conv_dim}"]
    flat["network_module"] = module
    if network_args:
        flat["network_args"] = network_args
    if cfg.optimizer_args:
        flat["optimizer_args"] = list(cfg.optimizer_args)
    if cfg.cache_text_encoder_outputs and family != "sd15":
        flat["cache_text_encoder_outputs_to_disk"] = True
    flat["dataset_config"] = str(dataset_toml)
    flat["output_dir"] = str(output_dir)
    flat["logging_dir"] = str(logging_dir)
    if prompts_file is not None:
        flat["sample_prompts"] = str(prompts_file)
    else:
        flat.pop("sample_every_n_epochs", None)
        flat.pop("sample_every_n_steps", None)
        flat.pop("sample_sampler", None)
    managed = {"dataset_config", "output_dir", "logging_dir", "sample_prompts", "network_module", "config_file"}
    for key, value in cfg.engine_options.items():
        if key not in accepted:
            raise ConfigError(f"engine_options: '{key}' is not an option of {script}.",
                              fix="Use sd-scripts' own option names (ENGINES.md Appendix A, or `python {script} --help`).")
        if key in managed:
            raise ConfigError(f"engine_options: lora-nb sets '{key}' itself for every run.", fix="Remove it from engine_options.")
        flat[key] = _typed_option(script, key, value, _option_spec(family, key))
    unknown = set(flat) - accepted
    if unknown:  # a lora-nb bug, never the user's: fail before the engine does
        raise ConfigError(f"Internal error: {sorted(unknown)} are not options of {script}.", fix="Please report this.")
    sections: dict[str, dict[str, Any]] = {name: {} for name in ("model", "network", "optimizer", "training", "dataset", "saving", "sample", "logging")}
    for key, value in flat.items():
        section = next((s for s, keys in _SECTIONS.items() if key in keys), "dataset" if key == "dataset_config" else "training")
        sections[section][key] = value
    return {k: v for k, v in sections.items() if v}


def _option_spec(family: str, key: str) -> dict[str, Any]:
    opts = _options()
    for group in ("common", *SCRIPTS[family][2]):
        if key in opts.get(group, {}):
            return opts[group][key]
    return {}


_KIND_NAMES = {"flag": "true or false", "int": "a whole number", "float": "a number", "int_or_float": "a number",
               "str": "a text", "Path": "a path (text)"}


def _typed_option(script: str, key: str, value: Any, spec: dict[str, Any]) -> Any:
    """An engine_options value with the Python type the script's argparse declares (sd-scripts checks no TOML type)."""
    kind = spec.get("kind", "str")

    def ok(v: Any) -> bool:
        if kind == "flag":
            return isinstance(v, bool)
        if kind == "int":
            return isinstance(v, int) and not isinstance(v, bool)
        if kind in ("float", "int_or_float"):
            return isinstance(v, (int, float)) and not isinstance(v, bool)
        return isinstance(v, str)

    values = value if isinstance(value, list) else [value]
    want = _KIND_NAMES.get(kind, kind)
    if spec.get("nargs"):
        if not isinstance(value, list) and key != "text_encoder_lr":
            raise ConfigError(f"engine_options: {key} of {script} takes a list.", fix=f"Write it as a list, e.g. [{value!r}].")
    elif isinstance(value, list):
        raise ConfigError(f"engine_options: {key} of {script} takes one value, not a list.", fix=f"Give {want}.")
    for v in values:
        if not ok(v):
            raise ConfigError(f"engine_options: {key} of {script} must be {want}, not {v!r}.",
                              fix=f"Give {want} (without quotes for numbers and true/false).")
        if spec.get("choices") and str(v) not in [str(c) for c in spec["choices"]]:   # kohya_options.json: int choices as text
            raise ConfigError(f"engine_options: {v!r} is not a value {key} of {script} accepts.",
                              fix="Use one of " + ", ".join(str(c) for c in spec["choices"] if c is not None) + ".")
    if kind == "float" and not isinstance(value, list):
        return float(value)
    return value


def render_dataset(cfg: "TrainingConfig", subsets: list[dict[str, Any]]) -> dict[str, Any]:
    """The dataset TOML with sd-scripts' exact types (voluptuous is strict: 0.0 not 0, ints for sizes)."""
    general = {"caption_extension": cfg.caption_extension, "shuffle_caption": bool(cfg.shuffle_caption),
               "keep_tokens": int(cfg.keep_tokens), "caption_dropout_rate": float(cfg.caption_dropout_rate),
               "caption_tag_dropout_rate": float(cfg.caption_tag_dropout_rate), "flip_aug": bool(cfg.flip_aug)}
    w, h = cfg.resolution_wh
    dataset = {"resolution": [int(w), int(h)], "batch_size": int(cfg.train_batch_size), "enable_bucket": bool(cfg.enable_bucket),
               "min_bucket_reso": int(cfg.min_bucket_reso), "max_bucket_reso": int(cfg.max_bucket_reso),
               "bucket_reso_steps": int(cfg.bucket_reso_steps), "bucket_no_upscale": bool(cfg.bucket_no_upscale),
               "subsets": subsets}
    return {"general": general, "datasets": [dataset]}


def dataset_subsets(cfg: "TrainingConfig", ws: "EngineHome") -> list[dict[str, Any]]:
    """The subsets of the config's dataset(s), as dataset-TOML tables with absolute image folders."""
    import re

    from ..config.model import Subset

    out = []
    if isinstance(cfg.dataset, str):
        ds = ws.datasets.get(cfg.dataset)
        wanted = []
        for s in ds.subsets():
            named = bool(s.name) and bool(re.match(r"^\d+_", s.name.split("/")[-1]))
            wanted.append(Subset(dataset=cfg.dataset, folder=s.name, num_repeats=s.repeats if named else cfg.num_repeats,
                                 is_reg=s.is_reg, class_tokens=s.class_tokens))
    else:
        wanted = list(cfg.dataset)
    for sub in wanted:
        folder = ws.datasets.get(sub.dataset).path / sub.folder if sub.folder else ws.datasets.get(sub.dataset).path
        table: dict[str, Any] = {"image_dir": str(folder), "num_repeats": int(sub.num_repeats)}
        if sub.is_reg:
            table["is_reg"] = True
        if sub.class_tokens:
            table["class_tokens"] = str(sub.class_tokens)
        # per-subset overrides of [general] (sd-scripts' subset options; None: the general value applies)
        if sub.caption_extension is not None:
            table["caption_extension"] = str(sub.caption_extension)
        if sub.keep_tokens is not None:
            table["keep_tokens"] = int(sub.keep_tokens)
        if sub.flip_aug is not None:
            table["flip_aug"] = bool(sub.flip_aug)
        if sub.random_crop:
            table["random_crop"] = True
        out.append(table)
    return out


class KohyaEngine(CheckoutEngine):
    """``get_engine("kohya", ws)``."""

    name = "kohya"
    what = "sd-scripts"
    dir_setting, dir_env, default_folder, python_setting = "kohya_dir", "LORA_NB_KOHYA_DIR", "sd-scripts", "kohya_python"
    markers = ("train_network.py",)
    parser_name = "kohya"

    @property
    def launcher(self) -> str:
        """'accelerate' (default) or 'python' (single GPU, no accelerate; ENGINES.md A2)."""
        return str(self.ws.settings.get("kohya_launcher") or "accelerate")

    def modules(self) -> tuple[str, ...]:
        return ("torch", "safetensors", "toml", "voluptuous") + (("accelerate",) if self.launcher == "accelerate" else ())

    def prepare(self, cfg: "TrainingConfig", run_dir: Path) -> LaunchPlan:
        import tomli_w

        self.require_own(cfg)
        script = SCRIPTS[cfg.model_family][0]
        if self.launcher == "python" and cfg.num_processes > 1:
            raise EngineError(f"{cfg.num_processes} GPUs need the accelerate launcher; the kohya_launcher setting is 'python' (one GPU).",
                              fix="Set num_processes to 1, or ws.settings.set('kohya_launcher', 'accelerate').")
        output_dir = run_dir / "output"
        logging_dir = run_dir / "logs"
        output_dir.mkdir(parents=True, exist_ok=True)
        logging_dir.mkdir(exist_ok=True)
        prompts = None
        if cfg.sample_prompts and (cfg.sample_every_n_epochs or cfg.sample_every_n_steps):
            prompts = run_dir / "sample_prompts.txt"
            prompts.write_text("\n".join(p.replace("\n", " ") for p in cfg.sample_prompts) + "\n", encoding="utf-8")
        dataset_toml = run_dir / "dataset.toml"
        train_toml = run_dir / "train.toml"
        dataset_toml.write_text(tomli_w.dumps(render_dataset(cfg, dataset_subsets(cfg, self.ws))), encoding="utf-8")
        train_toml.write_text("# rendered by lora-nb; sd-scripts flattens the sections\n"
                              + tomli_w.dumps(render_training(cfg, dataset_toml, output_dir, logging_dir, prompts)), encoding="utf-8")
        python = str(self.python)
        if self.launcher == "python":
            argv = [python, str(self.folder / script), "--config_file", str(train_toml)]
        else:
            argv = [python, "-m", "accelerate.commands.launch", "--num_cpu_threads_per_process", "1",
                    "--mixed_precision", cfg.mixed_precision, "--num_processes", str(cfg.num_processes)]
            if cfg.num_processes > 1:
                argv.append("--multi_gpu")
            argv += [str(self.folder / script), "--config_file", str(train_toml)]
        env = dict(CONSOLE_ENV)
        options: dict[str, Any] = {"final_path": str(output_dir / f"{cfg.output_name}.safetensors"),
                                   "sample_dir": str(output_dir / "sample")}
        if cfg.resume:
            options["step_offset"] = resume_offset(Path(cfg.resume))
        return LaunchPlan(argv=argv, cwd=self.folder, env=env, parser="kohya", parser_options=options,
                          files={"training": train_toml, "dataset": dataset_toml, **({"prompts": prompts} if prompts else {})},
                          controls={"save": {"unavailable": NO_MIDRUN_CONTROL}, "sample": {"unavailable": NO_MIDRUN_CONTROL}})

    def artifacts(self, run_dir: Path) -> list[Artifact]:
        return collect_artifacts(run_dir)


def resume_offset(state_dir: Path) -> int | None:
    """The absolute step a resumed run starts at (the state's train_state.json), if readable."""
    try:
        return int(json.loads((state_dir / "train_state.json").read_text())["current_step"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def collect_artifacts(run_dir: Path) -> list[Artifact]:
    """LoRAs, epoch checkpoints, state folders, samples, TensorBoard logs and rendered configs of a run."""
    import re

    out: list[Artifact] = []
    output = run_dir / "output"
    for p in sorted(output.glob("*.safetensors")) if output.is_dir() else []:
        m = re.search(r"-(\d{6})\.safetensors$", p.name)
        step = re.search(r"-step(\d{8})\.safetensors$", p.name)
        out.append(Artifact(p, "checkpoint" if (m or step) else "lora", int(m.group(1)) if m else None,
                            int(step.group(1)) if step else None))
    for p in sorted(output.glob("*-state")) if output.is_dir() else []:
        if p.is_dir():
            out.append(Artifact(p, "state"))
    for p in sorted((output / "sample").glob("*.png")) if (output / "sample").is_dir() else []:
        out.append(Artifact(p, "sample"))
    if (run_dir / "logs").is_dir() and any((run_dir / "logs").iterdir()):
        out.append(Artifact(run_dir / "logs", "tensorboard"))
    for name in ("train.toml", "dataset.toml", "job.yaml", "config.json"):
        if (run_dir / name).is_file():
            out.append(Artifact(run_dir / name, "config"))
    return out

