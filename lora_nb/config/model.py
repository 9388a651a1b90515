"""TrainingConfig: one canonical, validated description of a LoRA training run.

Field names are sd-scripts' option names wherever one exists, so kohya users'
knowledge and TOML files carry over. lora-nb's own fields are ``engine``,
``model_family``, ``dataset`` (a workspace dataset name, or a list of subsets),
``num_repeats`` (repeats for images that are not in an ``N_concept`` folder), ``network_type``,
``conv_dim``/``conv_alpha``, ``trigger_words`` and ``num_processes``.

>>> cfg = TrainingConfig(model_family="sd15", dataset="alice", pretrained_model_name_or_path="/m/sd15.safetensors")
>>> cfg.network_dim, cfg.resolution, cfg.caption_extension
(16, '512', '.txt')
>>> TrainingConfig(model_family="flux", dataset="a", pretrained_model_name_or_path="/m/f.safetensors")
Traceback (most recent call last):
...
lora_nb.errors.ConfigError: FLUX training needs its text encoders and autoencoder: set clip_l, t5xxl, ae. Point each at its .safetensors file (see the Models tab's starter list).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..errors import ConfigError

__all__ = ["TrainingConfig", "Subset", "FAMILIES", "OPTIMIZERS", "SCHEDULERS", "config_error"]

Family = Literal["sd15", "sd2", "sdxl", "flux", "sd3"]
FAMILIES: dict[str, str] = {"sd15": "Stable Diffusion 1.5", "sd2": "Stable Diffusion 2.x", "sdxl": "SDXL",
                            "flux": "FLUX.1", "sd3": "SD3 / SD3.5"}
OPTIMIZERS = ["AdamW", "AdamW8bit", "PagedAdamW8bit", "Lion", "Lion8bit", "Prodigy", "Adafactor", "DAdaptAdam",
              "DAdaptation", "DAdaptLion", "SGDNesterov", "SGDNesterov8bit", "AdamWScheduleFree", "RAdamScheduleFree"]
SCHEDULERS = ["constant", "constant_with_warmup", "linear", "cosine", "cosine_with_restarts", "polynomial", "adafactor",
              "inverse_sqrt", "cosine_with_min_lr", "warmup_stable_decay", "piecewise_constant"]
NETWORK_TYPES = ["lora", "locon", "loha", "lokr", "ia3", "dylora", "full"]
# sd-scripts' --sample_sampler choices (train_util.add_training_arguments at 48d368f)
KOHYA_SAMPLERS = ["ddim", "pndm", "lms", "euler", "euler_a", "heun", "dpm_2", "dpm_2_a", "dpmsolver", "dpmsolver++", "dpmsingle",
                  "k_lms", "k_euler", "k_euler_a", "k_dpm_2", "k_dpm_2_a"]


def _f(default: Any, section: str, label: str, help: str, **kw: Any) -> Any:
    """A field with the UI facts (section basic/advanced, label, help) in its JSON schema."""
    extra = {"section": section, "label": label}
    if "families" in kw:
        extra["families"] = kw.pop("families")
    return Field(default, description=help, json_schema_extra=extra, **kw)


class Subset(BaseModel):
    """One folder of images with its repeat count (a kohya dataset subset)."""

    model_config = ConfigDict(extra="forbid")
    dataset: str = Field(description="Workspace dataset name.")
    folder: str = Field("", description="Sub-folder inside the dataset ('' for the top folder).")
    num_repeats: int = Field(1, ge=1, le=10_000, description="How many times each image is seen per epoch.")
    is_reg: bool = Field(False, description="Regularisation images.")
    class_tokens: str | None = Field(None, description="Caption for images without a caption file.")
    # sd-scripts dataset-TOML subset options (ENGINES.md: dataset config); None takes the config's own value
    caption_extension: str | None = Field(None, description="Caption files of this subset (empty: the config's caption extension).")
    keep_tokens: int | None = Field(None, ge=0, le=255, description="Tags kept first when shuffling (empty: the config's keep first tags).")
    flip_aug: bool | None = Field(None, description="Random horizontal flips for this subset (empty: the config's flip setting).")
    random_crop: bool = Field(False, description="Random crops instead of centre crops (needs latent caching off).")

    @field_validator("caption_extension")
    @classmethod
    def _caption_extension(cls, v: str | None) -> str | None:
        if v is None or v == "":
            return None
        if not re.fullmatch(r"\.?[A-Za-z0-9_.-]{1,32}", v):
            raise ValueError("write a caption extension like .txt or .caption")
        return v if v.startswith(".") else "." + v

    @field_validator("folder")
    @classmethod
    def _folder(cls, v: str) -> str:
        if v.startswith(("/", "\\")) or ".." in v.replace("\\", "/").split("/"):
            raise ValueError("the folder is a sub-folder inside the dataset, like '10_alice'")
        return v.strip("/")


class TrainingConfig(BaseModel):
    """Everything a LoRA run needs. Validated on creation and on every assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())

    # -- what ---------------------------------------------------------------------
    engine: Literal["kohya", "ai-toolkit"] = _f("kohya", "basic", "Engine", "The trainer that runs the job: kohya sd-scripts, or ai-toolkit (FLUX, SD 1.5, SDXL).")
    model_family: Family = _f("sd15", "basic", "Model family", "The base model's architecture.")
    pretrained_model_name_or_path: str = _f("", "basic", "Base model", "Path of the base checkpoint (.safetensors) or diffusers folder.")
    v2: bool = _f(False, "advanced", "SD 2.x model", "Set for Stable Diffusion 2.x bases (set automatically for the sd2 family).", families=["sd2"])
    v_parameterization: bool = _f(False, "advanced", "v-parameterization", "For 768-v SD 2.x models.", families=["sd2"])
    vae: str | None = _f(None, "advanced", "VAE", "A separate VAE file, if the checkpoint's should be replaced.")
    clip_l: str | None = _f(None, "basic", "CLIP-L", "CLIP-L text encoder file (FLUX, SD3).", families=["flux", "sd3"])
    clip_g: str | None = _f(None, "basic", "CLIP-G", "CLIP-G text encoder file (SD3).", families=["sd3"])
    t5xxl: str | None = _f(None, "basic", "T5-XXL", "T5-XXL text encoder file (FLUX, SD3).", families=["flux", "sd3"])
    ae: str | None = _f(None, "basic", "Autoencoder", "FLUX autoencoder (ae.safetensors).", families=["flux"])

    # -- data ---------------------------------------------------------------------
    dataset: str | list[Subset] = _f("", "basic", "Dataset", "A workspace dataset name, or a list of subsets with repeats.")
    trigger_words: list[str] = _f([], "basic", "Trigger words", "Words that call the LoRA; every training caption should contain them.")
    num_repeats: int = _f(10, "basic", "Repeats", "Repeats for images not inside an N_name folder (those use N).", ge=1, le=10_000)
    resolution: str = _f("512", "basic", "Resolution", "Training size: '1024' or 'width,height'.")
    enable_bucket: bool = _f(True, "basic", "Aspect-ratio buckets", "Train on several aspect ratios instead of square crops.")
    min_bucket_reso: int = _f(256, "advanced", "Smallest bucket side", "In pixels.", ge=64, le=4096)
    max_bucket_reso: int = _f(1024, "advanced", "Largest bucket side", "In pixels.", ge=64, le=8192)
    bucket_reso_steps: int = _f(64, "advanced", "Bucket step", "Bucket sides are multiples of this (64 for SD 1.x/2.x, 32 or 64 for the others).", ge=8, le=512)
    bucket_no_upscale: bool = _f(False, "advanced", "Never upscale", "Buckets follow each image's own size; small images are not enlarged.")
    caption_extension: str = _f(".txt", "advanced", "Caption extension", "Caption files next to the images (the tagger writes .txt).")
    shuffle_caption: bool = _f(False, "basic", "Shuffle tags", "Shuffle the comma-separated tags each step.")
    keep_tokens: int = _f(0, "basic", "Keep first tags", "Tags at the start kept in place when shuffling (your trigger word).", ge=0, le=255)
    caption_dropout_rate: float = _f(0.0, "advanced", "Caption dropout", "Share of steps trained with an empty caption.", ge=0.0, le=1.0)
    caption_tag_dropout_rate: float = _f(0.0, "advanced", "Tag dropout", "Share of tags dropped per step.", ge=0.0, le=1.0)
    flip_aug: bool = _f(False, "advanced", "Flip images", "Random horizontal flips (avoid for asymmetric subjects).")

    # -- network ------------------------------------------------------------------
    network_type: Literal["lora", "locon", "loha", "lokr", "ia3", "dylora", "full"] = _f(
        "lora", "basic", "Network type", "lora (kohya networks.lora), or a LyCORIS type (needs the lycoris package in the engine).")
    network_dim: int = _f(16, "basic", "Rank (dim)", "LoRA rank: capacity and file size.", ge=1, le=1024)
    network_alpha: float = _f(8.0, "basic", "Alpha", "Scales the LoRA; alpha/dim is the effective multiplier.", gt=0.0, le=1024.0)
    conv_dim: int | None = _f(None, "advanced", "Conv rank", "Rank for 3x3 convolutions (LoCon/LyCORIS); empty: linear layers only.", ge=1, le=1024)
    conv_alpha: float | None = _f(None, "advanced", "Conv alpha", "Alpha for convolutions.", gt=0.0, le=1024.0)
    network_dropout: float | None = _f(None, "advanced", "Network dropout", "Dropout on the LoRA's down output.", ge=0.0, le=1.0)
    network_args: list[str] = _f([], "advanced", "Network args", "Extra key=value arguments for the network module.")
    network_train_unet_only: bool = _f(False, "basic", "Train U-Net/DiT only", "Leave the text encoder(s) alone (required when caching their outputs).")
    network_weights: str | None = _f(None, "advanced", "Start from LoRA", "Continue from an existing LoRA file.")

    # -- optimiser ----------------------------------------------------------------
    optimizer_type: str = _f("AdamW8bit", "basic", "Optimizer", "AdamW8bit needs bitsandbytes; Prodigy/DAdapt* pick their own LR (use learning_rate 1.0).")
    optimizer_args: list[str] = _f([], "advanced", "Optimizer args", "key=value, e.g. weight_decay=0.01.")
    learning_rate: float = _f(1e-4, "basic", "Learning rate", "Base learning rate.", gt=0.0, le=10.0)
    unet_lr: float | None = _f(None, "advanced", "U-Net/DiT LR", "Overrides the learning rate for the U-Net or DiT.", gt=0.0, le=10.0)
    text_encoder_lr: float | None = _f(None, "advanced", "Text encoder LR", "Overrides the learning rate for the text encoder(s).", ge=0.0, le=10.0)
    lr_scheduler: str = _f("constant", "basic", "LR schedule", "How the learning rate changes over the run.")
    lr_warmup_steps: int | float = _f(0, "advanced", "Warm-up", "Steps (a whole number) or a fraction of the run (below 1).", ge=0)
    lr_scheduler_num_cycles: int = _f(1, "advanced", "Restarts", "Cycles for cosine_with_restarts.", ge=1, le=1000)
    lr_scheduler_power: float = _f(1.0, "advanced", "Polynomial power", "For the polynomial schedule.", gt=0.0)
    max_grad_norm: float = _f(1.0, "advanced", "Gradient clipping", "0 turns clipping off.", ge=0.0)

    # -- length -------------------------------------------------------------------
    max_train_epochs: int | None = _f(10, "basic", "Epochs", "Passes over the dataset (set this or max_train_steps).", ge=1, le=100_000)
    max_train_steps: int | None = _f(None, "advanced", "Max steps", "Total optimizer steps; used when epochs are not set.", ge=1, le=10_000_000)
    train_batch_size: int = _f(1, "basic", "Batch size", "Images per step per GPU.", ge=1, le=256)
    gradient_accumulation_steps: int = _f(1, "advanced", "Gradient accumulation", "Batches per optimizer step.", ge=1, le=1024)
    num_processes: int = _f(1, "advanced", "GPUs", "Data-parallel processes (accelerate --num_processes).", ge=1, le=64)

    # -- precision and memory -----------------------------------------------------
    mixed_precision: Literal["no", "fp16", "bf16"] = _f("bf16", "basic", "Mixed precision", "bf16 on Ampere and newer; fp16 on older GPUs.")
    save_precision: Literal["float", "fp16", "bf16"] | None = _f("bf16", "advanced", "Save precision", "Precision of the saved LoRA.")
    full_bf16: bool = _f(False, "advanced", "Full bf16", "Gradients in bf16 too (saves memory).")
    full_fp16: bool = _f(False, "advanced", "Full fp16", "Gradients in fp16 too.")
    gradient_checkpointing: bool = _f(True, "basic", "Gradient checkpointing", "Much less memory, about 20% slower.")
    cache_latents: bool = _f(True, "advanced", "Cache latents", "Encode images once (turns off random crop/colour augmentation).")
    cache_latents_to_disk: bool = _f(True, "advanced", "Cache latents to disk", "Keep the cache between runs.")
    cache_text_encoder_outputs: bool = _f(False, "advanced", "Cache text encoder outputs", "SDXL/FLUX/SD3: saves memory; needs 'train U-Net only' and no caption shuffling.", families=["sdxl", "flux", "sd3"])
    sdpa: bool = _f(True, "advanced", "SDPA attention", "PyTorch scaled-dot-product attention.")
    xformers: bool = _f(False, "advanced", "xformers", "Needs xformers in the engine's environment.")
    fp8_base: bool = _f(False, "advanced", "fp8 base model", "Load the base model in fp8 (FLUX/SD3 on small GPUs).")
    blocks_to_swap: int | None = _f(None, "advanced", "Blocks to swap", "FLUX/SD3: move this many blocks to the CPU (saves memory, slower).", ge=1, le=60, families=["flux", "sd3"])
    max_data_loader_n_workers: int = _f(2, "advanced", "Data loader workers", "Processes that load and augment images while the GPU trains.", ge=0, le=64)
    persistent_data_loader_workers: bool = _f(True, "advanced", "Keep loader workers", "Keep the loader processes between epochs (faster epochs, more RAM).")

    # -- noise and loss -----------------------------------------------------------
    noise_offset: float | None = _f(None, "advanced", "Noise offset", "0.05–0.1 helps very dark/bright images.", ge=0.0, le=1.0)
    min_snr_gamma: float | None = _f(None, "advanced", "Min-SNR gamma", "5 is the usual value.", gt=0.0, le=100.0)
    clip_skip: int | None = _f(None, "advanced", "CLIP skip", "2 for anime SD 1.5 bases.", ge=1, le=12, families=["sd15"])
    seed: int | None = _f(42, "basic", "Seed", "Same seed, same run.", ge=0, le=2**32 - 1)
    prior_loss_weight: float = _f(1.0, "advanced", "Regularisation weight", "Loss weight of regularisation images.", ge=0.0)

    # -- FLUX ---------------------------------------------------------------------
    timestep_sampling: Literal["sigma", "uniform", "sigmoid", "shift", "flux_shift"] = _f("flux_shift", "advanced", "Timestep sampling", "FLUX.", families=["flux"])
    guidance_scale: float = _f(1.0, "advanced", "Guidance scale", "FLUX.1 dev: 1.0 while training.", ge=0.0, le=100.0, families=["flux"])
    discrete_flow_shift: float = _f(3.0, "advanced", "Flow shift", "FLUX/SD3 discrete flow shift.", gt=0.0, le=100.0, families=["flux", "sd3"])
    model_prediction_type: Literal["raw", "additive", "sigma_scaled"] = _f("raw", "advanced", "Model prediction", "FLUX.", families=["flux"])

    # -- saving -------------------------------------------------------------------
    output_name: str = _f("lora", "basic", "Output name", "File name of the LoRA (without .safetensors).")
    save_every_n_epochs: int | None = _f(1, "basic", "Save every N epochs", "Keep intermediate epochs to compare.", ge=1)
    save_every_n_steps: int | None = _f(None, "advanced", "Save every N steps", "Also save a checkpoint every N steps (empty: only by epoch).", ge=1)
    save_last_n_epochs: int | None = _f(None, "advanced", "Keep last N epochs", "Older epoch files are removed.", ge=1)
    save_state: bool = _f(False, "advanced", "Save resumable state", "Needed for Resume; large (optimizer state).")
    save_model_as: Literal["safetensors", "ckpt", "pt"] = _f("safetensors", "advanced", "Format", "File format of the saved LoRA; safetensors is safe to share.")
    resume: str | None = _f(None, "advanced", "Resume from state", "A *-state folder from an earlier run.")
    training_comment: str | None = _f(None, "advanced", "Comment", "Stored in the LoRA's metadata.")

    # -- samples and logging ------------------------------------------------------
    sample_prompts: list[str] = _f([], "basic", "Sample prompts", "One prompt per line; images are made during training.")
    sample_every_n_epochs: int | None = _f(None, "basic", "Sample every N epochs", "Render the sample prompts every N epochs (empty: never by epoch).", ge=1)
    sample_every_n_steps: int | None = _f(None, "advanced", "Sample every N steps", "Render the sample prompts every N steps (empty: never by step).", ge=1)
    sample_sampler: str = _f("euler_a", "advanced", "Sampler", "For SD/SDXL samples.")
    log_with: Literal["tensorboard"] | None = _f("tensorboard", "advanced", "Logging", "TensorBoard logs in the run folder.")

    # -- expert: passed to the engine as they are (not in the form) ---------------
    engine_options: dict[str, str | int | float | bool | list[str]] = _f(
        {}, "expert", "Extra engine options",
        "Options lora-nb has no field for, passed through: sd-scripts option names for kohya (checked against the "
        "script's option list), 'section.key' paths of the job YAML for ai-toolkit (e.g. 'model.low_vram').")

    # -- validators ---------------------------------------------------------------
    @field_validator("engine_options")
    @classmethod
    def _engine_options(cls, v: dict[str, Any]) -> dict[str, Any]:
        from ..settings import looks_secret

        for key, value in v.items():
            if not key or not all(part.replace("_", "").isalnum() for part in key.split(".")):
                raise ValueError(f"'{key}' is not an option name")
            if looks_secret(key, value if isinstance(value, str) else None):
                raise ValueError(f"'{key}' looks like a secret; tokens go in the environment, never in a config")
        return v

    @field_validator("resolution", mode="before")
    @classmethod
    def _resolution(cls, v: Any) -> str:
        if isinstance(v, (list, tuple)) and len(v) == 2:
            v = f"{int(v[0])},{int(v[1])}"
        if isinstance(v, int):
            v = str(v)
        if not isinstance(v, str) or not re.fullmatch(r"\s*\d{2,5}\s*(,\s*\d{2,5}\s*)?", v):
            raise ValueError("write the training size as '1024' or 'width,height', e.g. '1024,768'")
        sides = [int(x) for x in v.split(",")]
        if any(s < 64 or s > 8192 for s in sides):
            raise ValueError("each side must be between 64 and 8192 pixels")
        return ",".join(str(s) for s in sides)

    @field_validator("optimizer_type")
    @classmethod
    def _optimizer(cls, v: str) -> str:
        known = {o.lower(): o for o in OPTIMIZERS}
        if v.lower() in known:
            return known[v.lower()]
        if "." in v:  # a fully qualified optimizer class, e.g. "torch.optim.SGD"
            return v
        raise ValueError(f"unknown optimizer; use one of {', '.join(OPTIMIZERS)} or a full class path like torch.optim.SGD")

    @field_validator("lr_scheduler")
    @classmethod
    def _scheduler(cls, v: str) -> str:
        if v not in SCHEDULERS:
            raise ValueError(f"unknown schedule; use one of {', '.join(SCHEDULERS)}")
        return v

    @field_validator("output_name")
    @classmethod
    def _output_name(cls, v: str) -> str:
        from ..paths import safe_name

        try:
            return safe_name(v, "output name")
        except ConfigError:
            raise
        except Exception as e:
            raise ValueError(str(e)) from None

    @field_validator("network_args", "optimizer_args")
    @classmethod
    def _kv_list(cls, v: list[str]) -> list[str]:
        for item in v:
            if "=" not in item or item.startswith("="):
                raise ValueError(f"'{item}' is not key=value")
        return v

    @field_validator("dataset")
    @classmethod
    def _dataset(cls, v: Any) -> Any:
        if isinstance(v, str) and v:
            from ..paths import safe_name

            try:
                safe_name(v, "dataset name")
            except Exception as e:
                raise ValueError(str(e)) from None
        if isinstance(v, list) and not v:
            raise ValueError("give at least one subset")
        return v

    @model_validator(mode="after")
    def _cross_checks(self) -> "TrainingConfig":
        fam = self.model_family
        problems = []
        if fam == "flux" and self.engine == "kohya":  # ai-toolkit loads a diffusers folder or HF id with everything in it
            missing = [k for k in ("clip_l", "t5xxl", "ae") if not getattr(self, k)]
            if missing:
                raise ValueError("__cross__FLUX training needs its text encoders and autoencoder: set " + ", ".join(missing)
                                 + ". Point each at its .safetensors file (see the Models tab's starter list).")
        if fam == "sd3":
            missing = [k for k in ("clip_l", "clip_g", "t5xxl") if not getattr(self, k)]
            if missing:
                raise ValueError("__cross__SD3 training needs its three text encoders: set " + ", ".join(missing) + ". Point each at its .safetensors file.")
        if self.engine == "ai-toolkit" and fam not in ("flux", "sd15", "sdxl"):
            problems.append("ai-toolkit is supported for the flux, sd15 and sdxl families here; use the kohya engine for " + FAMILIES[fam] + ".")
        step = self.bucket_reso_steps
        kohya = self.engine == "kohya"
        if fam in ("sd15", "sd2") and step % 64:
            problems.append(f"bucket_reso_steps is {step}; SD 1.x/2.x needs a multiple of 64.")
        elif fam == "flux" and kohya and step % 64:   # flux_train_network checks 64 (its parent's check) and 32
            problems.append(f"bucket_reso_steps is {step}; sd-scripts' FLUX.1 trainer needs a multiple of 64.")
        elif step % 32:
            problems.append(f"bucket_reso_steps is {step}; it must be a multiple of 32.")
        sides = [int(s) for s in self.resolution.split(",")]
        # sd-scripts asserts the bucket limits against the resolution whenever buckets are on, 'never upscale' too
        if self.enable_bucket and (kohya or not self.bucket_no_upscale):
            if self.min_bucket_reso > min(sides):
                problems.append(f"min_bucket_reso ({self.min_bucket_reso}) is larger than the resolution ({self.resolution}); lower it.")
            if self.max_bucket_reso < max(sides):
                problems.append(f"max_bucket_reso ({self.max_bucket_reso}) is smaller than the resolution ({self.resolution}); raise it.")
        if self.enable_bucket and kohya and (self.min_bucket_reso % step or self.max_bucket_reso % step):
            # sd-scripts would move them silently (min down, max up; a min below the step becomes 0 and crashes)
            lo = max(step, self.min_bucket_reso - self.min_bucket_reso % step)
            hi = self.max_bucket_reso + (-self.max_bucket_reso) % step
            problems.append(f"min_bucket_reso and max_bucket_reso must be multiples of bucket_reso_steps ({step}). "
                            f"Use {lo} and {hi}.")
        if self.max_train_epochs is None and self.max_train_steps is None:
            problems.append("Set the number of epochs (max_train_epochs) or of steps (max_train_steps).")
        if self.lr_scheduler == "constant" and self.lr_warmup_steps:
            problems.append("The constant schedule takes no warm-up; use constant_with_warmup or set warm-up to 0.")
        if isinstance(self.lr_warmup_steps, float) and self.lr_warmup_steps >= 1:
            problems.append("A warm-up given as a fraction must be below 1 (write whole steps as an integer).")
        if self.cache_text_encoder_outputs:
            if not self.network_train_unet_only:
                problems.append("Caching text encoder outputs needs 'train U-Net/DiT only'.")
            if self.shuffle_caption or self.caption_dropout_rate or self.caption_tag_dropout_rate:
                problems.append("Caching text encoder outputs cannot be combined with tag shuffling or caption dropout.")
        if isinstance(self.dataset, list) and self.cache_latents and any(s.random_crop for s in self.dataset):
            problems.append("Random crop cannot be used with cached latents (sd-scripts refuses it). "
                            "Turn 'Cache latents' off, or random crop off for every subset.")
        if self.full_bf16 and self.mixed_precision != "bf16":
            problems.append("full_bf16 needs mixed precision bf16.")
        if self.full_fp16 and self.mixed_precision != "fp16":
            problems.append("full_fp16 needs mixed precision fp16.")
        if self.fp8_base and self.mixed_precision == "no":
            problems.append("fp8_base needs mixed precision fp16 or bf16.")
        if self.xformers and self.sdpa:
            problems.append("Choose one attention: xformers or sdpa.")
        if self.network_type != "lora" and self.engine == "kohya" and fam in ("flux", "sd3"):
            problems.append(f"{self.network_type} is not available for {FAMILIES[fam]} in kohya; use lora.")
        if kohya:
            problems += self._kohya_checks()
        if problems:
            raise ValueError("__cross__" + " | ".join(problems))
        return self

    def _kohya_checks(self) -> list[str]:
        """What sd-scripts itself rejects (found by tests/engines/real against the real engine): one sentence + the fix."""
        import ast

        problems = []
        for item in self.optimizer_args:   # train_util.get_optimizer: key, value = arg.split("="); ast.literal_eval(value)
            value = item.partition("=")[2]
            try:
                if "=" in value:
                    raise ValueError
                ast.literal_eval(value)
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                problems.append(f"The optimizer argument '{item}' is not one key=value with a Python literal value. "
                                "Write numbers, True/False, quoted strings or tuples, e.g. betas=(0.9,0.99) or weight_decay=0.01.")
        opt = self.optimizer_type.lower()
        relative = opt == "adafactor" and not any(a.replace(" ", "").lower() == "relative_step=false" for a in self.optimizer_args)
        if self.lr_scheduler == "adafactor" and not relative:
            problems.append("The adafactor schedule works only with the Adafactor optimizer and its relative_step. "
                            "Choose another schedule, or the Adafactor optimizer without relative_step=False.")
        if relative and self.lr_warmup_steps:
            problems.append("Adafactor with relative_step (its default) uses its own schedule, which takes no warm-up. "
                            "Set warm-up to 0, or add the optimizer argument relative_step=False.")
        sched_args = self.engine_options.get("lr_scheduler_args")
        sched_args = [str(a) for a in sched_args] if isinstance(sched_args, list) else []
        if self.lr_scheduler == "piecewise_constant" and not any(a.startswith("step_rules=") for a in sched_args):
            problems.append("The piecewise_constant schedule needs its step rules. "
                            "Set engine_options lr_scheduler_args to [\"step_rules='1:100,0.5:200,0.1'\"], or choose another schedule.")
        if (self.lr_scheduler == "cosine_with_min_lr" and "lr_scheduler_min_lr_ratio" not in self.engine_options
                and not any(a.startswith(("min_lr=", "min_lr_rate=")) for a in sched_args)):
            problems.append("The cosine_with_min_lr schedule needs its minimum. "
                            "Set engine_options lr_scheduler_min_lr_ratio (e.g. 0.1 for a tenth of the learning rate), or choose cosine.")
        if (self.lr_scheduler == "polynomial" and not relative and self.learning_rate <= 1e-7
                and not any(a.startswith("lr_end=") for a in sched_args)):   # transformers' get_polynomial_decay_schedule_with_warmup
            problems.append("The polynomial schedule decays to 1e-7, so it needs a learning rate above that. "
                            "Raise the learning rate, or set engine_options lr_scheduler_args to [\"lr_end=1e-9\"].")
        if self.sample_prompts and (self.sample_every_n_epochs or self.sample_every_n_steps) and self.sample_sampler not in KOHYA_SAMPLERS:
            problems.append(f"'{self.sample_sampler}' is not a sampler sd-scripts knows. Use one of {', '.join(KOHYA_SAMPLERS)} (euler_a is the usual one).")
        if self.clip_skip is not None and self.model_family != "sd15":
            problems.append(f"clip_skip is for SD 1.x only; sd-scripts warns that it gives unexpected results with {FAMILIES[self.model_family]}. "
                            "Leave clip_skip empty.")
        return problems

    # -- construction with our errors --------------------------------------------
    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as e:
            raise config_error(e) from None

    def __setattr__(self, name: str, value: Any) -> None:
        try:
            super().__setattr__(name, value)
        except ValidationError as e:
            raise config_error(e) from None

    # -- helpers ------------------------------------------------------------------
    @property
    def resolution_wh(self) -> tuple[int, int]:
        sides = [int(s) for s in self.resolution.split(",")]
        return (sides[0], sides[-1])

    @classmethod
    def check(cls, data: dict[str, Any]) -> dict[str, str]:
        """Validate ``data`` without raising: ``{field: message}`` ('' for checks across fields); {} if valid.

        >>> TrainingConfig.check({"network_dim": 0})["network_dim"]
        'Input should be greater than or equal to 1'
        """
        try:
            cls(**data)
            return {}
        except ConfigError as e:
            return dict(getattr(e, "fields", {"": str(e)}))

    @classmethod
    def ui_schema(cls) -> dict[str, Any]:
        """JSON schema with per-field ``section``, ``label``, ``families`` for form generation (expert fields left out)."""
        schema = cls.model_json_schema()
        schema["properties"] = {k: v for k, v in schema["properties"].items() if v.get("section") != "expert"}
        return schema

    @classmethod
    def from_kohya_toml(cls, path: str | Path, **overrides: Any) -> "TrainingConfig":
        from .kohya_import import from_kohya_toml

        return from_kohya_toml(cls, path, **overrides)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def field_messages(e: ValidationError) -> dict[str, str]:
    """``{field: "message a person understands"}`` from a pydantic error."""
    out: dict[str, str] = {}
    errors = e.errors()
    # `dataset` is a name or a list of subsets: report the branch the value took (dataset.0.num_repeats)
    subset_errors = any("list[Subset]" in [str(x) for x in err.get("loc", ())] for err in errors)
    for err in errors:
        parts = [str(x) for x in err.get("loc", ())]
        if parts[:2] == ["dataset", "str"] and subset_errors:
            continue
        loc = ".".join(p for p in parts if p not in ("list[Subset]", "str") or parts[:1] != ["dataset"])
        msg = str(err.get("msg", ""))
        msg = re.sub(r"^(Value error|Assertion failed), ", "", msg)
        if "__cross__" in msg:
            out[""] = msg.split("__cross__", 1)[1]
            continue
        if err.get("type") == "extra_forbidden":
            msg = "is not a setting lora-nb knows (check the spelling)"
        out.setdefault(loc or "", msg[:1].upper() + msg[1:] if msg else "Invalid value")
    return out


def config_error(e: ValidationError) -> ConfigError:
    msgs = field_messages(e)
    cross = msgs[""].split(" | ") if "" in msgs else []
    if cross:
        msgs[""] = " ".join(cross)
    if len(cross) == 1 and len(msgs) == 1:
        first, _, rest = cross[0].partition(". ")
        return _with_fields(ConfigError(first.rstrip(".") + ".", fix=rest or "Change that setting and try again."), msgs)
    parts = [f"{k}: {v.rstrip('.')}" for k, v in msgs.items() if k] + [c.rstrip(".") for c in cross]
    err = ConfigError("Invalid training settings: " + "; ".join(parts) + ".", fix="Correct the fields named and try again.")
    return _with_fields(err, msgs)


def _with_fields(err: ConfigError, msgs: dict[str, str]) -> ConfigError:
    err.fields = msgs  # type: ignore[attr-defined]
    return err
