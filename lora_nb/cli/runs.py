"""``lora-nb runs``: the history of training runs, and 2-4 runs compared.

    $ lora-nb runs list --sort loss --asc --search alice
    $ lora-nb runs list --status succeeded --json
    $ lora-nb runs compare 20261202-120000-ab12 20261202-130000-cd34 --svg loss.svg
"""
from __future__ import annotations

import argparse
import json
from typing import Any

from ..jobs.history import SORT_KEYS
from . import open_workspace as _ws

__all__ = ["register"]


def _loss(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def cmd_list(args: argparse.Namespace) -> int:
    rows = _ws(args).runs.history(search=" ".join(args.search or []), status=args.status or None, family=args.family,
                                  engine=args.engine, sort=args.sort, descending=not args.asc)
    if args.json:
        print(json.dumps([r.as_dict() for r in rows], indent=1))
        return 0
    if not rows:
        print("no training runs")
        return 0
    print(f"{'ID':<22} {'NAME':<18} {'STATUS':<10} {'FAMILY':<8} {'ENGINE':<11} {'STEPS':>11} {'LOSS':>8} {'TIME':>8} LORAS")
    for r in rows:
        steps = "-" if r.steps is None else (f"{r.steps}/{r.total_steps}" if r.total_steps else str(r.steps))
        print(f"{r.id:<22} {r.name[:18]:<18} {r.status:<10} {r.family:<8} {r.engine:<11} {steps:>11} {_loss(r.final_loss):>8} "
              f"{r.duration_text:>8} {len(r.loras)}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    cmp = _ws(args).runs.compare(args.ids, smoothing=args.smoothing)
    if args.svg:
        with open(args.svg, "w", encoding="utf-8") as f:
            f.write(cmp.loss_svg())
    if args.json:
        print(json.dumps({"runs": [r.as_dict() for r in cmp.runs], "config_diff": cmp.config_diff,
                          "losses": cmp.losses, "samples": {str(k): v for k, v in cmp.samples.items()}}, indent=1, default=str))
        return 0
    for r in cmp.runs:
        print(f"{r.id}  {r.name}  {r.status}  steps {r.steps}  loss {_loss(r.final_loss)}  {r.duration_text}")
    print()
    if cmp.config_diff:
        print("options that differ:")
        for key, values in cmp.config_diff.items():
            print(f"  {key}: " + "  |  ".join(f"{json.dumps(v, default=str)}" for v in values.values()))
    else:
        print("the runs' configs are the same")
    steps = cmp.common_sample_steps
    print("samples at the same steps: " + (", ".join(map(str, steps)) if steps else "none"))
    if args.svg:
        print(f"loss curves written to {args.svg}")
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("runs", help="training run history and comparison")
    rsub = p.add_subparsers(dest="runs_command", metavar="ACTION", required=True)

    q = rsub.add_parser("list", help="every training run, newest first")
    q.add_argument("search", nargs="*", help="words that must all match id, name, family, engine, dataset or LoRA")
    q.add_argument("--status", action="append", choices=["queued", "starting", "running", "succeeded", "failed", "stopped"])
    q.add_argument("--family")
    q.add_argument("--engine")
    q.add_argument("--sort", choices=SORT_KEYS, default="created")
    q.add_argument("--asc", action="store_true", help="ascending order")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_list)

    q = rsub.add_parser("compare", help="2-4 runs: options that differ, samples at the same steps, loss curves")
    q.add_argument("ids", nargs="+")
    q.add_argument("--smoothing", type=float, default=0.6)
    q.add_argument("--svg", help="write the overlaid loss curves to this SVG file")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_compare)
