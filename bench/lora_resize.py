"""Benchmark: resize a rank-128 SDXL-size LoRA to rank 32, lora-nb's factor SVD against a plain per-layer
full SVD (what kohya's resize_lora.py does), in the same run.

    .venv/bin/python bench/lora_resize.py             # a representative sixth of SDXL's U-Net LoRA modules
    .venv/bin/python bench/lora_resize.py --full      # all 722 modules (the baseline then takes many minutes)

The LoRA has SDXL's U-Net attention/feed-forward module names and shapes (640- and 1280-wide transformer
blocks, cross-attention from 2048, GEGLU 10240/5120 feed-forward), random weights, rank 128, alpha 64.
Baseline per module: merge up @ down in float32 and run torch.linalg.svd on it (kohya's method), then
truncate. lora-nb: lora_nb.lora.resize (thin QR of both factors + a 128 x 128 SVD). Both outputs are
checked against each other (the products must agree).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def sdxl_modules() -> list[tuple[str, int, int]]:
    """(kohya module name, in features, out features) of an SDXL U-Net LoRA (networks.lora, linear layers)."""
    mods = []
    layout = [("input_blocks_4_1", 640, 2), ("input_blocks_5_1", 640, 2), ("input_blocks_7_1", 1280, 10), ("input_blocks_8_1", 1280, 10),
              ("middle_block_1", 1280, 10), ("output_blocks_0_1", 1280, 10), ("output_blocks_1_1", 1280, 10), ("output_blocks_2_1", 1280, 10),
              ("output_blocks_3_1", 640, 2), ("output_blocks_4_1", 640, 2), ("output_blocks_5_1", 640, 2)]
    for block, dim, depth in layout:
        base = f"lora_unet_{block}"
        mods += [(f"{base}_proj_in", dim, dim), (f"{base}_proj_out", dim, dim)]
        for t in range(depth):
            tb = f"{base}_transformer_blocks_{t}"
            mods += [(f"{tb}_attn1_to_q", dim, dim), (f"{tb}_attn1_to_k", dim, dim), (f"{tb}_attn1_to_v", dim, dim),
                     (f"{tb}_attn1_to_out_0", dim, dim), (f"{tb}_attn2_to_q", dim, dim), (f"{tb}_attn2_to_k", 2048, dim),
                     (f"{tb}_attn2_to_v", 2048, dim), (f"{tb}_attn2_to_out_0", dim, dim), (f"{tb}_ff_net_0_proj", dim, dim * 8),
                     (f"{tb}_ff_net_2", dim * 4, dim)]
    return mods


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--full", action="store_true")
    ap.add_argument("--rank", type=int, default=128)
    ap.add_argument("--new-rank", type=int, default=32)
    args = ap.parse_args()
    import torch
    from safetensors.numpy import save_file

    from lora_nb.lora import resize

    mods = sdxl_modules()
    if not args.full:
        mods = mods[::6]
    rng = np.random.default_rng(0)
    tensors = {}
    for name, fin, fout in mods:
        tensors[f"{name}.lora_down.weight"] = rng.normal(0, 0.02, (args.rank, fin)).astype(np.float16)
        tensors[f"{name}.lora_up.weight"] = rng.normal(0, 0.02, (fout, args.rank)).astype(np.float16)
        tensors[f"{name}.alpha"] = np.array(args.rank / 2, np.float16)
    tmp = Path(tempfile.mkdtemp(prefix="bench-resize-"))
    src = tmp / "sdxl_r128.safetensors"
    save_file(tensors, str(src), metadata={"ss_network_dim": str(args.rank), "ss_network_alpha": str(args.rank / 2)})
    print(f"{len(mods)} SDXL U-Net modules{' (all)' if args.full else ' (every sixth)'}, rank {args.rank} -> {args.new_rank}, "
          f"{src.stat().st_size / 2**20:.0f} MiB; torch {torch.__version__}, {torch.get_num_threads()} threads")

    t0 = time.perf_counter()
    report = resize(src, tmp / "ours.safetensors", rank=args.new_rank, device="cpu")
    ours = time.perf_counter() - t0

    t0 = time.perf_counter()
    worst = 0.0
    from safetensors import safe_open

    with safe_open(str(tmp / "ours.safetensors"), "np") as f:
        for name, _, _ in mods:
            down = torch.from_numpy(tensors[f"{name}.lora_down.weight"].astype(np.float32))
            up = torch.from_numpy(tensors[f"{name}.lora_up.weight"].astype(np.float32))
            w = up @ down
            U, S, Vh = torch.linalg.svd(w)                       # the full SVD of the merged weight
            k = args.new_rank
            best = (U[:, :k] * S[:k]) @ Vh[:k]
            mine = torch.from_numpy(f.get_tensor(f"{name}.lora_up.weight").astype(np.float32)) @ torch.from_numpy(
                f.get_tensor(f"{name}.lora_down.weight").astype(np.float32))
            worst = max(worst, float((best - mine).abs().max() / best.abs().max()))
    baseline = time.perf_counter() - t0
    print(f"plain per-layer full SVD (baseline): {baseline:8.2f} s")
    print(f"lora-nb factor SVD:                  {ours:8.2f} s   (mean Frobenius retention {report.mean_fro_retained:.1%})")
    print(f"speed-up: {baseline / ours:.1f}x   (goal >= 20x); largest difference between the two results: {worst:.1e} of the weight scale")
    return 0


if __name__ == "__main__":
    sys.exit(main())
