"""Benchmark: the wall-time overhead of running a job through Ray instead of locally.

    .venv/bin/python bench/ray_overhead.py [--short 10] [--long 60] [--pairs 2]

Starts a real one-node Ray cluster on this machine (tests/ray_cluster.py, one logical GPU) and
runs the same stand-in training run (tests/standin_engine.py: a tqdm bar, ``--steps`` x
``--delay``) through the real job system twice per pair: ``local`` (the baseline) and
Ray-dispatched, interleaved so the machine's drift hits both. Wall time is from
``submit_command`` to the moment ``job.wait()`` sees it succeed, with the log fully in
``runs/<id>/log`` either way.

Ray's cost is a fixed overhead per job (starting the supervisor, importing the Ray SDK,
submitting, Ray starting its job supervisor actor and runtime env, the log stream's 1 s tail
cadence), not a per-step slowdown, so it is measured on short runs and projected onto a
10-minute run: ``ratio_600 = (600 + ray_overhead) / (600 + local_overhead)``, where an overhead is a
run's wall time minus its engine time. One real longer run (``--long`` s) is measured directly
as a check on the projection. Goal: ratio_600 <= 1.05.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
STANDIN = str(REPO / "tests" / "standin_engine.py")


def one_run(ws, seconds: float) -> float:
    """Wall seconds for one stand-in run of ``seconds`` engine time (100 steps per second)."""
    steps = max(1, int(seconds * 100))
    t0 = time.perf_counter()
    job = ws.jobs.submit_command([sys.executable, STANDIN, "--steps", str(steps), "--delay", "0.01"], name="bench-ray")
    status = job.wait(seconds * 3 + 300, poll=0.05)
    wall = time.perf_counter() - t0
    if status.value != "succeeded":
        raise SystemExit(f"the {job.snapshot().executor} run ended {status.value}: {job.error}")
    if f"| {steps}/{steps} [" not in job.log_path.read_text():
        raise SystemExit("the log is missing the last step")
    return wall


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--short", type=float, default=10.0, help="engine seconds of the short runs (overhead measurement)")
    ap.add_argument("--long", type=float, default=60.0, help="engine seconds of the one longer run measured directly (0: skip)")
    ap.add_argument("--pairs", type=int, default=2, help="interleaved local/Ray pairs of short runs")
    args = ap.parse_args(argv)

    import lora_nb
    from ray_cluster import LocalRayCluster

    cluster = LocalRayCluster(gpus_per_node=1, cpus_per_node=1, workers=0)
    t0 = time.perf_counter()
    cluster.start()
    print(f"Ray cluster up in {time.perf_counter() - t0:.0f} s at {cluster.address}")
    try:
        local = lora_nb.Workspace(tempfile.mkdtemp(prefix="bench-local-"))
        remote = lora_nb.Workspace(tempfile.mkdtemp(prefix="bench-ray-"))
        remote.jobs.set_executor(cluster.address)
        one_run(remote, 1.0)    # warm-up: Ray's first job starts its job agent's workers
        lo, ra = [], []
        for i in range(args.pairs):
            lo.append(one_run(local, args.short))
            ra.append(one_run(remote, args.short))
            print(f"pair {i + 1}: {args.short:g} s run  local {lo[-1]:.2f} s  ray {ra[-1]:.2f} s")
        local_over = statistics.median(lo) - args.short
        ray_over = statistics.median(ra) - args.short
        ratio_600 = (600 + ray_over) / (600 + local_over)
        print(f"fixed overhead per job: local {local_over:.2f} s, ray {ray_over:.2f} s (+{ray_over - local_over:.2f} s)")
        print(f"projected 600 s run: local {600 + local_over:.1f} s, ray {600 + ray_over:.1f} s, ratio {ratio_600:.3f} "
              f"(goal <= 1.05: {'met' if ratio_600 <= 1.05 else 'NOT met'})")
        if args.long > 0:
            long_local = one_run(local, args.long)
            long_ray = one_run(remote, args.long)
            print(f"measured {args.long:g} s run: local {long_local:.2f} s, ray {long_ray:.2f} s, ratio {long_ray / long_local:.3f}")
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
