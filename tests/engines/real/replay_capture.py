"""Replay a recording of the real sd-scripts (capture.py's PREFIX.chunks.jsonl + PREFIX.exit) as a process would.

    python replay_capture.py PREFIX [--speed 0]

Writes every recorded chunk, byte for byte, to stdout or stderr in the order it arrived (``--speed 1`` also
keeps the recorded timing; the default 0 replays at once), then exits with the recorded return code (a
negative one, a death by signal, is reproduced by sending this process that signal).
"""
from __future__ import annotations

import json
import os
import signal
import sys
import time


def main() -> int:
    prefix = sys.argv[1]
    speed = float(sys.argv[sys.argv.index("--speed") + 1]) if "--speed" in sys.argv else 0.0
    start = time.monotonic()
    with open(prefix + ".chunks.jsonl", encoding="utf-8") as f:
        for line in f:
            chunk = json.loads(line)
            if chunk["s"] not in ("out", "err"):
                continue
            if speed:
                delay = chunk["t"] / speed - (time.monotonic() - start)
                if delay > 0:
                    time.sleep(delay)
            os.write(1 if chunk["s"] == "out" else 2, chunk["b"].encode("latin-1"))
    with open(prefix + ".exit", encoding="utf-8") as f:
        rc = int(f.readline().split()[1])
    if rc < 0:
        os.kill(os.getpid(), -rc)
        signal.pause()
    return rc


if __name__ == "__main__":
    sys.exit(main())
