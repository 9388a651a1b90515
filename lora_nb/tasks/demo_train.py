"""Task: the CPU stand-in "training" run of the demo (``lora_nb.demo.submit_demo_run``).

It is not training. It reports steps, epochs and a falling loss like a trainer, writes one
checkpoint per epoch and a final LoRA: real safetensors files with kohya key names (a few SD 1.5
attention layers, linear and one 3x3 conv), ``.alpha`` tensors and ``ss_*`` metadata taken from the
dataset (tag frequencies, image count, resolution), with random weights. The metadata says it is
a demo stand-in. Stop works (SIGTERM): it ends after the current step.
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

from .progress_reporter import Reporter, StopFlag, load_params

# (kohya module name, in features, out features, conv kernel or None)
_MODULES = [
    ("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q", 320, 320, None),
    ("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_k", 320, 320, None),
    ("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k", 768, 320, None),
    ("lora_unet_mid_block_attentions_0_transformer_blocks_0_ff_net_2", 5120, 1280, None),
    ("lora_unet_down_blocks_0_resnets_0_conv1", 320, 320, 3),
    ("lora_te_text_model_encoder_layers_0_self_attn_q_proj", 768, 768, None),
]



def lora_tensors(dim: int, alpha: float, seed: int) -> dict[str, Any]:
    import numpy as np

    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {}
    for name, fin, fout, k in _MODULES:
        if k:
            down = rng.normal(0, 0.02, (dim, fin, k, k)).astype(np.float16)
            up = rng.normal(0, 0.02, (fout, dim, 1, 1)).astype(np.float16)
        else:
            down = rng.normal(0, 0.02, (dim, fin)).astype(np.float16)
            up = rng.normal(0, 0.02, (fout, dim)).astype(np.float16)
        out[f"{name}.lora_down.weight"] = down
        out[f"{name}.lora_up.weight"] = up
        out[f"{name}.alpha"] = np.array(alpha, dtype=np.float16)
    return out


def save_lora(path: Path, dim: int, alpha: float, seed: int, metadata: dict[str, str]) -> None:
    from safetensors.numpy import save_file

    tmp = path.with_name(path.name + ".tmp")
    save_file(lora_tensors(dim, alpha, seed), str(tmp), metadata=metadata)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    from ..workspace import Workspace

    stop = StopFlag()
    p = load_params(argv)
    ws = Workspace(p["workspace"])
    ds = ws.datasets.get(p["dataset"])
    run_dir = Path(os.environ.get("LORA_NB_RUN_DIR") or Path(argv[0] if argv else sys.argv[1]).parent)
    out = run_dir / "output"
    out.mkdir(exist_ok=True)
    epochs, per_epoch, dim = int(p["epochs"]), int(p["steps_per_epoch"]), int(p["network_dim"])
    name, delay = str(p["output_name"]), float(p["seconds_per_step"])
    total = epochs * per_epoch
    images = ds.images()
    freq = {k: v for k, v in ds.captions.frequencies().most_common(200)}
    folder = images[0].path.parent.name if images else ds.name
    meta = {"ss_output_name": name, "ss_network_module": "networks.lora", "ss_network_dim": str(dim), "ss_network_alpha": str(dim / 2),
            "ss_base_model_version": "sd_v1", "ss_num_train_images": str(len(images)), "ss_num_epochs": str(epochs),
            "ss_max_train_steps": str(total), "ss_resolution": "(512, 512)", "ss_learning_rate": "0.0001",
            "ss_tag_frequency": json.dumps({folder: freq}), "ss_dataset_dirs": json.dumps({folder: {"n_repeats": 1, "img_count": len(images)}}),
            "ss_training_comment": "lora-nb demo stand-in: random weights, not a trained model",
            "modelspec.title": name, "modelspec.architecture": "stable-diffusion-v1/lora"}
    rep = Reporter(total=total, unit="it")
    rep.message("demo stand-in run: this is not training (no GPU needed); it writes a LoRA with random weights")
    step = 0
    for epoch in range(1, epochs + 1):
        rep.progress(step, epoch=epoch, total_epochs=epochs, phase="training")
        for _ in range(per_epoch):
            if stop:
                rep.message("stopped by request", "warning")
                return 143
            time.sleep(delay)
            step += 1
            loss = 0.12 + 0.08 * math.exp(-step / max(total / 3, 1)) + 0.01 * math.sin(step)
            rep.progress(step, epoch=epoch, total_epochs=epochs, loss=round(loss, 4), lr=1e-4, phase="training")
        ckpt = out / (f"{name}-{epoch:06d}.safetensors" if epoch < epochs else f"{name}.safetensors")
        save_lora(ckpt, dim, dim / 2, seed=epoch, metadata=dict(meta, ss_epoch=str(epoch), ss_steps=str(step)))
        rep.artifact(str(ckpt), "lora" if epoch == epochs else "checkpoint")
    rep.progress(step, epoch=epochs, total_epochs=epochs, phase="done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
