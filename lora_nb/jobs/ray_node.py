"""The node side of a shipped Ray job (see :mod:`lora_nb.jobs.ray_ship`): ``python -m lora_nb.jobs.ray_node plan.json``.

Ray starts it in the unpacked ``working_dir`` (``plan.json`` + ``payload.tar``). It lays the
payload out under the plan's job root (each file at ``job root + its local absolute path``),
rewrites the local paths in the run folder's text files, the command and the job's environment to
those node paths, runs the command there (forwarding SIGTERM/SIGINT to it), and then writes
``<job root>/manifest.json``: relative path, size and sha256 of every file of the run folder the
command created or changed. It exits with the command's exit code.

Test hook: ``LORA_NB_RAY_NODE_CORRUPT=<relative path>`` flips one byte of that output after the
manifest is written (a transfer gone wrong, for the tests of the hash check).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

from .ray_ship import MANIFEST, PAYLOAD, PLAN, to_node

TEXT_LIMIT = 1024 * 1024    # run-folder files up to this size are checked for paths to rewrite


def lay_out(plan: dict[str, Any], here: Path) -> Path:
    """Unpack the payload under the job root and rewrite paths in the run folder's text files; the node's run folder."""
    root = Path(plan["job_root"])
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    with tarfile.open(here / PAYLOAD) as tar:
        tar.extractall(root, filter="data")
    run = Path(plan["run_dir"][1])
    run.mkdir(parents=True, exist_ok=True)
    for path in sorted(run.rglob("*")):
        if not path.is_file() or path.stat().st_size > TEXT_LIMIT:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        new = to_node(text, plan)
        if new != text:
            path.write_text(new, encoding="utf-8")
    return run


def snapshot(run: Path) -> dict[str, tuple[int, int]]:
    """Size and mtime of every file under ``run``."""
    out = {}
    for p in run.rglob("*"):
        if p.is_file():
            st = p.stat()
            out[p.relative_to(run).as_posix()] = (st.st_size, st.st_mtime_ns)
    return out


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_manifest(plan: dict[str, Any], run: Path, before: dict[str, tuple[int, int]], exit_code: int) -> list[dict[str, Any]]:
    """``<job root>/manifest.json`` of the files the command created or changed; its entries."""
    after = snapshot(run)
    files = [{"path": rel, "size": run.joinpath(rel).stat().st_size, "sha256": sha256(run / rel)}
             for rel in sorted(after) if before.get(rel) != after[rel]]
    tmp = Path(plan["job_root"]) / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps({"exit_code": exit_code, "files": files}, indent=1), encoding="utf-8")
    os.replace(tmp, Path(plan["job_root"]) / MANIFEST)
    return files


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    here = Path.cwd()
    plan = json.loads((here / (args[0] if args else PLAN)).read_text(encoding="utf-8"))
    try:
        run = lay_out(plan, here)
    except (OSError, tarfile.TarError) as e:
        print(f"lora-nb: the job's files could not be laid out under {plan['job_root']} on this node ({e}).", file=sys.stderr)
        return 2
    before = snapshot(run)
    env = dict(os.environ)
    for key in plan["env_keys"]:
        if key in env:
            env[key] = to_node(env[key], plan)
    cmd = [to_node(a, plan) for a in plan["argv"]]
    cwd = to_node(plan["cwd"], plan)
    if cwd == plan["cwd"] or not os.path.isdir(cwd):   # a folder that was not shipped: the run folder
        cwd = str(run)
    try:
        child = subprocess.Popen(cmd, cwd=cwd, env=env)
    except OSError as e:
        print(f"lora-nb: {cmd[0]} could not be started on this node ({e}).", file=sys.stderr)
        write_manifest(plan, run, before, 127)
        return 127

    def forward(signum: int, _frame: Any) -> None:
        try:
            child.send_signal(signum)
        except OSError:
            pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    code = child.wait()
    code = 128 - code if code < 0 else code
    write_manifest(plan, run, before, code)
    corrupt = os.environ.get("LORA_NB_RAY_NODE_CORRUPT")
    if corrupt and (run / corrupt).is_file():
        with open(run / corrupt, "r+b") as f:
            first = f.read(1)
            f.seek(0)
            f.write(bytes([(first[0] if first else 0) ^ 0xFF]))
    return code


if __name__ == "__main__":
    sys.exit(main())
