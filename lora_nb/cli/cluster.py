"""``lora-nb cluster``: GPU nodes for a Ray cluster of jobs, brought up by SkyPilot.

    $ lora-nb cluster up --gpus RTX4090:1 --nodes 1 --cloud vast --autostop 30 --engine kohya
    $ lora-nb cluster up --gpus A100:1 --nodes 4 --cloud runpod --dryrun   # SkyPilot's parser and optimizer only
    $ lora-nb cluster up --gpus RTX4090:1 --print-yaml                     # the task, for `sky launch` by hand
    $ lora-nb cluster status
    $ lora-nb cluster down

SkyPilot runs in its own Python (``scripts/skypilot-venv.sh``; see :mod:`lora_nb.cloud.skypilot`).
"""
from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["register"]


def _options(args: argparse.Namespace) -> Any:
    from ..cloud.skypilot import ClusterOptions

    return ClusterOptions(gpus=args.gpus, nodes=args.nodes, cloud=None if args.cloud == "any" else args.cloud,
                          autostop_minutes=None if args.no_autostop else args.autostop, engine=args.engine,
                          name=args.name, lora_nb_spec=args.spec).validate()


def cmd_up(args: argparse.Namespace) -> int:
    from ..cloud.skypilot import call_driver, render_yaml, task_config

    opts = _options(args)
    if args.print_yaml:
        print(render_yaml(opts, args.provision_script), end="")
        return 0
    task = task_config(opts, args.provision_script)
    if args.dryrun:
        answer = call_driver({"action": "validate", "task": task})
        if args.json:
            print(json.dumps(answer, indent=1))
        else:
            print(f"SkyPilot {answer.get('sky_version')} parsed the task: {answer['num_nodes']} x {', '.join(answer['resources'])}"
                  + (" (YAML round trip identical)" if answer.get("roundtrip") else " (YAML round trip DIFFERS)"))
            if answer.get("optimized"):
                print(f"optimizer: {answer['cloud']} {answer['instance_type']} at ${answer['price_per_hour']:.3f}/h for the cluster")
            else:
                print(f"optimizer: {answer.get('error')}")
        if not (answer.get("roundtrip") and answer.get("optimized")):
            return 1
        # the launch itself, planned by SkyPilot's API server with dryrun=True: nothing is rented
        call_driver({"action": "launch", "task": task, "cluster": opts.name, "autostop": opts.autostop_minutes, "dryrun": True})
        if not args.json:
            print(f"sky.launch(dryrun=True): SkyPilot planned cluster {opts.name} (autostop "
                  f"{'off' if opts.autostop_minutes is None else f'{opts.autostop_minutes} min'}); nothing was rented")
        return 0
    answer = call_driver({"action": "launch", "task": task, "cluster": opts.name, "autostop": opts.autostop_minutes})
    print(f"cluster {answer['cluster']} is up; Ray head at {answer.get('head_ip')}:{opts.ray_port} "
          f"(lora-nb jobs executor --set http://{answer.get('head_ip')}:{opts.dashboard_port})")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from ..cloud.skypilot import call_driver

    answer = call_driver({"action": "status", "cluster": args.name})
    if args.json:
        print(json.dumps(answer, indent=1))
        return 0
    if not answer["clusters"]:
        print(f"no cluster {args.name}" if args.name else "no clusters")
    for c in answer["clusters"]:
        stop = f"autostop {c['autostop']} min" if c.get("autostop") not in (None, -1) else "no autostop"
        print(f"{c['name']}  {c['status']}  head {c.get('head_ip') or '-'}  {stop}  {c.get('resources') or ''}")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    from ..cloud.skypilot import call_driver

    call_driver({"action": "down", "cluster": args.name})
    print(f"cluster {args.name} is down")
    return 0


def register(sub: Any) -> None:
    from ..cloud.skypilot import CLOUDS, ENGINES

    p = sub.add_parser("cluster", help="GPU nodes for a Ray cluster of jobs, brought up by SkyPilot (up|status|down)")
    csub = p.add_subparsers(dest="cluster_command", metavar="ACTION", required=True)

    q = csub.add_parser("up", help="provision nodes, install lora-nb + Ray + the engine, start or join a Ray cluster")
    q.add_argument("--gpus", default="RTX4090:1", metavar="NAME:COUNT", help="accelerators per node (default RTX4090:1)")
    q.add_argument("--nodes", type=int, default=1, metavar="N", help="nodes (Vast.ai: 1 per cluster; SkyPilot has no multi-node there)")
    q.add_argument("--cloud", default="vast", choices=[*CLOUDS, "any"], help="where to rent (default vast; any: SkyPilot picks)")
    q.add_argument("--autostop", type=int, default=30, metavar="MIN", help="stop the cluster after MIN idle minutes (default 30)")
    q.add_argument("--no-autostop", action="store_true", help="never stop it by itself")
    q.add_argument("--engine", choices=ENGINES, help="training engine to install on every node")
    q.add_argument("--name", default="lora-nb", help="cluster name (default lora-nb)")
    q.add_argument("--spec", default="lora-nb[gpu]", help="pip requirement for lora-nb on the nodes, e.g. git+https://…/lora-nb.git")
    q.add_argument("--provision-script", metavar="PATH", help="the provisioning script (default: scripts/vast-provision.sh of this checkout)")
    q.add_argument("--dryrun", action="store_true", help="check the task with SkyPilot's parser and optimizer, then sky.launch(dryrun=True); rent nothing")
    q.add_argument("--print-yaml", action="store_true", help="print the SkyPilot task YAML and exit")
    q.add_argument("--json", action="store_true", help="with --dryrun: SkyPilot's answer as JSON")
    q.set_defaults(func=cmd_up)

    q = csub.add_parser("status", help="SkyPilot's view of the cluster(s)")
    q.add_argument("--name", default=None, help="one cluster (default: all)")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_status)

    q = csub.add_parser("down", help="tear the cluster down (its disks too)")
    q.add_argument("--name", default="lora-nb")
    q.set_defaults(func=cmd_down)
