"""Ray jobs without a shared file system (``ray_files = 'ship'``): inputs go out in the Ray Job's
``working_dir``, outputs come back through Ray, checked by size and sha256.

Out (at submit, by the job's supervisor): the job's run folder (rendered configs, ``job.json``,
``task.json``) and the input folders the job names in ``meta["inputs"]`` (a training run names its
dataset folders) are packed into one tar in a staging folder, with ``plan.json`` (the path map, the
command). That folder is the Ray Job's ``runtime_env={"working_dir": ...}``: Ray zips and uploads it
to the cluster (its GCS), so the whole package must stay under Ray's limit, ``GCS_STORAGE_MAX_SIZE``
(512 MiB in Ray 2.60, the gRPC message size; ``RAY_max_grpc_message_size`` changes it on both sides).
Larger inputs are refused at submit (:func:`check_inputs`). Base models are not shipped: a model
path must exist on the node at the same path, or be a hub id the engine downloads there.

On the node (:mod:`lora_nb.jobs.ray_node`) the tar is laid out under a job root,
``<ray_node_root>/<submission id>`` (``/tmp/lora-nb-node`` by default), at ``job root + local
absolute path``; the paths in the command, its environment and the run folder's text files are
rewritten to those node paths. When the command ends the wrapper lists what it created or changed
in the run folder (``manifest.json``: relative path, size, sha256).

Back (:func:`fetch_outputs`, by the supervisor once the Ray job ended): through Ray Client
(``ray.init("ray://HEAD:10001")``), small tasks pinned to the node the job ran on
(``NodeAffinitySchedulingStrategy``, the job's ``driver_node_id``) read the manifest and each file
in 4 MiB chunks; each file is written to a temporary name in the local run folder, checked against
the manifest's size and sha256, then renamed. A missing file or a wrong hash fails the job with one
sentence and leaves nothing under the final name. Log lines name node paths; the supervisor maps
them back (:func:`to_local`) so artifacts name the local files.

>>> plan = {"map": [["/w/runs/a", "/n/j/w/runs/a"], ["/w/datasets/d", "/n/j/w/datasets/d"]]}
>>> to_node("--data /w/datasets/d --out /w/runs/a/output /w/datasets/d2", plan)
'--data /n/j/w/datasets/d --out /n/j/w/runs/a/output /w/datasets/d2'
>>> to_local("saved /n/j/w/runs/a/output/x.safetensors", plan)
'saved /w/runs/a/output/x.safetensors'
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import Any, Iterable

from ..errors import ClusterError

__all__ = ["SHARED", "SHIP", "RAY_PACKAGE_LIMIT", "package_limit", "input_paths", "check_inputs", "stage",
           "to_node", "to_local", "fetch_outputs"]

SHARED, SHIP = "shared", "ship"
RAY_PACKAGE_LIMIT = 512 * 1024 * 1024   # Ray 2.60: ray_constants.GRPC_CPP_MAX_MESSAGE_SIZE, packaging.GCS_STORAGE_MAX_SIZE
HEADROOM = 1024 * 1024                  # tar headers and plan.json on top of the files
CHUNK = 4 * 1024 * 1024                 # one read on the node
FETCH_TIMEOUT = 120.0                   # one Ray call while fetching
LEFT_HERE = ("log", "remote.json", "ship.json", "exit.json")   # the supervisor's own files stay local
PAYLOAD, PLAN, MANIFEST = "payload.tar", "plan.json", "manifest.json"


def package_limit() -> int:
    """The most bytes Ray takes as a job's ``working_dir`` package (its GCS storage limit)."""
    try:
        from ray._private.runtime_env.packaging import GCS_STORAGE_MAX_SIZE

        return int(GCS_STORAGE_MAX_SIZE)
    except Exception:   # Ray missing or moved: its 2.60 value
        return int(os.environ.get("RAY_max_grpc_message_size") or RAY_PACKAGE_LIMIT)


def _mib(n: int) -> str:
    return f"{n / 2**20:.0f} MiB" if n % 2**20 == 0 else f"{n / 2**20:.1f} MiB"


def _left_here(name: str) -> bool:
    return name in LEFT_HERE or name.startswith("supervisor") or name.endswith(".tmp")


def _files(root: Path, top: bool) -> Iterable[Path]:
    """Every file under ``root`` (``root`` itself if it is a file); ``top``: skip the supervisor's own files."""
    if root.is_file():
        yield root
        return
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames.sort()
        for name in sorted(filenames):
            if top and Path(dirpath) == root and _left_here(name):
                continue
            yield Path(dirpath) / name


def input_paths(run_dir: Path, meta: dict[str, Any]) -> list[Path]:
    """What a shipped job takes to the node: its run folder, then the folders/files ``meta['inputs']`` names."""
    out = [Path(run_dir).resolve()]
    for p in meta.get("inputs") or []:
        path = Path(str(p)).resolve()
        if path not in out:
            out.append(path)
    return out


def check_inputs(paths: list[Path], limit: int | None = None) -> int:
    """Their total size in bytes; ClusterError if it is over what Ray accepts, or one of them is missing."""
    limit = package_limit() if limit is None else limit
    total = 0
    for i, p in enumerate(paths):
        if not p.exists():
            if i == 0:
                continue   # the run folder of a job not reserved yet
            raise ClusterError(f"The job's input {p} does not exist, so it cannot be shipped to the Ray cluster.",
                               fix="Check the dataset's folder, or name existing inputs.")
        total += sum(f.stat().st_size for f in _files(p, top=(i == 0)))
    if total + HEADROOM >= limit:
        raise ClusterError(f"The job's inputs are {_mib(total)}, over the {_mib(limit)} Ray accepts in a job's working_dir "
                           "(its package limit, GCS_STORAGE_MAX_SIZE), so nothing was submitted.",
                           fix="Put the dataset on a path every node sees and use shared files "
                               "(ws.jobs.set_executor(ADDRESS, files='shared')), or ship a smaller dataset.")
    return total


