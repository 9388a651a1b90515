"""``lora-nb models``: list local models, show the starter list, download from Hugging Face or Civitai.

    $ lora-nb models list
    $ lora-nb models starters sdxl
    $ lora-nb models download hf:stabilityai/stable-diffusion-xl-base-1.0/sd_xl_base_1.0.safetensors
    $ lora-nb models download "https://civitai.com/models/4201?modelVersionId=130072"
"""
from __future__ import annotations

import argparse
from typing import Any
from . import open_workspace as _ws

__all__ = ["register"]




def cmd_list(args: argparse.Namespace) -> int:
    entries = _ws(args).models.list()
    if not entries:
        print("no models yet (lora-nb models starters, then lora-nb models download ...)")
    for e in entries:
        print(f"{e.family:<7} {e.kind:<12} {e.size / 2**30:7.2f} GiB  {e.path}")
    return 0


def cmd_starters(args: argparse.Namespace) -> int:
    from ..models.starters import STARTERS

    for family, items in STARTERS.items():
        if args.family and family != args.family:
            continue
        print(f"[{family}]")
        for s in items:
            print(f"  {s.name:<36} {s.size:>8}  {s.source}{'  (gated: accept the licence, set HF_TOKEN)' if s.gated else ''}")
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    job = _ws(args).models.download(args.source, filename=args.filename, subfolder=args.subfolder, sha256=args.sha256)
    print(f"download job {job.id}")
    if args.no_follow:
        return 0
    from .jobs import follow_log

    return follow_log(job)


def register(sub: Any) -> None:
    p = sub.add_parser("models", help="local base models, starters, downloads (Hugging Face, Civitai)")
    s = p.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    q = s.add_parser("list", help="models in <workspace>/models with kind and family")
    q.set_defaults(func=cmd_list)
    q = s.add_parser("starters", help="known-good base models per family")
    q.add_argument("family", nargs="?", choices=["sd15", "sd2", "sdxl", "flux", "sd3"])
    q.set_defaults(func=cmd_starters)
    q = s.add_parser("download", help="download as a job (resumable; Civitai SHA256 checked)")
    q.add_argument("source", help="hf:owner/repo/file, civitai:<model id>, civitai:v<version id>, or a link")
    q.add_argument("--filename", default=None)
    q.add_argument("--subfolder", default=None, help="inside models/, e.g. vae")
    q.add_argument("--sha256", default=None)
    q.add_argument("--no-follow", action="store_true")
    q.set_defaults(func=cmd_download)
