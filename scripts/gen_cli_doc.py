"""Write docs/cli.md from the argparse definitions (run after changing a command; a test checks it is current).

    python scripts/gen_cli_doc.py
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
OUT = REPO / "docs" / "cli.md"


def render() -> str:
    os.environ["COLUMNS"] = "100"
    from lora_nb.cli import build_parser

    parser = build_parser()
    parser.prog = "lora-nb"
    lines = ["# Command line: `lora-nb`", "",
             "Generated from the argparse definitions by `scripts/gen_cli_doc.py`. Every command works on the workspace",
             "given by `-w/--workspace`, else `$LORA_NB_HOME`, `/workspace/lora-nb` or `~/lora-nb`. Errors are one line",
             "with the fix (exit code 1 or 2); long work is a job, so `lora-nb jobs list` / `logs -f` follow it from any shell.",
             "", "```text", parser.format_help().rstrip(), "```", ""]
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, p in sub.choices.items():
        lines += [f"## `lora-nb {name}`", "", "```text", p.format_help().rstrip(), "```", ""]
        inner = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
        for action in inner:
            for sname, sp in action.choices.items():
                lines += [f"### `lora-nb {name} {sname}`", "", "```text", sp.format_help().rstrip(), "```", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    OUT.write_text(render(), encoding="utf-8")
    print("wrote", OUT)
