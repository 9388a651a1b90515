"""Runs SkyPilot's Python API for ``lora-nb cluster``, inside the Python that has SkyPilot.

    <skypilot python> lora_nb/cloud/sky_driver.py < request.json

Run by file path (it imports only the standard library and ``sky``, never lora_nb), because SkyPilot lives
in its own venv. The request is one JSON object: ``{"action": "validate" | "launch" | "status" | "down",
"task": <task_config>, "cluster": NAME, "autostop": MIN | null, "dryrun": bool}``. The answer is the last
line of stdout: ``@@lora-nb-sky {json}``.

- ``validate``: ``sky.Task.from_yaml_config`` (SkyPilot's schema and parser), the YAML round trip, then
  SkyPilot's optimizer in this process (``sky.optimizer.Optimizer.optimize``: enabled clouds and the
  catalog, no API server, nothing launched); an optimizer refusal is reported, not raised.
- ``launch``: ``sky.launch(task, cluster_name, idle_minutes_to_autostop=..., dryrun=...)`` through SkyPilot's
  API server (started locally by SkyPilot), streamed until it is up.
- ``status`` / ``down``: ``sky.status`` / ``sky.down`` of the cluster.
"""
from __future__ import annotations

import json
import sys
from typing import Any

MARK = "@@lora-nb-sky "


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}".strip()


def validate(task_cfg: dict) -> dict[str, Any]:
    import sky
    from sky import dag as dag_lib
    from sky import optimizer

    task = sky.Task.from_yaml_config(task_cfg)
    again = sky.Task.from_yaml_config(task.to_yaml_config())
    out: dict[str, Any] = {"parsed": True, "name": task.name, "num_nodes": task.num_nodes,
                           "resources": [str(r) for r in task.resources], "roundtrip": again.to_yaml_config() == task.to_yaml_config(),
                           "sky_version": sky.__version__,
                           "yaml": {k: v for k, v in task.to_yaml_config().items() if not k.startswith("_")}}
    with dag_lib.Dag() as dag:
        dag.add(task)
    try:
        optimizer.Optimizer.optimize(dag, quiet=True)
    except Exception as e:      # no enabled cloud, nothing in the catalog, a feature the cloud lacks
        out.update(optimized=False, error=_first_line(e))
        return out
    best = task.best_resources
    out.update(optimized=True, cloud=str(best.cloud), instance_type=best.instance_type,
               accelerators=best.accelerators, price_per_hour=best.get_cost(3600) * task.num_nodes)
    return out


def launch(task_cfg: dict, cluster: str, autostop: int | None, dryrun: bool) -> dict[str, Any]:
    import sky

    task = sky.Task.from_yaml_config(task_cfg)
    request = sky.launch(task, cluster_name=cluster, idle_minutes_to_autostop=autostop, dryrun=dryrun)
    job_id, handle = sky.stream_and_get(request)
    return {"cluster": cluster, "job_id": job_id, "head_ip": getattr(handle, "head_ip", None), "dryrun": dryrun}


def status(cluster: str | None) -> dict[str, Any]:
    import sky

    rows = sky.get(sky.status(cluster_names=[cluster] if cluster else None))
    out = []
    for r in rows:
        get = (lambda k: r.get(k)) if isinstance(r, dict) else (lambda k: getattr(r, k, None))
        handle = get("handle")
        out.append({"name": get("name"), "status": str(getattr(get("status"), "value", get("status"))),
                    "autostop": get("autostop"), "head_ip": getattr(handle, "head_ip", None),
                    "resources": str(getattr(handle, "launched_resources", "") or "")})
    return {"clusters": out}


def down(cluster: str) -> dict[str, Any]:
    import sky

    sky.stream_and_get(sky.down(cluster))
    return {"cluster": cluster, "down": True}


def main() -> int:
    req = json.loads(sys.stdin.read())
    action = req.get("action")
    try:
        if action == "validate":
            out = validate(req["task"])
        elif action == "launch":
            out = launch(req["task"], req["cluster"], req.get("autostop"), bool(req.get("dryrun")))
        elif action == "status":
            out = status(req.get("cluster"))
        elif action == "down":
            out = down(req["cluster"])
        else:
            out = {"error": f"unknown action {action!r}"}
    except Exception as e:       # one line back to lora-nb, which turns it into its own error
        out = {"error": _first_line(e)}
    print(MARK + json.dumps(out, default=str), flush=True)
    return 0 if "error" not in out or action == "validate" else 1


if __name__ == "__main__":
    sys.exit(main())
