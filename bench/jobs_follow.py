"""Benchmark: how fast the kernel-side follower ingests a job's log, and what it costs the engine.

    .venv/bin/python bench/jobs_follow.py [--lines 1000000]

Runs the stand-in engine (tests/standin_engine.py) through the real job system in
two modes: plain lines as fast as it can print, and tqdm-style ``\\r`` redraws.
Each mode runs in interleaved pairs: without a follower (the baseline) and with a
follower attached in this process; the engine-time ratio is the median over the pairs
(pairs cancel the machine's drift; a single pair on a noisy 2-core box varies by +-20%). Prints lines/s ingested by the follower, the follower's
CPU share, this process's peak RSS growth (and RSS at 10% vs 100% of the lines:
flat memory), and the ratio of the engine's run time without/with the follower
(goal >= 0.99).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
STANDIN = str(REPO / "tests" / "standin_engine.py")


def run(ws, flag: str, lines: int, follow: bool) -> dict:
    import lora_nb  # noqa: F401

    proc = psutil.Process()
    job = ws.jobs.submit_command([sys.executable, STANDIN, flag, str(lines)], name=f"bench{flag}")
    rss0 = proc.memory_info().rss
    result = {"rss_peak": 0, "rss_10": None, "rss_end": None}
    if follow:
        follower = job.follow(rate=10)
        native = follower._thread.native_id
        t0 = time.perf_counter()
        while follower.alive:
            rss = proc.memory_info().rss - rss0
            result["rss_peak"] = max(result["rss_peak"], rss)
            if result["rss_10"] is None and follower.lines_seen >= lines // 10:
                result["rss_10"] = rss
            cpu = next(((t.user_time + t.system_time) for t in proc.threads() if t.id == native), None)
            if cpu is not None:
                result["thread_cpu"] = cpu
            time.sleep(0.1)
        wall = time.perf_counter() - t0
        result["rss_end"] = proc.memory_info().rss - rss0
        result["ingest_rate"] = follower.lines_seen / wall
        result["cpu_share"] = result.get("thread_cpu", 0.0) / wall
        result["lines_seen"] = follower.lines_seen
    else:
        job.wait()
    rec = job.snapshot()
    result["engine_s"] = rec.ended_at - rec.started_at
    if follow:
        # catching up on a finished log: the follower's own ceiling, not bounded by the engine
        from lora_nb.jobs.follower import Follower

        t0 = time.perf_counter()
        f = Follower(job, rate=10, poll=0.001)
        f._thread.join()
        result["catchup_rate"] = f.lines_seen / (time.perf_counter() - t0)
    result["status"] = job.status.value
    return result


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=500_000)
    ap.add_argument("--repeat", type=int, default=5, help="interleaved (without, with) pairs per mode; the median ratio counts")
    args = ap.parse_args()
    import lora_nb

    ws = lora_nb.Workspace(tempfile.mkdtemp(prefix="bench-jobs-"))
    print(f"job log follower, {args.lines:,} lines per run (stand-in engine through the real supervisor)")
    for flag, label in (("--flood", "plain lines"), ("--flood-bar", "tqdm \\r redraws")):
        pairs = [(run(ws, flag, args.lines, follow=False), run(ws, flag, args.lines, follow=True)) for _ in range(args.repeat)]
        assert all(b["status"] == f["status"] == "succeeded" for b, f in pairs)
        ratios = sorted(b["engine_s"] / f["engine_s"] for b, f in pairs)
        base = min((b for b, _ in pairs), key=lambda r: r["engine_s"])
        fol = min((f for _, f in pairs), key=lambda r: r["engine_s"])
        print(f"\n[{label}]")
        print(f"  follower ingest, live:  {fol['ingest_rate']:>12,.0f} lines/s  ({fol['lines_seen']:,} lines, paced by the engine)")
        print(f"  follower ingest, catch-up of the finished log: {fol['catchup_rate']:,.0f} lines/s")
        print(f"  follower CPU share:     {fol['cpu_share']:>12.2f} of one core (the follower thread alone)")
        print(f"  follower RSS growth:    peak {fol['rss_peak'] / 2**20:.1f} MiB; at 10% {(fol['rss_10'] or 0) / 2**20:.1f} MiB, at end {fol['rss_end'] / 2**20:.1f} MiB")
        print(f"  engine run time (best): {base['engine_s']:.2f} s without follower, {fol['engine_s']:.2f} s with")
        print(f"  ratio (without/with):   median {statistics.median(ratios):.3f} of {len(ratios)} pairs "
              f"(range {ratios[0]:.3f}-{ratios[-1]:.3f}); best-of {base['engine_s'] / fol['engine_s']:.3f}   (goal >= 0.99)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
