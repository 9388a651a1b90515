"""``lora-nb datasets ...``: list, create, import, report, rename, delete, and bulk caption edits.

    $ lora-nb datasets import photos.zip alice
    $ lora-nb datasets report alice --resolution 1024 --trigger alice
    $ lora-nb datasets captions alice add-trigger alice --preview
"""
from __future__ import annotations

import argparse
import json
import sys
from . import open_workspace as _ws




def _list(args) -> int:
    for ds in _ws(args).datasets.list():
        print(f"{ds.name}\t{len(ds.image_paths())} images")
    return 0


def _create(args) -> int:
    print(_ws(args).datasets.create(args.name).path)
    return 0


def _import(args) -> int:
    import os

    ws = _ws(args)
    src = args.source
    if src.startswith(("http://", "https://")):
        result = ws.datasets.import_url(src, args.name, merge=args.merge)
    elif os.path.isdir(src):
        result = ws.datasets.import_folder(src, args.name, link=args.link, merge=args.merge)
    else:
        result = ws.datasets.import_zip(src, args.name, merge=args.merge)
    print(result.summary())
    for name, why in result.skipped:
        print(f"  skipped {name}: {why}")
    for rel, why in result.converted:
        print(f"  converted {rel}: {why}")
    return 0


def _report(args) -> int:
    res = int(args.resolution) if "x" not in args.resolution else tuple(int(v) for v in args.resolution.split("x"))
    rep = _ws(args).datasets.get(args.name).report(resolution=res, trigger_words=args.trigger or None)
    print(json.dumps(rep.to_dict(), indent=1) if args.json else rep)
    return 0 if rep.ok else 3


def _rename(args) -> int:
    print(_ws(args).datasets.rename(args.old, args.new).path)
    return 0


def _delete(args) -> int:
    if not args.yes:
        print(f"This deletes dataset '{args.name}' with its captions; add --yes to confirm.", file=sys.stderr)
        return 2
    _ws(args).datasets.delete(args.name)
    return 0


def _captions(args) -> int:
    caps = _ws(args).datasets.get(args.name).captions
    op, p = args.op, args.preview
    if op == "add-trigger":
        res = caps.add_trigger(args.args, where=args.where, preview=p)
    elif op == "replace":
        if len(args.args) != 2:
            print("replace needs OLD and NEW", file=sys.stderr)
            return 2
        res = caps.replace(args.args[0], args.args[1], regex=args.regex, whole_tag=not args.substring, preview=p)
    elif op == "remove":
        res = caps.remove(args.args, regex=args.regex, preview=p)
    elif op == "keep-only":
        res = caps.keep_only(args.args, regex=args.regex, preview=p)
    elif op == "frequencies":
        for tag, n in caps.frequencies().most_common(args.top):
            print(f"{n}\t{tag}")
        return 0
    elif op == "undo":
        res = caps.undo()
    else:
        res = getattr(caps, op.replace("-", "_"))(preview=p)
    print(res)
    for ch in res.changes[: args.show]:
        print(f"  {ch.image.name}: {ch.before!r} -> {ch.after!r}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("datasets", help="datasets and captions")
    sub = p.add_subparsers(dest="datasets_command", metavar="ACTION", required=True)
    sub.add_parser("list", help="list datasets").set_defaults(func=_list)
    c = sub.add_parser("create", help="create an empty dataset")
    c.add_argument("name")
    c.set_defaults(func=_create)
    i = sub.add_parser("import", help="import a ZIP, a folder or an http(s) URL")
    i.add_argument("source")
    i.add_argument("name")
    i.add_argument("--link", action="store_true", help="link images of a folder instead of copying them")
    i.add_argument("--merge", action="store_true", help="add to an existing dataset")
    i.set_defaults(func=_import)
    r = sub.add_parser("report", help="check a dataset before training (exit 3 if something blocks training)")
    r.add_argument("name")
    r.add_argument("--resolution", default="512", help="512 or 1024x768")
    r.add_argument("--trigger", action="append", help="trigger word to check (repeatable)")
    r.add_argument("--json", action="store_true")
    r.set_defaults(func=_report)
    m = sub.add_parser("rename", help="rename a dataset")
    m.add_argument("old")
    m.add_argument("new")
    m.set_defaults(func=_rename)
    d = sub.add_parser("delete", help="delete a dataset")
    d.add_argument("name")
    d.add_argument("--yes", action="store_true")
    d.set_defaults(func=_delete)
    k = sub.add_parser("captions", help="bulk caption edits and tag statistics")
    k.add_argument("name")
    k.add_argument("op", choices=["add-trigger", "replace", "remove", "keep-only", "sort", "dedupe", "underscores-to-spaces",
                                  "spaces-to-underscores", "normalize-whitespace", "frequencies", "undo"])
    k.add_argument("args", nargs="*")
    k.add_argument("--where", default="start", choices=["start", "end", "both"])
    k.add_argument("--regex", action="store_true")
    k.add_argument("--substring", action="store_true", help="replace inside tags, not whole tags")
    k.add_argument("--preview", action="store_true", help="show what would change, write nothing")
    k.add_argument("--show", type=int, default=10, help="changes to print")
    k.add_argument("--top", type=int, default=50, help="tags to print for frequencies")
    k.set_defaults(func=_captions)
