"""Known training failures: a line of engine output -> one sentence with the fix.

>>> match_hint("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB")[0]
'cuda_oom'
"""
from __future__ import annotations

import re

__all__ = ["HINTS", "match_hint"]

HINTS: list[tuple[str, re.Pattern[str], str]] = [
    ("cuda_oom", re.compile(r"CUDA out of memory|OutOfMemoryError|CUBLAS_STATUS_ALLOC_FAILED"),
     "The GPU ran out of memory. Lower the batch size or resolution, turn on gradient checkpointing, "
     "cache latents and text encoder outputs, or pick the preset for a smaller GPU (fp8 base, blocks to swap)."),
    ("no_data", re.compile(r"No data found\. Please verify"),
     "The trainer found no images. Check that the dataset has images and that its folders follow the N_name convention."),
    ("missing_model", re.compile(r"is neither a valid local path|neither a valid local|No such file or directory: .*\.(safetensors|ckpt)|"
                                 r"Error no file named .* found in directory"),
     "The base model file was not found. Check the base model path (download one from the Models tab)."),
    ("bitsandbytes", re.compile(r"No bitsandbytes|No module named 'bitsandbytes'|bitsandbytes.*(not|n't) (be )?(installed|compiled)"),
     "bitsandbytes is not installed in the engine's environment. Install it there (pip install bitsandbytes) or use the AdamW or Adafactor optimizer."),
    ("xformers", re.compile(r"No module named 'xformers'|xformers is not installed|Could not import xformers"),
     "xformers is not installed in the engine's environment. Turn xformers off (use SDPA) or install it there."),
    ("optimizer_pkg", re.compile(r"No (lion_pytorch|dadaptation|Prodigy|schedulefree) /"),
     "The optimizer's package is not installed in the engine's environment. Install it there or choose AdamW."),
    ("nan_loss", re.compile(r"avr_loss=nan|loss[=: ]+nan\b|NaN detected|loss is nan", re.I),
     "The loss became NaN. Lower the learning rate, use bf16 instead of fp16, or check the dataset for broken images."),
    ("dataset_toml", re.compile(r"Invalid user config|voluptuous\.error"),
     "The dataset config was rejected by sd-scripts. This is a lora-nb bug if the config was generated: please report it with the run's dataset.toml."),
    ("cuda_missing", re.compile(r"Torch not compiled with CUDA enabled|no CUDA GPUs are available|CUDA driver version is insufficient"),
     "No usable CUDA GPU was found. Check nvidia-smi and that the engine's torch is a CUDA build."),
    ("disk_full", re.compile(r"No space left on device"),
     "The disk is full. Free space in the workspace (old runs, caches) and try again."),
]


def match_hint(line: str) -> tuple[str, str] | None:
    """(code, sentence) for the first known failure in ``line``, or None."""
    if len(line) < 8:
        return None
    for code, pattern, text in HINTS:
        if pattern.search(line):
            return code, text
    return None
