"""``lora-nb lora``: list, inspect, verify, resize and publish LoRA files.

    $ lora-nb lora list
    $ lora-nb lora info runs/<id>/output/alice.safetensors
    $ lora-nb lora resize alice.safetensors --rank 16            # or --method sv_fro --param 0.9
    $ lora-nb lora publish alice.safetensors your-name/alice-lora --sample runs/<id>/output/sample/a.png
"""
from __future__ import annotations

import argparse
import json
from typing import Any
from . import open_workspace as _ws

__all__ = ["register"]




def cmd_list(args: argparse.Namespace) -> int:
    from ..lora import list_loras

    infos = list_loras(_ws(args))
    if not infos:
        print("no LoRAs in this workspace")
    for i in infos:
        print(f"{i.family:<6} {i.network:<7} rank {str(i.rank):>4} alpha {str(i.alpha):>6} {i.size / 2**20:8.1f} MiB  {i.path}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from ..lora import lora_info

    i = lora_info(args.path)
    if args.json:
        print(json.dumps({"path": str(i.path), "size": i.size, "modules": i.modules, "rank": i.rank, "ranks": i.ranks, "alpha": i.alpha,
                          "network": i.network, "family": i.family, "conv": i.conv, "dtype": i.dtype, "metadata": i.metadata}, indent=1))
        return 0
    print(f"{i.path.name}: {i.network}, {i.family}, {i.modules} modules, rank {i.rank} (all: {i.ranks}), alpha {i.alpha}, {i.dtype}, {i.size:,} bytes")
    if i.trigger_words:
        print("trigger words (most frequent tags):", ", ".join(i.trigger_words))
    for key in ("ss_output_name", "ss_base_model_version", "ss_resolution", "ss_num_train_images", "ss_num_epochs", "ss_max_train_steps",
                "ss_learning_rate", "ss_optimizer", "ss_training_comment", "training_info"):
        if key in i.metadata:
            print(f"  {key}: {i.metadata[key][:200]}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from ..lora import verify

    report = verify(args.path)
    print(report.summary())
    return 0 if report.ok else 2


def cmd_resize(args: argparse.Namespace) -> int:
    from ..lora import resize

    report = resize(args.path, args.out or args.path.replace(".safetensors", f"-r{args.rank}.safetensors"), rank=args.rank,
                    method=args.method, param=args.param, conv_rank=args.conv_rank, save_precision=args.precision,
                    overwrite=args.overwrite)
    if args.verbose:
        for layer in report.layers:
            print(layer.line())
    print(report.summary())
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    from ..lora import publish

    job = publish(args.path, args.repo, ws=_ws(args), private=not args.public, extra_files=args.extra or [], samples=args.sample or [])
    print(f"publish job {job.id}")
    from .jobs import follow_log

    return follow_log(job) if not args.no_follow else 0


def register(sub: Any) -> None:
    p = sub.add_parser("lora", help="list, inspect, verify, resize and publish LoRA files")
    s = p.add_subparsers(dest="lora_command", metavar="ACTION", required=True)
    q = s.add_parser("list", help="LoRAs in the workspace (loras/ and run outputs)")
    q.set_defaults(func=cmd_list)
    q = s.add_parser("info", help="rank, alpha, family and training metadata (reads the header only)")
    q.add_argument("path")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_info)
    q = s.add_parser("verify", help="check keys, shapes, NaN/inf and dtypes (exit 2 when broken)")
    q.add_argument("path")
    q.set_defaults(func=cmd_verify)
    q = s.add_parser("resize", help="reduce the rank with SVD (same result as kohya's resize_lora.py, much faster)")
    q.add_argument("path")
    q.add_argument("--out", default=None)
    q.add_argument("--rank", type=int, default=4, help="new rank (the maximum, with --method)")
    q.add_argument("--conv-rank", type=int, default=None)
    q.add_argument("--method", choices=["sv_ratio", "sv_fro", "sv_cumulative"], default=None)
    q.add_argument("--param", type=float, default=None)
    q.add_argument("--precision", choices=["fp16", "bf16", "float"], default="fp16")
    q.add_argument("--overwrite", action="store_true")
    q.add_argument("-v", "--verbose", action="store_true", help="per-layer retention")
    q.set_defaults(func=cmd_resize)
    q = s.add_parser("publish", help="upload to the Hugging Face Hub with a model card (token: HF_TOKEN or huggingface-cli login)")
    q.add_argument("path")
    q.add_argument("repo", help="your-name/model-name")
    q.add_argument("--public", action="store_true")
    q.add_argument("--extra", action="append", help="another file to upload (e.g. an epoch)")
    q.add_argument("--sample", action="append", help="a sample image for the model card")
    q.add_argument("--no-follow", action="store_true")
    q.set_defaults(func=cmd_publish)
