"""``lora-nb jobs``: list, show, follow, stop and submit jobs from a terminal.

    $ lora-nb jobs submit --name smoke -- python train.py --epochs 1
    $ lora-nb jobs list
    $ lora-nb jobs logs -f 20261122-143012-a3f9
    $ lora-nb jobs stop 20261122-143012-a3f9
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from typing import TYPE_CHECKING, Any

from ..jobs.format import is_progress_marker, marker_text, progress_line
from ..progress.events import JobStatus
from ..progress.parsers import TASK_MARKER, parser_names
from . import open_workspace as _ws

if TYPE_CHECKING:  # pragma: no cover
    from ..jobs.manager import Job

__all__ = ["register", "follow_log"]




def _fmt_time(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "-"


def cmd_list(args: argparse.Namespace) -> int:
    snaps = _ws(args).jobs.snapshots(status=args.status or None)
    if args.json:
        print(json.dumps([s.describe() for s in snaps], indent=1))
        return 0
    if not snaps:
        print("no jobs")
        return 0
    print(f"{'ID':<22} {'STATUS':<10} {'KIND':<10} {'CREATED':<19}  {'PROGRESS':<28} NAME")
    for s in snaps:
        line = progress_line(s.progress, s.status, elapsed=False)
        print(f"{s.id:<22} {s.status.value:<10} {s.kind[:10]:<10} {_fmt_time(s.created_at):<19}  {line[:28]:<28} {s.name}")
    _print_cost_line(args)
    return 0


def _print_cost_line(args: argparse.Namespace) -> None:
    """On a Vast.ai instance (or with ``vast_instance_id`` set): price, spend and the queue's cost, one line."""
    from ..jobs.cost import cost_report

    report = cost_report(_ws(args))
    if report is not None:
        print("\n" + report.summary())


def cmd_cost(args: argparse.Namespace) -> int:
    from ..jobs.autostop import status as autostop_status
    from ..jobs.cost import cost_report

    ws = _ws(args)
    report = cost_report(ws)
    stop = autostop_status(ws)
    if args.json:
        cost = report.cost if report is not None else None
        print(json.dumps({"instance_id": report.instance_id if report else None, "error": report.error if report else None,
                          "price_per_hour": cost.price_per_hour if cost else None, "spent": cost.spent if cost else None,
                          "queue_cost": cost.cost if cost else None, "queue_hours": cost.known_seconds / 3600 if cost else None,
                          "jobs_without_eta": cost.unknown_jobs if cost else None, "autostop": stop}, indent=1))
        return 0
    print(report.summary() if report is not None else
          "Not on a Vast.ai instance (no CONTAINER_ID): set it, or `lora-nb jobs autostop --instance ID`, to see costs.")
    print(_autostop_line(stop))
    return 0 if report is None or report.error is None else 1


def _autostop_line(stop: dict[str, Any]) -> str:
    grace = f"{stop['grace_seconds'] / 60:g} min"
    if not stop["enabled"]:
        return f"auto-stop when the queue drains: off (grace {grace})"
    return f"auto-stop when the queue drains: on (grace {grace}); {stop['state']}" + (f": {stop['message']}" if stop["message"] else "")


def cmd_autostop(args: argparse.Namespace) -> int:
    from ..jobs.autostop import configure, status as autostop_status

    ws = _ws(args)
    if args.instance is not None:
        ws.settings.set("vast_instance_id", args.instance)
    if args.on or args.off or args.grace is not None:
        enabled = bool(autostop_status(ws)["enabled"]) if not (args.on or args.off) else bool(args.on)
        configure(ws, enabled, None if args.grace is None else args.grace * 60)
    print(_autostop_line(autostop_status(ws)))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    snap = _ws(args).jobs.get(args.id).snapshot()
    d = snap.describe()
    if args.json:
        print(json.dumps(d, indent=1))
        return 0
    for key in ("id", "name", "kind", "status", "exit_code", "run_dir"):
        print(f"{key:>10}: {d[key]}")
    print(f"{'command':>10}: {' '.join(d['argv'])}")
    print(f"{'created':>10}: {_fmt_time(d['created_at'])}   started: {_fmt_time(d['started_at'])}   ended: {_fmt_time(d['ended_at'])}")
    print(f"{'progress':>10}: {progress_line(snap.progress, snap.status)}")
    if snap.executor != "local":
        print(f"{'runs on':>10}: Ray cluster {snap.executor}, submission {snap.remote_id or '(not yet submitted)'}")
    for a in snap.artifacts:
        print(f"{'artifact':>10}: [{a.get('kind')}] {a.get('path')}")
    if d["error"]:
        print("\n" + d["error"])
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    job = _ws(args).jobs.get(args.id)
    for line in job.log_tail(args.lines):
        print(line)
    if not args.follow:
        return 0
    return follow_log(job, job.log_path.stat().st_size if job.log_path.exists() else 0)


