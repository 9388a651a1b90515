"""docs/cli.md is generated from the argparse definitions; it must match the commands that exist."""
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_cli_doc_is_current():
    sys.path.insert(0, str(REPO / "scripts"))
    from gen_cli_doc import render

    current = (REPO / "docs" / "cli.md").read_text(encoding="utf-8")
    assert current == render(), "docs/cli.md is out of date: run `python scripts/gen_cli_doc.py`"
