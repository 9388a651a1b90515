"""ostris ai-toolkit adapter: renders the FLUX LoRA job YAML and runs ``run.py`` from the checkout.

Follows ENGINES.md Part B and the Part C checklist: ``job: extension`` with one ``diffusion_trainer``
process (``sd_trainer`` plus polling of a SQLite flag store lora-nb creates in the run folder: save
now, sample now), a ``training_folder`` inside the run folder, no literal ``${`` anywhere (ai-toolkit
substitutes environment variables into the whole file), ``python run.py /abs/job.yaml`` from the repository root
with PYTHONUNBUFFERED=1, and SIGINT to stop (it then exits 0 with ``Job stopped``).

ai-toolkit counts a run in steps (loop iterations), not epochs: the step total comes from the
same calculator as kohya's (``lora_nb.steps``), so an epoch-based config gives the same number
of optimizer steps in both engines.

>>> import lora_nb, tempfile
>>> ws = lora_nb.Workspace(tempfile.mkdtemp())
>>> get_engine = __import__("lora_nb.engines", fromlist=["get_engine"]).get_engine
>>> get_engine("ai-toolkit", ws).check().installed
False
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, EngineError
from .base import Artifact, LaunchPlan
from .checkout import CONSOLE_ENV, CheckoutEngine

if TYPE_CHECKING:  # pragma: no cover
    from ..config.model import TrainingConfig

__all__ = ["AIToolkitEngine", "render_job"]

# our optimizer names (kohya spelling) -> ai-toolkit's `train.optimizer`
OPTIMIZERS = {"adamw8bit": "adamw8bit", "adamw": "adamw", "adam": "adam", "adam8bit": "adam8bit", "lion": "lion",
              "lion8bit": "lion8bit", "adafactor": "adafactor", "prodigy": "prodigy", "prodigy8bit": "prodigy8bit",
              "adagrad": "adagrad", "dadaptation": "dadaptation", "dadaptadam": "dadaptation", "dadaptlion": "dadaptationlion"}
# (toolkit/optimizer.py: 'dadaptation' is DAdaptAdam, '...lion' DAdaptLion; its '...adam' branch builds a DAdaptLion)
SCHEDULERS = {"constant", "cosine", "cosine_with_restarts", "linear", "constant_with_warmup"}
SAVE_DTYPES = {"bf16": "bf16", "fp16": "float16", "float": "float32", None: "bf16"}
TRAIN_DTYPES = {"bf16": "bf16", "fp16": "fp16", "no": "fp32"}
NETWORK_TYPES = {"lora": "lora", "locon": "locon", "lokr": "lokr"}
# our family -> ModelConfig.arch (toolkit/config_modules.py; 'sd1' is its default, 'sdxl' sets is_xl). SD 1.5/SDXL
# train with the DDPM noise scheduler (BaseSDTrainProcess; recordings run6_sd15/run6_sdxl), FLUX with flowmatch
ARCHS = {"flux": "flux", "sd15": "sd1", "sdxl": "sdxl"}


# optimizers ai-toolkit names but whose package its requirements.txt does not install (toolkit/optimizer.py imports
# lion_pytorch / dadaptation on use: "ImportError: Please install lion_pytorch", "No module named 'dadaptation'")
NOT_INSTALLED = {"lion": "lion-pytorch", "dadaptation": "dadaptation", "dadaptationlion": "dadaptation"}
# optimizer_params keys that only some optimizers take (each other optimizer's __init__ raises "unexpected keyword")
ONLY_FOR = {"relative_step": {"adafactor"}, "scale_parameter": {"adafactor"}, "warmup_init": {"adafactor"},
            "clip_threshold": {"adafactor"}, "decay_rate": {"adafactor"}, "beta1": {"adafactor"},
            "d_coef": {"prodigy", "prodigy8bit"}, "decouple": {"prodigy", "prodigy8bit"},
            "use_bias_correction": {"prodigy", "prodigy8bit"}, "safeguard_warmup": {"prodigy", "prodigy8bit"},
            "betas": {"adamw8bit", "adamw", "adam", "adam8bit", "lion8bit", "prodigy", "prodigy8bit"}}


def _kv(args: list[str]) -> dict[str, Any]:
    """'key=value' strings -> a dict with Python literals typed, as sd-scripts reads them (``betas=0.9,0.99`` is a
    tuple, numbers and True/False typed; anything else stays text)."""
    import ast

    out: dict[str, Any] = {}
    for item in args:
        key, _, raw = item.partition("=")
        value: Any = raw
        if raw.lower() in ("true", "false"):
            value = raw.lower() == "true"
        else:
            try:
                value = ast.literal_eval(raw)
            except (ValueError, SyntaxError):
                pass
            if isinstance(value, tuple):
                value = list(value)         # yaml.safe_dump writes lists, not tuples
        out[key.strip()] = value
    return out


def render_job(cfg: "TrainingConfig", folders: list[dict[str, Any]], total_steps: int, steps_per_epoch: int | None,
               training_folder: Path, log_dir: Path | None, control_db: Path | None = None) -> dict[str, Any]:
    """The ai-toolkit job as a dict (written as YAML). ``folders``: one dataset-TOML subset table per subset
    (``image_dir``, ``num_repeats``, ``is_reg``, and a subset's own ``caption_extension``/``keep_tokens``/``flip_aug``/``random_crop``).

    With ``control_db`` the process is a ``diffusion_trainer`` (SDTrainer plus the flag polling of ai-toolkit's UI)
    whose ``sqlite_db_path`` is that file: see :func:`create_control_db`."""
    arch = ARCHS.get(cfg.model_family)
    if arch is None:
        raise ConfigError(f"ai-toolkit runs FLUX, SD 1.5 and SDXL LoRAs here, not {cfg.model_family}.",
                          fix="Set model_family to flux, sd15 or sdxl, or use the kohya engine.")
    flux = arch == "flux"
    optimizer = OPTIMIZERS.get(cfg.optimizer_type.lower())
    if optimizer is None:
        raise ConfigError(f"ai-toolkit has no optimizer '{cfg.optimizer_type}'.",
                          fix=f"Choose one of: {', '.join(sorted(set(OPTIMIZERS)))}.")
    if optimizer in NOT_INSTALLED:
        raise ConfigError(f"ai-toolkit's installation does not include the {NOT_INSTALLED[optimizer]} package that its "
                          f"'{optimizer}' optimizer needs.",
                          fix="Use AdamW, AdamW8bit, Lion8bit, Prodigy or Adafactor (or pip install it into ai-toolkit's venv "
                              "and set engine_options {'train.optimizer': ...}).")
    for key in _kv(cfg.optimizer_args):
        if key == "eps":    # toolkit/optimizer.py passes eps=1e-6 itself: "got multiple values for keyword argument 'eps'"
            raise ConfigError("ai-toolkit sets the optimizer's eps itself (1e-6), so an 'eps' optimizer argument is rejected.",
                              fix="Remove 'eps=...' from the optimizer args.")
        if key in ONLY_FOR and optimizer not in ONLY_FOR[key]:
            raise ConfigError(f"Optimizer argument '{key}' does not apply to {cfg.optimizer_type} in ai-toolkit.",
                              fix=f"Remove '{key}=...' from the optimizer args (it is for {', '.join(sorted(ONLY_FOR[key]))}).")
    if cfg.lr_scheduler not in SCHEDULERS:
        raise ConfigError(f"ai-toolkit has no learning-rate schedule '{cfg.lr_scheduler}'.", fix=f"Choose one of: {', '.join(sorted(SCHEDULERS))}.")
    network_type = NETWORK_TYPES.get(cfg.network_type)
    if network_type is None:
        raise ConfigError(f"ai-toolkit cannot train a {cfg.network_type} network.", fix="Use lora, locon or lokr.")
    w, h = cfg.resolution_wh
    # one training size: ai-toolkit's `resolution` is the side of a square area (buckets keep that area), and a list
    # is expanded into one copy of the dataset per entry (two sizes would double every epoch); kohya's "w,h" is an area
    side = int(w) if int(w) == int(h) else max(64, int(round(math.sqrt(int(w) * int(h)) / 64)) * 64)
    warm = cfg.lr_warmup_steps
    warmup_steps = int(warm * total_steps) if isinstance(warm, float) and warm < 1 else int(warm)
    scheduler = cfg.lr_scheduler
    if warmup_steps and scheduler != "constant_with_warmup":
        # toolkit/scheduler.py passes lr_scheduler_params straight to torch's CosineAnnealingLR / LinearLR / ...,
        # which fail with "unexpected keyword argument 'num_warmup_steps'"
        raise ConfigError(f"ai-toolkit's {cfg.lr_scheduler} schedule has no warm-up.",
                          fix="Set the warm-up to 0, or use the constant_with_warmup schedule.")
    every = cfg.save_every_n_steps or (cfg.save_every_n_epochs * steps_per_epoch if cfg.save_every_n_epochs and steps_per_epoch else None)
    network: dict[str, Any] = {"type": network_type, "linear": int(cfg.network_dim), "linear_alpha": float(cfg.network_alpha)}
    if cfg.conv_dim:
        network.update(conv=int(cfg.conv_dim), conv_alpha=float(cfg.conv_alpha or cfg.conv_dim))
    if cfg.network_dropout:
        network["dropout"] = float(cfg.network_dropout)
    save = {"dtype": SAVE_DTYPES[cfg.save_precision], "save_every": int(min(every or total_steps, total_steps)),
            "max_step_saves_to_keep": int(cfg.save_last_n_epochs or 4)}
    datasets = []
    for f in folders:
        caption_ext = f.get("caption_extension", cfg.caption_extension)      # a subset's own values first
        d: dict[str, Any] = {"folder_path": str(f["image_dir"]), "caption_ext": caption_ext.lstrip(".") or "txt",
                             "caption_dropout_rate": float(cfg.caption_dropout_rate), "shuffle_tokens": bool(cfg.shuffle_caption),
                             "keep_tokens": int(f.get("keep_tokens", cfg.keep_tokens)), "cache_latents_to_disk": bool(cfg.cache_latents_to_disk),
                             "resolution": [side], "buckets": bool(cfg.enable_bucket),
                             "num_repeats": int(f["num_repeats"])}
        if f.get("is_reg"):
            d["is_reg"] = True
        if f.get("flip_aug", cfg.flip_aug):
            d["flip_x"] = True
        if f.get("random_crop"):
            d["random_crop"] = True
        if f.get("class_tokens"):
            d["default_caption"] = str(f["class_tokens"])
        datasets.append(d)
    train: dict[str, Any] = {"batch_size": int(cfg.train_batch_size), "steps": int(total_steps),
                             "gradient_accumulation": int(cfg.gradient_accumulation_steps), "train_unet": True,
                             "train_text_encoder": False, "gradient_checkpointing": bool(cfg.gradient_checkpointing),
                             "noise_scheduler": "flowmatch" if flux else "ddpm", "optimizer": optimizer,
                             "lr": float(cfg.unet_lr or cfg.learning_rate), "lr_scheduler": scheduler,
                             "dtype": TRAIN_DTYPES[cfg.mixed_precision], "max_grad_norm": float(cfg.max_grad_norm)}
    if cfg.optimizer_args:
        train["optimizer_params"] = _kv(cfg.optimizer_args)
    if scheduler == "constant_with_warmup":
        train["lr_scheduler_params"] = {"num_warmup_steps": warmup_steps}
    elif scheduler == "linear":
        # ai-toolkit's linear is torch's LinearLR, whose defaults ramp the rate UP from lr/3 to lr; kohya's (and
        # diffusers') linear decays from lr to 0
        train["lr_scheduler_params"] = {"start_factor": 1.0, "end_factor": 0.0}
    if cfg.noise_offset:
        train["noise_offset"] = float(cfg.noise_offset)
    if cfg.min_snr_gamma:
        train["min_snr_gamma"] = float(cfg.min_snr_gamma)
    process: dict[str, Any] = {"type": "diffusion_trainer" if control_db else "sd_trainer", "training_folder": str(training_folder),
                               **({"sqlite_db_path": str(control_db)} if control_db else {}), "network": network, "save": save,
                               "datasets": datasets, "train": train,
                               "model": {"name_or_path": cfg.pretrained_model_name_or_path, "arch": arch,
                                         "quantize": bool(cfg.fp8_base)}}
    if cfg.trigger_words:
        process["trigger_word"] = cfg.trigger_words[0]
    if cfg.seed is not None:
        process["training_seed"] = int(cfg.seed)
    if log_dir is not None:
        process["log_dir"] = str(log_dir)
    if cfg.sample_prompts and (cfg.sample_every_n_steps or cfg.sample_every_n_epochs):
        sample_every = cfg.sample_every_n_steps or (cfg.sample_every_n_epochs or 1) * (steps_per_epoch or total_steps)
        process["sample"] = {"sampler": "flowmatch" if flux else "ddpm", "sample_every": int(sample_every), "width": int(w) // 8 * 8,
                             "height": int(h) // 8 * 8, "prompts": [p.replace("\n", " ") for p in cfg.sample_prompts],
                             "neg": "",   # SampleConfig's default is False, which the tokenizer rejects
                             "seed": int(cfg.seed or 42), "walk_seed": True, "guidance_scale": 4.0 if flux else 7.0, "sample_steps": 20}
    else:
        train["disable_sampling"] = True
    for path, value in cfg.engine_options.items():
        head, *rest = path.split(".")
        if head not in ("network", "save", "train", "model", "sample", "logging") or not rest:
            raise ConfigError(f"engine_options: '{path}' is not a section.key path of ai-toolkit's job (network, save, train, model, "
                              "sample, logging).", fix="For example 'model.low_vram' or 'train.ema_config'.")
        node = process.setdefault(head, {})
        for part in rest[:-1]:
            node = node.setdefault(part, {})
        node[rest[-1]] = value
    job = {"job": "extension", "config": {"name": cfg.output_name, "process": [process]},
           "meta": {"name": "[name]", "version": "1.0", **({"training_comment": cfg.training_comment} if cfg.training_comment else {})}}
    _refuse_env_syntax(job)
    return job


# DiffusionTrainer (extensions_built_in/sd_trainer/DiffusionTrainer.py at 27a03a9) polls these columns of its Job row
# after every step (end_step_hook: maybe_stop, maybe_save, maybe_sample; each clears its flag) and writes status, info,
# step and speed_string; it is active only when sqlite_db_path exists when the process starts and AITK_JOB_ID is set
CONTROL_TABLE = ("CREATE TABLE Job (id TEXT PRIMARY KEY, status TEXT NOT NULL DEFAULT 'running', info TEXT NOT NULL DEFAULT '', "
                 "step INTEGER NOT NULL DEFAULT 0, speed_string TEXT NOT NULL DEFAULT '', stop INTEGER NOT NULL DEFAULT 0, "
                 "return_to_queue INTEGER NOT NULL DEFAULT 0, save_now INTEGER NOT NULL DEFAULT 0, "
                 "sample_now INTEGER NOT NULL DEFAULT 0)")
CONTROL_ROW = "lora-nb"
NO_SAMPLES = "This run has no sample prompts, so there is nothing to sample; set sample prompts before the next run."


def create_control_db(path: Path, row: str = CONTROL_ROW) -> Path:
    """The SQLite flag store a ``diffusion_trainer`` polls: a ``Job`` table with one row, every flag 0.

    >>> import sqlite3, tempfile, pathlib
    >>> db = create_control_db(pathlib.Path(tempfile.mkdtemp()) / "control.db")
    >>> sqlite3.connect(db).execute("SELECT save_now, sample_now, stop FROM Job WHERE id='lora-nb'").fetchone()
    (0, 0, 0)
    """
    import sqlite3

    conn = sqlite3.connect(str(path))
    try:
        with conn:
            conn.execute(CONTROL_TABLE)
            conn.execute("INSERT INTO Job (id) VALUES (?)", (row,))
    finally:
        conn.close()
    return path


def _refuse_env_syntax(value: Any, where: str = "config") -> None:
    """ai-toolkit replaces every ``${VAR}`` in the file before parsing: a literal one breaks loading."""
    if isinstance(value, dict):
        for k, v in value.items():
            _refuse_env_syntax(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _refuse_env_syntax(v, f"{where}[{i}]")
    elif isinstance(value, str) and "${" in value:
        raise ConfigError(f"{where} contains '${{', which ai-toolkit would read as an environment variable.",
                          fix="Remove the '${' from that text (prompt, path or comment).")


class AIToolkitEngine(CheckoutEngine):
    """``get_engine("ai-toolkit", ws)``: FLUX, SD 1.5 and SDXL LoRA training with ostris/ai-toolkit."""

    name = "ai-toolkit"
    what = "ai-toolkit"
    dir_setting, dir_env, default_folder, python_setting = "aitoolkit_dir", "LORA_NB_AITOOLKIT_DIR", "ai-toolkit", "aitoolkit_python"
    markers = ("run.py", "toolkit")
    parser_name = "aitoolkit"

    def modules(self) -> tuple[str, ...]:
        return ("torch", "yaml", "safetensors")

    def prepare(self, cfg: "TrainingConfig", run_dir: Path) -> LaunchPlan:
        import yaml

        from ..config import steps
        from .kohya import dataset_subsets

        self.require_own(cfg)
        if cfg.num_processes > 1:
            raise EngineError(f"ai-toolkit's run.py trains on one GPU, so num_processes={cfg.num_processes} cannot run.",
                              fix="Set num_processes to 1, or train on several GPUs with engine='kohya'.")
        check_model_folder(cfg.pretrained_model_name_or_path, cfg.model_family)
        est = steps(cfg, self.ws)
        total = est.total_steps
        per_epoch = est.steps_per_epoch or None
        # ai-toolkit resumes by itself from the newest checkpoint in <training_folder>/<name>/:
        # to continue an earlier run, this run trains in that run's folder
        training_folder = resume_folder(Path(cfg.resume), cfg.output_name) if cfg.resume else run_dir / "output"
        training_folder.mkdir(parents=True, exist_ok=True)
        log_dir = run_dir / "logs" if cfg.log_with == "tensorboard" else None
        control_db = create_control_db(run_dir / "control.db")
        job = render_job(cfg, dataset_subsets(cfg, self.ws), total, per_epoch, training_folder, log_dir, control_db)
        job_yaml = run_dir / "job.yaml"
        job_yaml.write_text("# rendered by lora-nb for ai-toolkit's run.py\n" + yaml.safe_dump(job, sort_keys=False, allow_unicode=True),
                            encoding="utf-8")
        out = training_folder / cfg.output_name
        argv = [str(self.python), str(self.folder / "run.py"), str(job_yaml)]
        env = dict(CONSOLE_ENV, DISABLE_TELEMETRY="YES", AITK_JOB_ID=CONTROL_ROW)
        options = {"name": cfg.output_name, "total_steps": total, "final_path": str(out / f"{cfg.output_name}.safetensors"),
                   "sample_dir": str(out / "samples"), "stop_signal": "SIGINT"}
        flag = {"flag_db": str(control_db), "table": "Job", "row": CONTROL_ROW}
        sampling = "sample" in job["config"]["process"][0]
        controls = {"save": dict(flag, column="save_now"),
                    # maybe_sample calls sample(), which reads the sample section: without one it would crash the run
                    "sample": dict(flag, column="sample_now") if sampling else {"unavailable": NO_SAMPLES}}
        return LaunchPlan(argv=argv, cwd=self.folder, env=env, parser="aitoolkit", parser_options=options,
                          files={"job": job_yaml, "control": control_db}, controls=controls)

    def artifacts(self, run_dir: Path) -> list[Artifact]:
        return collect_artifacts(run_dir)


def check_model_folder(name_or_path: str, family: str = "flux") -> None:
    """A local base model must be a diffusers folder: ai-toolkit takes a missing path for a Hub id (and fails at model
    loading with "We couldn't connect to 'https://huggingface.co'...", tests/fixtures/aitoolkit run4_missing_model) and
    looks for transformer/ inside a file's path."""
    text = name_or_path.strip()
    if not (text.startswith(("/", "./", "../", "~")) or Path(text).exists()):
        return                      # a Hugging Face id such as black-forest-labs/FLUX.1-dev
    path = Path(text).expanduser()
    if not path.exists():
        raise ConfigError(f"The base model folder {path} does not exist.",
                          fix="Point the base model at a diffusers folder (with transformer/, vae/, text_encoder/ ...) or a Hugging Face id.")
    if not path.is_dir() and family == "flux":   # SD 1.5 / SDXL: StableDiffusion(XL)Pipeline.from_single_file
        raise ConfigError(f"ai-toolkit loads FLUX from a diffusers folder, and {path} is a single file.",
                          fix="Use the diffusers folder of the model (or its Hugging Face id), or train this file with the kohya engine.")


def resume_folder(path: Path, name: str) -> Path:
    """The ``training_folder`` that holds ``<name>/`` checkpoints, from a run folder, its job folder or a checkpoint."""
    candidates = [path / "output", path.parent, path.parent.parent, path]
    for folder in candidates:
        job_dir = folder / name
        if job_dir.is_dir() and any(job_dir.glob(f"{name}*.safetensors")):
            return folder
    raise ConfigError(f"{path} holds no ai-toolkit checkpoint of '{name}' to resume from.",
                      fix="Give the earlier run's folder (or one of its checkpoints) and keep the same output name.")


def collect_artifacts(run_dir: Path) -> list[Artifact]:
    """Step checkpoints, the final LoRA, samples, the optimizer state, TensorBoard and configs of an ai-toolkit run."""
    import re

    out: list[Artifact] = []
    root = run_dir / "output"
    for job_dir in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        for p in sorted(job_dir.glob("*.safetensors")):
            m = re.search(r"_(\d{9})\.safetensors$", p.name)
            out.append(Artifact(p, "checkpoint" if m else "lora", None, int(m.group(1)) if m else None))
        if (job_dir / "optimizer.pt").is_file():
            out.append(Artifact(job_dir / "optimizer.pt", "state"))
        samples = job_dir / "samples"
        for p in sorted(samples.iterdir()) if samples.is_dir() else []:
            if p.is_file() and p.suffix.lower() in (".jpg", ".png", ".webp"):
                m = re.search(r"__(\d{9})_", p.name)
                out.append(Artifact(p, "sample", None, int(m.group(1)) if m else None))
    if (run_dir / "logs").is_dir() and any((run_dir / "logs").iterdir()):
        out.append(Artifact(run_dir / "logs", "tensorboard"))
    for name in ("job.yaml", "config.json"):
        if (run_dir / name).is_file():
            out.append(Artifact(run_dir / name, "config"))
    return out
