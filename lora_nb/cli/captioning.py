"""``lora-nb caption``: natural-language captions with Florence-2 or JoyCaption (a job), presets, the model list.

    $ lora-nb caption mydata --model florence-2-large --mode more_detailed --trigger ohwx --follow
    $ lora-nb caption mydata --model joycaption-beta-one --mode training_prompt --length short --with-tags wd-vit-tagger-v3
    $ lora-nb caption mydata --preview 4 --follow          # caption 4 images, write nothing, print them
    $ lora-nb caption mydata --mode descriptive --length long --save-preset flux-long
    $ lora-nb caption mydata --preset flux-long --existing skip
    $ lora-nb caption --models
"""
from __future__ import annotations

import argparse
from typing import Any

__all__ = ["register"]


def cmd_caption(args: argparse.Namespace) -> int:
    from . import open_workspace

    if args.models:
        from ..tagging.caption_models import CAPTIONERS

        for m in CAPTIONERS.values():
            print(f"{m.name:<22} {m.family:<11} {m.params:>7} params  {m.download:>7} download  {m.vram:<22} {m.repo_id}  {m.note}")
        return 0
    if not args.dataset:
        from ..errors import InvalidInput

        raise InvalidInput("Name the dataset to caption.", fix="lora-nb caption DATASET (lora-nb datasets list shows them).")
    ws = open_workspace(args)
    options: dict[str, Any] = {}
    for key in ("mode", "length", "prompt", "max_new_tokens", "max_length", "existing", "batch_size", "with_tags", "tags_position",
                "preset"):
        value = getattr(args, key)
        if value not in (None, ""):
            options[key] = value
    if args.trigger:
        options["trigger_words"] = args.trigger
    if args.no_recursive:
        options["recursive"] = False
    if args.save_preset:
        from ..tagging.caption_options import PromptPresets

        saved = {k: v for k, v in options.items() if k != "preset"}
        PromptPresets(ws.presets_dir / "captions").save(args.save_preset, saved)
        print(f"saved caption preset {args.save_preset}")
    ds = ws.datasets.get(args.dataset)
    if args.preview:
        job = ds.preview_captions(model=args.model, n=args.preview, **options)
    else:
        job = ds.caption(model=args.model, **options)
    print(f"{'preview' if args.preview else 'captioning'} job {job.id}")
    if not args.follow:
        return 0
    from .jobs import follow_log

    return follow_log(job)


def register(sub: Any) -> None:
    p = sub.add_parser("caption", help="natural-language captions with Florence-2 or JoyCaption (runs as a job)")
    p.add_argument("dataset", nargs="?")
    p.add_argument("--models", action="store_true", help="list the known captioners with their VRAM needs")
    p.add_argument("--model", default="florence-2-large", help="registry name, Hub repo id, or a local folder")
    p.add_argument("--mode", default="", help="Florence-2: detailed|more_detailed|caption; JoyCaption: descriptive|"
                                              "descriptive_casual|straightforward|training_prompt|booru_list")
    p.add_argument("--length", default=None, help="JoyCaption: any, very short, short, medium-length, long, very long, or a word count")
    p.add_argument("--prompt", default="", help="JoyCaption: a custom prompt ({length} is replaced)")
    p.add_argument("--max-new-tokens", type=int, default=None)
    p.add_argument("--max-length", type=int, default=None, help="cap each caption at this many characters")
    p.add_argument("--trigger", default="", help="comma-separated words written first in every caption")
    p.add_argument("--existing", choices=["overwrite", "append", "skip"], default=None)
    p.add_argument("--with-tags", default="", help="a WD14 tagger: its tags and the sentence in one caption")
    p.add_argument("--tags-position", choices=["before", "after"], default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--no-recursive", action="store_true", help="only the top folder")
    p.add_argument("--preset", default="", help="a saved caption preset (options given here win)")
    p.add_argument("--save-preset", default="", help="save these options as a preset first")
    p.add_argument("--preview", type=int, default=0, metavar="N", help="caption N images and write nothing")
    p.add_argument("-f", "--follow", action="store_true")
    p.set_defaults(func=cmd_caption)