def _node_path(job_root: str, local: Path | str) -> str:
    return job_root.rstrip("/") + "/" + str(local).lstrip("/")


def _sub(text: str, pairs: list[tuple[str, str]]) -> str:
    for old, new in sorted(pairs, key=lambda p: -len(p[0])):
        text = re.sub(re.escape(old) + r"(?![\w.-])", lambda _m, new=new: new, text)
    return text


def to_node(text: str, plan: dict[str, Any]) -> str:
    """``text`` with every shipped local path replaced by its place on the node."""
    return _sub(text, [(a, b) for a, b in plan["map"]])


def to_local(text: str, plan: dict[str, Any]) -> str:
    """``text`` (a log line from the node) with node paths replaced by the local ones."""
    return _sub(text, [(b, a) for a, b in plan["map"]])


def stage(run_dir: Path, meta: dict[str, Any], argv: list[str], cwd: str, env_keys: list[str], job_root: str) -> tuple[Path, dict[str, Any]]:
    """A staging folder (``payload.tar`` + ``plan.json``) for ``working_dir``, and the plan; ClusterError if too big."""
    paths = input_paths(run_dir, meta)
    check_inputs(paths)
    plan = {"job_root": job_root, "map": [[str(p), _node_path(job_root, p)] for p in paths],
            "run_dir": [str(paths[0]), _node_path(job_root, paths[0])], "argv": argv, "cwd": cwd, "env_keys": env_keys}
    staging = Path(tempfile.mkdtemp(prefix="lora-nb-ship-"))
    try:
        with tarfile.open(staging / PAYLOAD, "w", dereference=True) as tar:   # a linked image: its bytes
            for i, p in enumerate(paths):
                for f in _files(p, top=(i == 0)):
                    tar.add(str(f), arcname=str(f).lstrip("/"), recursive=False)
        (staging / PLAN).write_text(json.dumps(plan), encoding="utf-8")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return staging, plan


# -- on the node, as Ray tasks (imported there by reference: lora-nb is installed on every node) ------------------
def node_manifest(job_root: str) -> dict[str, Any] | None:
    """The wrapper's manifest on this node, or None if it wrote none."""
    try:
        return json.loads((Path(job_root) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def node_read(path: str, offset: int, size: int) -> bytes:
    """``size`` bytes of ``path`` on this node from ``offset`` (fewer at its end)."""
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(size)


def node_remove(job_root: str) -> bool:
    """Remove the job's files from this node."""
    shutil.rmtree(job_root, ignore_errors=True)
    return not os.path.exists(job_root)


def fetch_outputs(client_address: str, node_id: str, plan: dict[str, Any], run_dir: Path) -> tuple[list[str], str | None]:
    """Copy the files the node's manifest lists into ``run_dir``; (relative paths fetched, failure reason or None)."""
    try:
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
    except ImportError:
        return [], "Ray is not installed here, so the job's outputs could not be fetched from its node"
    try:
        ray.init(client_address, logging_level="ERROR", log_to_driver=False)
    except Exception as e:
        return [], f"the job's outputs could not be fetched: Ray Client at {client_address} did not answer ({_first(e)})"
    try:
        pin = NodeAffinitySchedulingStrategy(node_id=node_id, soft=False)

        def call(fn: Any, *args: Any) -> Any:
            return ray.get(ray.remote(num_cpus=0, max_retries=2)(fn).options(scheduling_strategy=pin).remote(*args),
                           timeout=FETCH_TIMEOUT)

        job_root = plan["job_root"]
        manifest = call(node_manifest, job_root)
        if manifest is None:
            return [], f"the node {node_id[:12]} has no list of the job's outputs ({job_root}/{MANIFEST})"
        node_run, local_run = plan["run_dir"][1], Path(run_dir)
        done: list[str] = []
        for entry in manifest["files"]:
            rel, size, sha = entry["path"], int(entry["size"]), entry["sha256"]
            if rel.startswith("/") or ".." in Path(rel).parts:
                return done, f"the node listed an output outside the run folder ({rel})"
            final = local_run / rel
            final.parent.mkdir(parents=True, exist_ok=True)
            tmp = final.with_name(f".{final.name}.lora-nb-part")
            h, got = hashlib.sha256(), 0
            try:
                with open(tmp, "wb") as out:
                    while True:
                        data = call(node_read, node_run + "/" + rel, got, CHUNK)
                        if not data:
                            break
                        out.write(data)
                        h.update(data)
                        got += len(data)
                if got != size or h.hexdigest() != sha:
                    raise ValueError(f"the output {rel} came back from node {node_id[:12]} as {got} bytes with sha256 "
                                     f"{h.hexdigest()[:16]}..., not the {size} bytes and {sha[:16]}... its manifest lists")
                os.replace(tmp, final)
            except BaseException as e:
                tmp.unlink(missing_ok=True)
                if isinstance(e, ValueError):
                    return done, str(e)
                if isinstance(e, FileNotFoundError) or "No such file" in str(e):
                    return done, f"the output {rel} is missing on node {node_id[:12]}"
                raise
            done.append(rel)
        call(node_remove, job_root)
        return done, None
    except Exception as e:
        return [], f"the job's outputs could not be fetched from node {node_id[:12]} ({_first(e)})"
    finally:
        try:
            ray.shutdown()
        except Exception:
            pass


def _first(e: BaseException) -> str:
    lines = [l for l in str(e).strip().splitlines() if l.strip()]
    return (lines[-1] if lines else type(e).__name__)[:300]
