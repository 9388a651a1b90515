#!/usr/bin/env python3
"""Record the REAL ai-toolkit's console output, exit codes and files into tests/fixtures/aitoolkit/ (maintainer tool).

    bash scripts/aitoolkit-cpu-setup.sh
    .venv/bin/python tests/engines/aitoolkit_real/record.py [NAME ...]     # default: every scenario

Each scenario renders its job.yaml with lora-nb's own engine adapter (``get_engine("ai-toolkit", ws).prepare``) in a
scratch workspace (the 4-image 64 px ``alice`` dataset of tests/engines/conftest.py), then runs the launch plan's exact
command, working folder and environment under ../shared/tools/kohya-cpu/capture.py (stdout and stderr on separate pipes,
raw bytes, arrival order and timing). Stops are sent like lora-nb's supervisor sends them: to the process group.
Afterwards the files the run left are listed, and absolute paths are rewritten to stable placeholders:

    <scratch workspace>            -> /WS            (so the run folder is /WS/runs/<id>, the dataset /WS/datasets/alice)
    <engine checkout>              -> /opt/ai-toolkit
    <engine venv>                  -> /opt/ai-toolkit/venv
    <tiny models folder>           -> /opt/models
"""
from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
SHARED = Path(os.environ.get("LORA_NB_SHARED", REPO.parent / "shared"))
CAPTURE = SHARED / "tools" / "kohya-cpu" / "capture.py"
OUT = REPO / "tests" / "fixtures" / "aitoolkit"
CACHE = Path(os.environ.get("LORA_NB_ENGINE_CACHE", Path.home() / ".cache" / "lora-nb" / "engines")) / "ai-toolkit"
ENGINE = Path(os.environ.get("LORA_NB_REAL_AITOOLKIT_DIR", CACHE / "src" / "ai-toolkit"))
PYTHON = Path(os.environ.get("LORA_NB_REAL_AITOOLKIT_PYTHON", CACHE / "venv" / "bin" / "python"))
MODELS = Path(os.environ.get("LORA_NB_REAL_AITOOLKIT_MODELS", CACHE / "models"))

sys.path.insert(0, str(REPO))
sys.path.insert(0, str(HERE))
from scenarios import BASE, SCENARIOS  # noqa: E402


def make_workspace(root: Path):
    import lora_nb
    from PIL import Image

    ws = lora_nb.Workspace(root)
    ws.settings.set("aitoolkit_dir", str(ENGINE))
    ws.settings.set("aitoolkit_python", str(PYTHON))
    ds = ws.datasets.create("alice")

    def png(i: int) -> bytes:
        buf = io.BytesIO()
        Image.new("RGB", (64, 64), (40 * i, 80, 120)).save(buf, "PNG")
        return buf.getvalue()

    ds.add_images([(f"img{i}.png", png(i)) for i in range(4)], subset="5_alice")
    for item in ds.images():
        ds.captions.set(item, f"alice, portrait, style {item.path.stem}")
    return ws


def render(ws, name: str, overrides: dict, earlier_runs: dict[str, Path]):
    from lora_nb import TrainingConfig
    from lora_nb.engines import get_engine

    kw = dict(BASE, pretrained_model_name_or_path=str(MODELS / "flux-tiny"))
    kw.update({k: v for k, v in overrides.items() if not k.startswith("_")})
    if "_resume_from" in overrides:
        kw["resume"] = str(earlier_runs[overrides["_resume_from"]])
    cfg = TrainingConfig(**kw)
    run_dir = ws.runs_dir / f"rec-{name}"
    run_dir.mkdir(parents=True)
    plan = get_engine("ai-toolkit", ws).prepare(cfg, run_dir)
    return cfg, run_dir, plan


def child_of(pid: int) -> int | None:
    """The engine process: capture.py's only child (it starts it in a new session, so its pid is the group id)."""
    try:
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout.split()
        return int(out[0]) if out else None
    except (ValueError, IndexError):
        return None


