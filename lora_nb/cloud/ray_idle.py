"""Keep a SkyPilot node's job alive while its Ray cluster has work: ``python -m lora_nb.cloud.ray_idle``.

The head node's ``run`` (see :func:`lora_nb.cloud.skypilot.run_script`) starts Ray, then runs this: it returns
once the Ray Jobs API has listed no pending or running job for ``--idle`` seconds in a row. SkyPilot counts a
cluster idle only when its own job has ended, so its autostop then starts from the last Ray job, not from boot.

>>> busy([{"status": "RUNNING"}, {"status": "SUCCEEDED"}]), busy([{"status": "FAILED"}])
(True, False)
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Any, Callable, Iterable

__all__ = ["busy", "wait_idle", "main"]

ACTIVE = {"PENDING", "RUNNING"}


def busy(jobs: Iterable[Any]) -> bool:
    """True if any Ray job (a JobDetails or a dict with ``status``) is pending or running."""
    for job in jobs:
        status = job.get("status") if isinstance(job, dict) else getattr(job, "status", None)
        if str(getattr(status, "value", status)).upper() in ACTIVE:
            return True
    return False


def wait_idle(list_jobs: Callable[[], Iterable[Any]], idle: float, poll: float = 5.0,
              clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
    """Return after ``idle`` seconds without a pending or running job (an unreachable API counts as busy)."""
    quiet_since = clock()
    while True:
        try:
            if busy(list_jobs()):
                quiet_since = clock()
        except Exception:          # the dashboard is still starting, or restarting: not idle
            quiet_since = clock()
        if clock() - quiet_since >= idle:
            return
        sleep(min(poll, max(0.05, idle - (clock() - quiet_since))))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lora_nb.cloud.ray_idle")
    ap.add_argument("--address", default="http://127.0.0.1:8265", help="the Ray dashboard (Jobs API) address")
    ap.add_argument("--idle", type=float, default=300.0, help="seconds without Ray jobs before returning")
    ap.add_argument("--poll", type=float, default=5.0)
    args = ap.parse_args(argv)
    from ray.job_submission import JobSubmissionClient

    client: list[Any] = []

    def list_jobs() -> list[Any]:
        if not client:
            client.append(JobSubmissionClient(args.address))
        return client[0].list_jobs()

    print(f"lora-nb: waiting until Ray at {args.address} has had no job for {args.idle:g} s", flush=True)
    wait_idle(list_jobs, args.idle, args.poll)
    print("lora-nb: Ray is idle; ending this node's SkyPilot job (autostop counts from now)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
