"""`lora-nb datasets ...` through the real entry point (in-process main, and one real subprocess)."""
from __future__ import annotations

import subprocess
import sys

from corpus import image_bytes, zip_bytes
from lora_nb.cli import main


def test_cli_import_report_captions(ws, tmp_path, capsys):
    z = tmp_path / "in.zip"
    z.write_bytes(zip_bytes({"a.png": image_bytes(seed=1), "a.txt": b"1girl", "b.png": image_bytes(seed=2), "x.md": b"#"}))
    w = ["-w", str(ws.root)]
    assert main(w + ["datasets", "import", str(z), "cli"]) == 0
    out = capsys.readouterr().out
    assert "Imported 2 images, 1 caption, 1 skipped." in out and "skipped x.md" in out
    assert main(w + ["datasets", "captions", "cli", "add-trigger", "alice", "--preview"]) == 0
    assert "would change 2 of 2" in capsys.readouterr().out
    assert ws.datasets.get("cli").captions.get("a.png") == "1girl"
    assert main(w + ["datasets", "captions", "cli", "add-trigger", "alice"]) == 0
    assert ws.datasets.get("cli").captions.get("a.png") == "alice, 1girl"
    capsys.readouterr()
    assert main(w + ["datasets", "captions", "cli", "frequencies"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "2\talice"
    assert main(w + ["datasets", "report", "cli", "--trigger", "alice", "--json"]) == 0
    assert '"ok": true' in capsys.readouterr().out
    assert main(w + ["datasets", "import", str(z), "cli"]) == 1
    assert "already exists" in capsys.readouterr().err
    assert main(w + ["datasets", "delete", "cli"]) == 2
    assert main(w + ["datasets", "delete", "cli", "--yes"]) == 0 and "cli" not in ws.datasets


def test_cli_subprocess_list(ws):
    ws.datasets.create("shown")
    out = subprocess.run([sys.executable, "-m", "lora_nb.cli", "-w", str(ws.root), "datasets", "list"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "shown\t0 images"
