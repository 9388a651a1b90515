#!/usr/bin/env python3
"""STAND-IN for sd-scripts' train_network.py (not the real trainer).

Replays the recorded console output of a real run (../shared/fixtures/kohya/captures/<capture>)
to stdout and stderr with its recorded timing (scaled by LORA_NB_STANDIN_SPEED, default 0.02),
rewriting the recorded output paths to the ones in our --config_file, and writes the files
the real run wrote when it printed "saving checkpoint: ...". SIGTERM kills it like the real
one (no handler). LORA_NB_STANDIN_CAPTURE picks the capture (default run1).
"""
import json
import os
import sys
import time
import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parent
CAPTURES = HERE.parents[2].parent / "shared" / "fixtures" / "kohya" / "captures"


def main() -> int:
    args = sys.argv[1:]
    cfg_path = Path(args[args.index("--config_file") + 1])
    flat = {}
    for key, value in tomllib.loads(cfg_path.read_text()).items():
        flat.update(value if isinstance(value, dict) else {key: value})
    if isinstance(flat.get("resolution"), int):
        sys.stderr.write("AttributeError: 'int' object has no attribute 'split'\n")
        return 1
    dataset = tomllib.loads(Path(flat["dataset_config"]).read_text())
    assert all(isinstance(d["resolution"], list) for d in dataset["datasets"]), "dataset resolution must be [w, h] ints"
    out_dir, name = flat["output_dir"], flat["output_name"]
    capture = os.environ.get("LORA_NB_STANDIN_CAPTURE", "run1")
    speed = float(os.environ.get("LORA_NB_STANDIN_SPEED", "0.02"))
    chunks = [json.loads(l) for l in (CAPTURES / f"{capture}.chunks.jsonl").read_text().splitlines()]
    start = time.monotonic()
    for c in chunks:
        if c["s"] not in ("out", "err"):
            continue
        delay = c["t"] * speed - (time.monotonic() - start)
        if delay > 0:
            time.sleep(delay)
        text = c["b"].encode("latin-1").decode("utf-8", errors="replace").replace("/opt/lora-trial/out/demo", f"{out_dir}/{name}")
        stream = sys.stdout if c["s"] == "out" else sys.stderr
        stream.write(text)
        stream.flush()
        for line in text.splitlines():
            if line.startswith("saving checkpoint: "):
                path = Path(line.split(": ", 1)[1].strip())
                path.parent.mkdir(parents=True, exist_ok=True)
                header = b'{"__metadata__":{"ss_output_name":"%s"}}' % name.encode()
                path.write_bytes(len(header).to_bytes(8, "little") + header)
    return int((CAPTURES / f"{capture}.exit").read_text().split()[1])


if __name__ == "__main__":
    sys.exit(main())
