"""Known training failures: a line of engine output -> one sentence with the fix.

>>> match_hint("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB")[0]
'cuda_oom'
"""
from __future__ import annotations

import re

__all__ = ["HINTS", "match_hint", "match_root_cause"]

WRONG_FAMILY = ("The base model does not look like a checkpoint of the chosen model family. Pick the family that matches "
                "the file (the Models tab detects it), or choose a base model of this family.")

HINTS: list[tuple[str, re.Pattern[str], str]] = [
    ("cuda_oom", re.compile(r"CUDA out of memory|OutOfMemoryError|CUBLAS_STATUS_ALLOC_FAILED"),
     "The GPU ran out of memory. Lower the batch size or resolution, turn on gradient checkpointing, "
     "cache latents and text encoder outputs, or pick the preset for a smaller GPU (fp8 base, blocks to swap)."),
    # accelerate's re-raise when its child died of SIGKILL: on a training box that is the kernel's OOM killer
    ("ram_oom", re.compile(r"died with <Signals\.SIGKILL: 9>"),
     "The training process was killed (SIGKILL), which is what the system does when it runs out of RAM. Lower the batch "
     "size or resolution, keep latents cached to disk, use fewer data loader workers, or use a machine with more RAM."),
    ("no_data", re.compile(r"No data found\. Please verify"),
     "The trainer found no images. Check that the dataset has images and that its folders follow the N_name convention."),
    ("missing_model", re.compile(r"is neither a valid local path|neither a valid local|No such file or directory: .*\.(safetensors|ckpt)|"
                                 r"Error no file named .* found in directory"),
     "The base model file was not found. Check the base model path (download one from the Models tab)."),
    # real sd-scripts output for a checkpoint of another family (tests/fixtures/kohya/captures/wrong_family_*)
    ("wrong_family", re.compile(r"KeyError: '(time_embed|input_blocks|middle_block|out)\.\d"),
     WRONG_FAMILY),
    ("persistent_workers", re.compile(r"persistent_workers option needs num_workers > 0"),
     "Data loader workers is 0 while 'Keep loader workers' (persistent_data_loader_workers) is on. Turn 'Keep loader "
     "workers' off, or use 1 or more data loader workers."),
    ("bitsandbytes", re.compile(r"No bitsandbytes|No module named 'bitsandbytes'|bitsandbytes.*(not|n't) (be )?(installed|compiled)"),
     "bitsandbytes is not installed in the engine's environment. Install it there (pip install bitsandbytes) or use the AdamW or Adafactor optimizer."),
    ("xformers", re.compile(r"No module named 'xformers'|No xformers /|xformers is not installed|Could not import xformers"),
     "xformers is not installed in the engine's environment. Turn xformers off (use SDPA) or install it there."),
    ("lycoris", re.compile(r"No module named 'lycoris'"),
     "LyCORIS network types (locon, loha, lokr, ia3, dylora, full) need the lycoris package in the engine's environment. "
     "Install it there (pip install lycoris-lora) or use network type lora."),
    ("optimizer_pkg", re.compile(r"No (lion_pytorch|dadaptation|Prodigy|schedulefree) /"),
     "The optimizer's package is not installed in the engine's environment. Install it there or choose AdamW."),
    ("nan_loss", re.compile(r"avr_loss=nan|loss[=: ]+nan\b|NaN detected|loss is nan", re.I),
     "The loss became NaN. Lower the learning rate, use bf16 instead of fp16, or check the dataset for broken images."),
    ("dataset_toml", re.compile(r"Invalid user config|voluptuous\.error"),
     "The dataset config was rejected by sd-scripts. This is a lora-nb bug if the config was generated: please report it with the run's dataset.toml."),
    # the script's argparse, its TOML reader or a value of the wrong type (tests/fixtures/kohya/captures, run4_*)
    ("bad_option", re.compile(r"\.py: error: (unrecognized arguments|argument --)|TomlDecodeError|object has no attribute 'split'|"
                              r"must be tuple of ints, but found element of type str|unsupported operand type\(s\)|"
                              r"could not convert string to float|invalid literal for int\(\)|is not a valid SchedulerType|"
                              r"malformed node or string|does not require `num_warmup_steps`"),
     "sd-scripts rejected an option value (an unknown option, a wrong type or a malformed TOML). If it came from "
     "engine_options or an imported TOML, write it as sd-scripts expects (numbers and true/false unquoted); if lora-nb "
     "rendered it, please report it with the run's train.toml."),
    ("cuda_missing", re.compile(r"Torch not compiled with CUDA enabled|no CUDA GPUs are available|CUDA driver version is insufficient"),
     "No usable CUDA GPU was found. Check nvidia-smi and that the engine's torch is a CUDA build."),
    # accelerate's MULTI_CPU path wraps every prepared model in DDP, also sd-scripts' frozen U-Net (its MULTI_GPU path
    # skips models without trainable parameters): several processes train only on CUDA GPUs (docs/engines.md)
    ("multi_process_cpu", re.compile(r"DistributedDataParallel is not needed when a module doesn't have any parameter"),
     "Several training processes ran without a CUDA GPU; sd-scripts can train with several processes only on CUDA GPUs "
     "(on CPU accelerate refuses its frozen U-Net). Set num_processes to 1, or run on a machine with that many GPUs."),
    ("disk_full", re.compile(r"No space left on device"),
     "The disk is full. Free space in the workspace (old runs, caches) and try again."),
]


# the model loaders of sd-scripts: an error raised inside one of them, while it reads the checkpoint, means the file
# is not of the family the script trains (real output: tests/fixtures/kohya/captures/wrong_family_*)
_LOADERS = {("sdxl_train_util.py", "_load_target_model"), ("model_util.py", "convert_ldm_unet_checkpoint"),
            ("model_util.py", "convert_ldm_vae_checkpoint"), ("model_util.py", "convert_ldm_clip_checkpoint_v1"),
            ("model_util.py", "convert_ldm_clip_checkpoint_v2"), ("sdxl_model_util.py", "load_models_from_sdxl_checkpoint"),
            ("flux_utils.py", "load_flow_model"), ("sd3_utils.py", "load_mmdit")}


def match_root_cause(cause: str, where: tuple[str, str] | None) -> tuple[str, str] | None:
    """(code, sentence) for the engine's root exception, knowing the function it was raised in, or None."""
    hint = match_hint(cause)
    if hint:
        return hint
    if where in _LOADERS and re.match(r"(KeyError|AttributeError|RuntimeError|ValueError|TypeError|IndexError)\b", cause):
        return "wrong_family", WRONG_FAMILY
    return None


def match_hint(line: str) -> tuple[str, str] | None:
    """(code, sentence) for the first known failure in ``line``, or None."""
    if len(line) < 8:
        return None
    for code, pattern, text in HINTS:
        if pattern.search(line):
            return code, text
    return None
