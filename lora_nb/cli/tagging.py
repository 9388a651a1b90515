"""``lora-nb tag``: tag a dataset with a WD14 tagger (a job), and list the known models.

    $ lora-nb tag mydata --model wd-vit-tagger-v3 --threshold 0.35 --trigger mylora --follow
    $ lora-nb tag --models
"""
from __future__ import annotations

import argparse
from typing import Any

__all__ = ["register"]


def cmd_tag(args: argparse.Namespace) -> int:
    from . import open_workspace

    if args.models:
        from ..tagging.registry import MODELS

        for m in MODELS.values():
            print(f"{m.name:<30} {m.generation}  {m.size:>7}  {m.repo_id}  {m.note}")
        return 0
    if not args.dataset:
        from ..errors import InvalidInput

        raise InvalidInput("Name the dataset to tag.", fix="lora-nb tag DATASET (lora-nb datasets list shows them).")
    ws = open_workspace(args)
    options: dict[str, Any] = {"general_threshold": args.threshold, "existing": args.existing, "batch_size": args.batch_size,
                               "remove_underscore": not args.keep_underscores, "rating": args.rating,
                               "character_tags_first": args.character_first, "recursive": not args.no_recursive}
    if args.character_threshold is not None:
        options["character_threshold"] = args.character_threshold
    if args.mcut:
        options["general_mcut"] = True
    for key, value in (("trigger_words", args.trigger), ("blacklist", args.blacklist), ("always_first_tags", args.first)):
        if value:
            options[key] = value
    job = ws.datasets.get(args.dataset).tag(model=args.model, **options)
    print(f"tagging job {job.id}")
    if not args.follow:
        return 0
    from .jobs import follow_log

    return follow_log(job)


def register(sub: Any) -> None:
    p = sub.add_parser("tag", help="auto-tag a dataset with a WD14 tagger (runs as a job)")
    p.add_argument("dataset", nargs="?")
    p.add_argument("--models", action="store_true", help="list the known tagger models")
    p.add_argument("--model", default="wd-vit-tagger-v3", help="registry name, Hub repo id, or a local folder")
    p.add_argument("--threshold", type=float, default=0.35, help="general tag threshold")
    p.add_argument("--character-threshold", type=float, default=None)
    p.add_argument("--mcut", action="store_true", help="automatic per-image threshold (MCut) for general tags")
    p.add_argument("--trigger", default="", help="comma-separated words written first in every caption")
    p.add_argument("--blacklist", default="", help="comma-separated tags never written")
    p.add_argument("--first", default="", help="comma-separated tags moved to the front when predicted")
    p.add_argument("--existing", choices=["overwrite", "append", "skip"], default="overwrite")
    p.add_argument("--rating", choices=["off", "first", "last"], default="off")
    p.add_argument("--character-first", action="store_true")
    p.add_argument("--keep-underscores", action="store_true")
    p.add_argument("--no-recursive", action="store_true", help="only the top folder")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("-f", "--follow", action="store_true")
    p.set_defaults(func=cmd_tag)
