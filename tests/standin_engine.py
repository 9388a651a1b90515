#!/usr/bin/env python3
"""A stand-in training engine: behaves like a trainer at the process level (NOT a real engine).

Prints a kohya-style tqdm bar with ``\\r`` redraws on stderr and epoch lines on stdout,
writes output files, and can misbehave on request:

  --steps N          steps to run (default 20)            --epochs E   epochs (default 1)
  --delay S          seconds per step (default 0.01)      --out DIR    write DIR/model.safetensors-like files
  --ignore-term      ignore SIGTERM (only SIGKILL ends it)
  --exit-zero-on-term  exit 0 when SIGTERM arrives (like ai-toolkit after an interrupt)
  --crash-at K       raise an exception at step K (exit 1, with a traceback)
  --exit CODE        exit with CODE at the end (default 0)
  --child            start a grandchild process (sleeps forever) in the same group
  --detached-child   start a grandchild in a NEW session (escapes the process group)
  --pidfile FILE     write "pid child_pid" to FILE once started
  --flood N          print N plain lines as fast as possible, then exit
  --flood-bar N      print N tqdm-style \\r redraws as fast as possible, then exit
  --oom              print a CUDA out-of-memory traceback and exit 1
  --secret-env NAME  print whether env NAME is set
  --leak-env NAME    print the value of env NAME (a careless engine; the log must mask it)
"""
import argparse
import os
import signal
import subprocess
import sys
import time


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--delay", type=float, default=0.01)
    ap.add_argument("--out")
    ap.add_argument("--ignore-term", action="store_true")
    ap.add_argument("--exit-zero-on-term", action="store_true")
    ap.add_argument("--crash-at", type=int)
    ap.add_argument("--exit", type=int, default=0)
    ap.add_argument("--child", action="store_true")
    ap.add_argument("--detached-child", action="store_true")
    ap.add_argument("--pidfile")
    ap.add_argument("--flood", type=int)
    ap.add_argument("--flood-bar", type=int)
    ap.add_argument("--oom", action="store_true")
    ap.add_argument("--secret-env")
    ap.add_argument("--leak-env")
    a = ap.parse_args()

    if a.flood is not None:
        w = sys.stdout.write
        for i in range(a.flood):
            w(f"line {i} of the flood, some text to make it a realistic length\n")
        sys.stdout.flush()
        return 0
    if a.flood_bar is not None:
        w = sys.stderr.write
        n = a.flood_bar
        for i in range(n):
            w(f"\rsteps: {100 * i // n:3d}%|#####     | {i}/{n} [00:01<00:01, 99.00it/s, avr_loss=0.{i % 1000:03d}]")
        w("\n")
        sys.stderr.flush()
        return 0

    if a.ignore_term:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    elif a.exit_zero_on_term:
        signal.signal(signal.SIGTERM, lambda *_: (print("Job stopped", flush=True), os._exit(0)))
    child_pid = 0
    if a.child or a.detached_child:
        child = subprocess.Popen([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(3600)"],
                                 start_new_session=a.detached_child)
        child_pid = child.pid
    if a.pidfile:
        with open(a.pidfile + ".tmp", "w") as f:
            f.write(f"{os.getpid()} {child_pid}")
        os.replace(a.pidfile + ".tmp", a.pidfile)
    if a.secret_env:
        print(f"secret {a.secret_env} is {'set' if os.environ.get(a.secret_env) else 'missing'}", flush=True)
    if a.leak_env:
        print(f"using token {os.environ.get(a.leak_env)} for upload", flush=True)
    if a.oom:
        print("Traceback (most recent call last):\n  File \"train.py\", line 1, in <module>\n"
              "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB", file=sys.stderr, flush=True)
        return 1

    total = a.steps * a.epochs
    step = 0
    start = time.time()
    for epoch in range(1, a.epochs + 1):
        print(f"\nepoch {epoch}/{a.epochs}", flush=True)
        for _ in range(a.steps):
            step += 1
            if a.crash_at == step:
                print("Traceback (most recent call last):\n  File \"train.py\", line 42, in train\nRuntimeError: stand-in crash",
                      file=sys.stderr, flush=True)
                return 1
            time.sleep(a.delay)
            el = time.time() - start
            rate = step / el if el else 0.0
            loss = 0.2 - step * 0.001
            pct = 100 * step // total
            for shown in (loss + 0.001, loss):  # kohya redraws twice per step
                sys.stderr.write(f"\rsteps: {pct:3d}%|###       | {step}/{total} [00:{int(el):02d}<00:00, {rate:5.2f}it/s, avr_loss={shown:.4f}]")
                sys.stderr.flush()
        if a.out:
            os.makedirs(a.out, exist_ok=True)
            path = os.path.join(a.out, f"standin-{epoch:06d}.safetensors")
            with open(path, "wb") as f:
                f.write(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
            print(f"saving checkpoint: {path}", flush=True)
    sys.stderr.write("\n")
    print("model saved.", flush=True)
    return a.exit


if __name__ == "__main__":
    sys.exit(main())