def follow_log(job: "Job", offset: int = 0, out: Any = None) -> int:
    """Print a job's console output from byte ``offset`` until it ends (``\r`` redraws kept); exit code 0 if it succeeded."""
    from ..jobs.lines import LineSplitter

    out = out or sys.stdout
    splitter = LineSplitter()
    on_redraw = False          # the cursor sits at the end of a \r-redrawn line
    while True:
        status = job.status
        try:
            with open(job.log_path, "rb") as f:
                f.seek(offset)
                data = f.read()
        except FileNotFoundError:
            data = b""
        offset += len(data)
        for text, redraw in splitter.feed(data):
            if text.startswith(TASK_MARKER):   # our own tasks' progress lines, shown as text
                text, redraw = marker_text(text), is_progress_marker(text)
                if text is None:
                    continue
            if redraw:
                out.write("\r" + text)
            else:
                out.write(("\n" if on_redraw else "") + text + "\n")
            on_redraw = redraw
        out.flush()
        if status.is_final and not data:
            print(f"\n[{job.id} {status.value}]" + (f" {job.error}" if job.error and status is not JobStatus.SUCCEEDED else ""), file=out)
            return 0 if status is JobStatus.SUCCEEDED else 1
        time.sleep(0.2)


def cmd_stop(args: argparse.Namespace) -> int:
    job = _ws(args).jobs.get(args.id)
    status = job.stop(grace=args.grace, wait=not args.no_wait)
    print(f"{job.id} {status.value}")
    return 0


def cmd_request(args: argparse.Namespace) -> int:
    """``jobs save-now`` / ``jobs sample-now``: the running trainer saves or samples after its current step."""
    job = _ws(args).jobs.get(args.id)
    (job.request_save if args.action == "save" else job.request_sample)()
    print(f"{job.id}: asked to {'save a checkpoint' if args.action == 'save' else 'make samples'} after its current step")
    return 0


def cmd_slots(args: argparse.Namespace) -> int:
    ws = _ws(args)
    if args.set is not None:
        ws.jobs.set_gpu_slots(args.set)
    elif args.count is not None:
        ws.jobs.max_concurrent = args.count
    elif args.auto:
        ws.jobs.set_gpu_slots(None)
    rows = ws.jobs.slot_usage()
    if args.json:
        print(json.dumps(rows))
        return 0
    for row in rows:
        holder = f"{row['job']} {row['name']}" if row["job"] else "free"
        print(f"slot {row['slot']}  GPU {row['device']}  {holder}")
    return 0


