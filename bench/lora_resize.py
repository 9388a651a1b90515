"""Benchmark: resize a rank-128 SDXL-size LoRA to rank 32, lora-nb's factor SVD against a plain per-layer
full SVD (what kohya's resize_lora.py does), in the same run, on the same modules.

    .venv/bin/python bench/lora_resize.py             # 20 modules, a stratified sample (about 1 minute on 2 idle cores)
    .venv/bin/python bench/lora_resize.py --sample 32 # 26 modules (1 in 32 of each shape)
    .venv/bin/python bench/lora_resize.py --quick     # one module of each of the 8 shapes (about 20 s)
    .venv/bin/python bench/lora_resize.py --full      # all 722 modules (the baseline then takes many minutes)

The LoRA has SDXL's U-Net attention/feed-forward module names and shapes (640- and 1280-wide transformer
blocks, cross-attention from 2048, GEGLU 10240/5120 feed-forward), random weights, rank 128, alpha 64.
The default sample takes every shape in proportion to its share of the 722 modules (1 in 48, rounded
up, so at least one of each), so the ratio stands for the whole LoRA. Baseline per module: merge up @ down in float32
and run torch.linalg.svd on it with full_matrices=False (kohya calls it with the default
full_matrices=True, which is slower still, so the ratio is conservative), then truncate. lora-nb:
lora_nb.lora.resize on the same modules (read, Gram/Cholesky of the factors + a 128 x 128 SVD, write
the file). Both results are checked against each other (the products must agree).
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


def sample(mods: list[tuple[str, int, int]], per_shape: int | None, one_in: int = 48) -> list[tuple[str, int, int]]:
    """``per_shape`` modules of each (in, out) shape, or (None) 1 in ``one_in`` of each shape, at least one."""
    by_shape: dict[tuple[int, int], list[tuple[str, int, int]]] = {}
    for m in mods:
        by_shape.setdefault(m[1:], []).append(m)
    out = []
    for group in by_shape.values():
        n = per_shape or -(-len(group) // one_in)
        step = max(1, len(group) // n)
        out += group[::step][:n]
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--full", action="store_true", help="all 722 modules")
    ap.add_argument("--quick", action="store_true", help="one module of each shape")
    ap.add_argument("--sample", type=int, default=48, help="take 1 in N modules of each shape (default 48)")
    ap.add_argument("--rank", type=int, default=128)
    ap.add_argument("--new-rank", type=int, default=32)
    args = ap.parse_args()
    import torch
    from safetensors.numpy import save_file

    from lora_nb.lora import resize

    mods = sdxl_modules()
    if not args.full:
        mods = sample(mods, 1 if args.quick else None, args.sample)
    rng = np.random.default_rng(0)
    tensors = {}
    for name, fin, fout in mods:
        tensors[f"{name}.lora_down.weight"] = rng.normal(0, 0.02, (args.rank, fin)).astype(np.float16)
        tensors[f"{name}.lora_up.weight"] = rng.normal(0, 0.02, (fout, args.rank)).astype(np.float16)
        tensors[f"{name}.alpha"] = np.array(args.rank / 2, np.float16)
    tmp = Path(tempfile.mkdtemp(prefix="bench-resize-"))
    src = tmp / "sdxl_r128.safetensors"
    save_file(tensors, str(src), metadata={"ss_network_dim": str(args.rank), "ss_network_alpha": str(args.rank / 2)})
    label = " (all)" if args.full else (" (one per shape)" if args.quick else f" (stratified 1-in-{args.sample} sample)")
    print(f"{len(mods)} SDXL U-Net modules{label}, rank {args.rank} -> {args.new_rank}, "
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
            U, S, Vh = torch.linalg.svd(w, full_matrices=False)  # the full (thin) SVD of the merged weight
            k = args.new_rank
            best = (U[:, :k] * S[:k]) @ Vh[:k]
            mine = torch.from_numpy(f.get_tensor(f"{name}.lora_up.weight").astype(np.float32)) @ torch.from_numpy(
                f.get_tensor(f"{name}.lora_down.weight").astype(np.float32))
            worst = max(worst, float((best - mine).abs().max() / best.abs().max()))
    baseline = time.perf_counter() - t0
    print(f"plain per-layer full SVD (baseline): {baseline:8.2f} s")
    print(f"lora-nb factor SVD:                  {ours:8.2f} s   (mean Frobenius retention {report.mean_fro_retained:.1%})")
    print(f"ratio (speed-up): {baseline / ours:.1f}x   (goal >= 20x); largest difference between the two results: {worst:.1e} of the weight scale")
    return 0


if __name__ == "__main__":
    sys.exit(main())
