"""``lora-nb demo``: the whole flow on this machine, no GPU and no download needed.

    $ lora-nb demo                      # dataset 'demo' (or demo-2 ...), tagged, then the CPU stand-in run, followed
    $ lora-nb demo --name shapes --no-follow

Makes a dataset of generated shapes, tags it with a small local tagger (a job), then queues the CPU
stand-in of a training run (a job that reports steps, loss and checkpoints like a trainer and writes a
LoRA file with random weights: it shows the job system, not training). The same as *Try the demo* in
the dashboard.
"""
from __future__ import annotations

import argparse
from typing import Any

from . import open_workspace as _ws

__all__ = ["register"]


def cmd_demo(args: argparse.Namespace) -> int:
    from ..demo import start_demo
    from .jobs import follow_log

    ws = _ws(args)
    result = start_demo(ws, name=args.name, n=args.images, size=(args.size, args.size), epochs=args.epochs,
                        steps_per_epoch=args.steps_per_epoch, seconds_per_step=args.seconds_per_step,
                        say=lambda text: print(text, flush=True))
    run = result.run
    print(f"dataset '{result.dataset.name}': {len(result.dataset.images())} images in {result.dataset.path}")
    if args.no_follow:
        print(f"follow it with: lora-nb jobs logs -f {run.id}")
        return 0
    try:
        return follow_log(run)
    except KeyboardInterrupt:
        print(f"\nstopped following; the run goes on (lora-nb jobs stop {run.id} stops it)")
        return 130


def register(sub: Any) -> None:
    p = sub.add_parser("demo", help="try the whole flow here: a generated dataset, a tiny local tagger, a CPU stand-in run")
    p.add_argument("--name", default=None, help="dataset name (default: demo, or demo-2 ... when taken)")
    p.add_argument("--images", type=int, default=12, help="how many images to generate (default 12)")
    p.add_argument("--size", type=int, default=256, help="image size in pixels (default 256)")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--steps-per-epoch", type=int, default=10)
    p.add_argument("--seconds-per-step", type=float, default=0.2, help="how long each stand-in step takes (default 0.2)")
    p.add_argument("--no-follow", action="store_true", help="queue the run and return instead of printing it until it ends")
    p.set_defaults(func=cmd_demo)