def cmd_executor(args: argparse.Namespace) -> int:
    ws = _ws(args)
    files = "ship" if args.ship_files else "shared" if args.shared_files else None
    if args.set is not None:
        ws.jobs.set_executor(args.set, files=files)
    elif args.local:
        ws.jobs.set_executor("local", files=files)
    elif files is not None:
        ws.jobs.set_executor(ws.jobs.executor, files=files)
    executor = ws.jobs.executor
    if args.json:
        print(json.dumps({"executor": executor, "files": ws.jobs.ray_files}))
    elif executor == "local":
        print("local: jobs run on this machine")
    else:
        how = ("inputs shipped in the Ray Job's working_dir, outputs fetched back (sha256 checked)"
               if ws.jobs.ray_files == "ship" else "every node sees the workspace at the same paths")
        print(f"ray: jobs run as Ray Jobs on the cluster at {executor}; files: {ws.jobs.ray_files} ({how})")
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    argv = list(args.argv)
    if argv and argv[0] == "--":
        argv = argv[1:]
    env = {}
    for item in args.env or []:
        key, sep, value = item.partition("=")
        if not sep:
            from ..errors import JobError

            raise JobError(f"'{item}' is not KEY=VALUE.", fix="Write --env NAME=value.")
        env[key] = value
    gpus = 0 if args.no_gpu else args.gpus
    job = _ws(args).jobs.submit_command(argv, name=args.name, cwd=args.cwd, env=env, parser=args.parser, gpus=gpus)
    print(job.id)
    if args.wait:
        status = job.wait()
        print(status.value)
        return 0 if status is JobStatus.SUCCEEDED else 1
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("jobs", help="list, show, follow, stop and submit jobs")
    jsub = p.add_subparsers(dest="jobs_command", metavar="ACTION", required=True)

    q = jsub.add_parser("list", help="all jobs, oldest first")
    q.add_argument("--status", action="append", choices=["queued", "starting", "running", "succeeded", "failed", "stopped"])
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_list)

    q = jsub.add_parser("show", help="one job in full, with its failure summary")
    q.add_argument("id")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_show)

    q = jsub.add_parser("logs", help="a job's log (\\r redraws collapsed)")
    q.add_argument("id")
    q.add_argument("-n", "--lines", type=int, default=100)
    q.add_argument("-f", "--follow", action="store_true", help="keep printing until the job ends")
    q.set_defaults(func=cmd_logs)

    q = jsub.add_parser("stop", help="SIGTERM the job's process tree, SIGKILL after the grace period")
    q.add_argument("id")
    q.add_argument("--grace", type=float, default=10.0)
    q.add_argument("--no-wait", action="store_true")
    q.set_defaults(func=cmd_stop)

    for action, what in (("save", "save a checkpoint"), ("sample", "make its sample images")):
        q = jsub.add_parser(f"{action}-now", help=f"ask a running training job to {what} after its current step "
                                                  "(ai-toolkit runs; sd-scripts cannot, and says why)")
        q.add_argument("id")
        q.set_defaults(func=cmd_request, action=action)

    q = jsub.add_parser("submit", help="run any command as a job: lora-nb jobs submit -- CMD ARGS...")
    q.add_argument("--name")
    q.add_argument("--cwd")
    q.add_argument("--env", action="append", metavar="KEY=VALUE")
    q.add_argument("--parser", default="plain", choices=parser_names(), metavar="NAME",
                   help=f"how the log is read for progress and loss: {', '.join(parser_names())} (default plain; "
                        "hf-trainer for Hugging Face Trainer / Accelerate scripts)")
    q.add_argument("--gpus", type=int, default=1, metavar="N", help="GPU slots the job holds (default 1; it sees only those devices)")
    q.add_argument("--no-gpu", action="store_true", help="hold no GPU slot: start at once, see no GPU (same as --gpus 0)")
    q.add_argument("--wait", action="store_true", help="wait for the job to end; exit 0 if it succeeded")
    q.add_argument("argv", nargs=argparse.REMAINDER)
    q.set_defaults(func=cmd_submit)

    q = jsub.add_parser("cost", help="on Vast.ai: price per hour, spend so far, estimated cost of the queue, auto-stop state")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_cost)

    q = jsub.add_parser("autostop", help="stop this Vast.ai instance when the queue drains: --on / --off, --grace MIN")
    g = q.add_mutually_exclusive_group()
    g.add_argument("--on", action="store_true", help="stop the instance once nothing is queued or running for the grace period")
    g.add_argument("--off", action="store_true", help="never stop it (the default)")
    q.add_argument("--grace", type=float, metavar="MIN", help="minutes to wait with an empty queue before stopping (default 10)")
    q.add_argument("--instance", type=int, metavar="ID", help="the Vast.ai instance id where CONTAINER_ID is not set")
    q.set_defaults(func=cmd_autostop)

    q = jsub.add_parser("executor", help="where new jobs run: here (--local, the default) or on a Ray cluster (--set ray://HOST)")
    g = q.add_mutually_exclusive_group()
    g.add_argument("--set", metavar="ADDRESS", help="a Ray head: ray://HOST (dashboard port 8265) or http://HOST:DASHBOARD_PORT")
    g.add_argument("--local", action="store_true", help="run jobs on this machine")
    f = q.add_mutually_exclusive_group()
    f.add_argument("--ship-files", action="store_true",
                   help="nodes do not see the workspace: ship each job's run folder and datasets, fetch its outputs back")
    f.add_argument("--shared-files", action="store_true", help="every node sees the workspace at the same paths (the default)")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_executor)

    q = jsub.add_parser("slots", help="the GPU slots jobs are pinned to; --set 0,1 / --count N / --auto to change them")
    g = q.add_mutually_exclusive_group()
    g.add_argument("--set", metavar="DEVICES", help="device index of every slot, e.g. 0,1 (repeat one to share a card: 0,0)")
    g.add_argument("--count", type=int, metavar="N", help="N slots, laid round-robin over the GPUs found")
    g.add_argument("--auto", action="store_true", help="one slot per GPU that NVML finds (the default)")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_slots)