def run_capture(prefix: Path, plan, stop: dict | None) -> None:
    env = dict(os.environ, **plan.env)
    cmd = [sys.executable, str(CAPTURE), str(prefix)]
    if stop and stop["signal"] == "SIGTERM":       # capture.py's own trigger sends SIGTERM
        cmd += ["--term-when", stop["when"], "--term-target", "pgrp", "--term-delay", str(stop.get("delay", 0))]
    cmd += ["--", *plan.argv]
    t0 = time.time()
    proc = subprocess.Popen(cmd, cwd=plan.cwd, env=env)
    sent_at = None
    if stop and stop["signal"] == "SIGINT":
        rx = re.compile(stop["when"])
        chunks = Path(str(prefix) + ".chunks.jsonl")
        seen, sent = "", False
        while proc.poll() is None and not sent:
            time.sleep(0.1)
            if chunks.exists():
                seen = "".join(json.loads(l)["b"] for l in chunks.read_text().splitlines() if l.strip())
            if rx.search(seen):
                time.sleep(stop.get("delay", 0))
                pgid = child_of(proc.pid)
                if pgid:
                    os.killpg(pgid, signal.SIGINT)       # as lora-nb's supervisor does: the whole group
                    sent, sent_at = True, time.time() - t0
    proc.wait()
    if sent_at is not None:      # (capture.py owns the chunks file; the time is from our start, within a few ms of its)
        with open(str(prefix) + ".exit", "a") as f:
            f.write(f"sigint_sent_to pgrp\nsigint_sent_at_seconds {sent_at:.3f}\n")


def list_files(prefix: Path, roots: list[Path]) -> None:
    lines = []
    for root in roots:
        if not root.exists():
            continue
        for p in sorted(root.rglob("*")):
            if p.is_file():
                lines.append(f"{p.stat().st_size:>10}  {p}")
    Path(str(prefix) + ".files.txt").write_text("\n".join(lines) + "\n")


def rewrite(prefix: Path, mapping: list[tuple[str, str]]) -> None:
    """Replace absolute paths in every file of a capture (the chunks are JSON: replace inside the decoded text)."""
    def sub(text: str) -> str:
        for old, new in mapping:
            text = text.replace(old, new)
        return text

    for suffix in (".stdout", ".stderr", ".combined", ".exit", ".files.txt"):
        p = Path(str(prefix) + suffix)
        if p.exists():
            p.write_bytes(sub(p.read_bytes().decode("latin-1")).encode("latin-1"))
    p = Path(str(prefix) + ".chunks.jsonl")
    rows = [json.loads(l) for l in p.read_text().splitlines() if l.strip()]
    p.write_text("".join(json.dumps(dict(r, b=sub(r["b"]))) + "\n" for r in rows))


def main(names: list[str]) -> None:
    assert (ENGINE / "run.py").is_file() and PYTHON.is_file(), "run scripts/aitoolkit-cpu-setup.sh first"
    (OUT / "captures").mkdir(parents=True, exist_ok=True)
    (OUT / "configs").mkdir(exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="aitk-rec-"))
    ws = make_workspace(scratch / "ws")
    mapping = [(str(PYTHON.parent.parent), "/opt/ai-toolkit/venv"), (str(ENGINE), "/opt/ai-toolkit"),
               (str(MODELS), "/opt/models"), (str(scratch / "ws"), "/WS")]
    runs: dict[str, Path] = {}
    for name, spec in SCENARIOS.items():
        if names and name not in names and not any(SCENARIOS[n].get("_resume_from") == name for n in names):
            continue
        cfg, run_dir, plan = render(ws, name, spec, runs)
        runs[name] = run_dir
        prefix = OUT / "captures" / name
        for old in OUT.glob(f"captures/{name}.*"):
            old.unlink()
        if "_edit_job" in spec:                    # a job file edited by hand (a broken variant)
            spec["_edit_job"](plan.files["job"])
        t0 = time.time()
        run_capture(prefix, plan, spec.get("_stop"))
        list_files(prefix, [run_dir / "output", ws.datasets_dir / "alice"])
        shutil.copy(plan.files["job"], OUT / "configs" / f"{name}.job.yaml")
        rewrite(prefix, mapping)
        cfgfile = OUT / "configs" / f"{name}.job.yaml"
        text = cfgfile.read_text()
        for old, new in mapping:
            text = text.replace(old, new)
        cfgfile.write_text(text)
        final = run_dir / "output" / cfg.output_name / f"{cfg.output_name}.safetensors"
        if spec.get("_keep_lora") and final.is_file():
            (OUT / "loras").mkdir(exist_ok=True)
            shutil.copy(final, OUT / "loras" / f"{name}.safetensors")
            from safetensors import safe_open

            with safe_open(str(final), "np") as f:
                meta = f.metadata()
            (OUT / f"{name}.lora_metadata.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
        print(f"{name}: {Path(str(prefix) + '.exit').read_text().split()[:2]} in {time.time() - t0:.0f} s", flush=True)
    shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1:])
