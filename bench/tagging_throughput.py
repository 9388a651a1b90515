"""Benchmark: end-to-end WD14 tagging throughput against the pure-inference ceiling, in the same run.

    .venv/bin/python bench/tagging_throughput.py            # ViT-B/16 at 448 px (WD14 vit-tagger size)
    .venv/bin/python bench/tagging_throughput.py --quick    # a 4-layer ViT, for a fast check

A ViT with the layout of SmilingWolf's wd-vit-tagger-v3 (patch 16, 448x448 NHWC input, 768 wide,
12 layers, ~10,000 sigmoid outputs) is built with random weights in torch and exported to ONNX;
onnxruntime runs it. The dataset is generated JPEGs of camera-like sizes (1536x1024 and 1024x1536),
so decoding and resizing cost what they cost in real use.

- ceiling: preprocessed tensors fed straight to the session, in the same batch size;
- end to end: lora_nb.tagging's Tagger over the image files (decode + pad + resize in worker
  threads, overlapped with inference), tag selection included.
Prints images/s for both and the ratio (goal >= 0.9).
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


def build_vit(folder: Path, depth: int, width: int, labels: int, size: int = 448) -> Path:
    import torch
    from torch import nn

    class ViT(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.patch = nn.Conv2d(3, width, 16, 16)
            self.pos = nn.Parameter(torch.randn(1, (size // 16) ** 2, width) * 0.02)
            layer = nn.TransformerEncoderLayer(width, width // 64, width * 4, batch_first=True, norm_first=True, dropout=0.0)
            self.blocks = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
            self.norm = nn.LayerNorm(width)
            self.head = nn.Linear(width, labels)

        def forward(self, x: torch.Tensor) -> torch.Tensor:      # x: N, H, W, 3 (BGR 0-255), as WD14
            x = (x / 127.5 - 1.0).permute(0, 3, 1, 2)
            x = self.patch(x).flatten(2).transpose(1, 2) + self.pos
            x = self.norm(self.blocks(x)).mean(dim=1)
            return torch.sigmoid(self.head(x))

    torch.manual_seed(0)
    model = ViT().eval()
    folder.mkdir(parents=True, exist_ok=True)
    dummy = torch.zeros(1, size, size, 3)
    import warnings

    warnings.filterwarnings("ignore", category=DeprecationWarning)   # the TorchScript exporter's notice
    torch.onnx.export(model, (dummy,), str(folder / "model.onnx"), input_names=["input"], output_names=["predictions_sigmoid"],
                      dynamic_axes={"input": {0: "batch"}, "predictions_sigmoid": {0: "batch"}}, opset_version=17, dynamo=False)
    rows = ["tag_id,name,category,count"] + [f"{i},{r},9,1" for i, r in enumerate(["general", "sensitive", "questionable", "explicit"])]
    rows += [f"{10 + i},tag_{i},0,1" for i in range(labels - 4 - 100)] + [f"{90000 + i},char_{i},4,1" for i in range(100)]
    (folder / "selected_tags.csv").write_text("\n".join(rows) + "\n")
    return folder


def make_images(folder: Path, n: int) -> list[Path]:
    from PIL import Image

    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    base = rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)
    for i in range(n):
        w, h = (1536, 1024) if i % 2 == 0 else (1024, 1536)
        img = Image.fromarray(np.roll(base, i, axis=1)).resize((w, h), Image.Resampling.BICUBIC)
        p = folder / f"{i:04d}.jpg"
        img.save(p, quality=92)
        out.append(p)
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="4 layers instead of 12")
    ap.add_argument("--images", type=int, default=None)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2, help="interleaved ceiling/end-to-end pairs (the ratio is their median)")
    args = ap.parse_args()
    depth = 4 if args.quick else 12
    n = args.images or (24 if args.quick else 16)
    from lora_nb.tagging.options import TagOptions
    from lora_nb.tagging.pipeline import Tagger
    from lora_nb.tagging.preprocess import load_and_preprocess

    tmp = Path(tempfile.mkdtemp(prefix="bench-tag-"))
    t0 = time.perf_counter()
    model = build_vit(tmp / "model", depth=depth, width=768, labels=10_861)
    paths = make_images(tmp / "images", n)
    print(f"ViT-B/16 448px, {depth} layers, 10,861 labels; {n} JPEGs 1536x1024; batch {args.batch}, {args.workers} decode workers "
          f"(set-up {time.perf_counter() - t0:.0f} s)")
    tagger = Tagger(model, TagOptions(batch_size=args.batch, workers=args.workers))
    print(f"providers: {tagger.session.providers}")
    tensors = np.stack([load_and_preprocess(p, 448) for p in paths])
    tagger.session.run(tensors[: args.batch])                     # warm-up (allocations, kernel choice)

    def ceiling() -> float:
        t = time.perf_counter()
        for i in range(0, n, args.batch):
            tagger.session.run(tensors[i:i + args.batch])
        return n / (time.perf_counter() - t)

    def end_to_end() -> float:
        t = time.perf_counter()
        results = list(tagger.run(paths))
        assert len(results) == n and not any(r.error for r in results)
        return n / (time.perf_counter() - t)

    rounds = [(ceiling(), end_to_end()) for _ in range(args.rounds)]   # interleaved pairs: drift hits both alike
    for i, (c, e) in enumerate(rounds, 1):
        print(f"  round {i}: ceiling {c:.2f}, end to end {e:.2f} images/s, ratio {e / c:.3f}")
    c = float(np.median([r[0] for r in rounds]))
    e = float(np.median([r[1] for r in rounds]))
    ratio = float(np.median([r[1] / r[0] for r in rounds]))
    print(f"pure inference (ceiling): {c:6.2f} images/s")
    print(f"end to end (files -> tags): {e:6.2f} images/s")
    print(f"ratio end-to-end / ceiling (median of the pairs): {ratio:.3f}   (goal >= 0.9)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
