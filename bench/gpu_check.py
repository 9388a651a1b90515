"""GPU check (issue 13, item 5): one table of GPU figures, each against a baseline measured in the same run.

    bash scripts/gpu-check.sh                 # on the GPU machine: sets up the engines, then runs this driver
    bash scripts/gpu-check.sh --dry-run       # anywhere: CPU, tiny sizes; the GPU rows say "skipped: no CUDA device"
    .venv/bin/python bench/gpu_check.py --dry-run --out DIR      # the driver alone (what the shell script runs)

Rows (what | figure | baseline | ratio | goal | verdict | seconds):

  tagging      WD14-size ViT tagger (bench/tagging_throughput.build_vit: wd-vit-tagger-v3's layout, 10,861 labels) on
               real onnxruntime sessions, lora_nb's Tagger end to end over the same JPEGs: CUDAExecutionProvider vs
               CPUExecutionProvider. Goal: identical tags (the threshold is put at the CPU scores' 99.8th percentile,
               about 20 tags an image, so the comparison is not trivial; tags that flip only because both scores sit
               within the largest score difference, at most 1e-3, of the threshold are counted and reported).
  resize       lora_nb.lora.resize of a rank-128 LoRA with all 722 SDXL U-Net attention/feed-forward modules to rank
               32: CUDA (torch) vs CPU (numpy). Goal: equal up @ down products (max |diff| <= 1e-4 of the weight scale).
  sd15, sdxl   the real sd-scripts (train_network.py / sdxl_train_network.py) on random full-size weights
               (bench/gpu_models.py), through lora_nb (ws.jobs.submit_training: supervisor, log, parser, follower) vs the
               same command by hand (the LaunchPlan lora_nb renders, run with plain subprocess). Figure: steady-state
               it/s read from the engine's own progress bar (steps from a quarter of the run to the end, so start-up and
               the first, slow steps do not count). Goal: ratio >= 0.99.
  flux         the real ai-toolkit training FLUX.1 LoRA steps on random full-size weights in bf16, through lora_nb.
               Goal: the steps run, the loss is finite and the LoRA is saved.
  *-cpu        (--dry-run) the same comparisons with a CPU candidate, so the machinery is tested without a GPU:
               tagging with onnxruntime's graph optimisations off vs on, resize with torch on the CPU vs numpy.
  florence2    natural-language captions (issue 16), lora_nb's Captioner (the caption job's batched, pipelined path) on a
               random model of Florence-2-large's size built on the GPU from the real layout (bench/captioning_throughput.
               real_size_model: DaViT + BART-large, 0.77 B, 768 px), bf16 on CUDA vs the same weights in fp32 on the CPU, images/s
               at 32 new tokens an image. Goal: every image captioned, CUDA faster than the CPU.
  joycaption   the same for JoyCaption beta one's layout (SigLIP so400m + Llama 3.1 8B, 8.5 B, bf16, about 17 GB): lora_nb
               batched vs a plain one-image-at-a-time transformers loop on the same model on CUDA (fp32 on the CPU would
               need 34 GB and minutes a caption: not a useful baseline). Goal: ratio >= 2 from batching.
  captioning-cpu (--dry-run) the captioner machinery on the CPU: a small random Florence-2, lora_nb batched vs the plain
               loop on the same model and images. Goal: the same captions (greedy decoding, batched = one at a time).
  standin      (--dry-run) the sd15 machinery (submit_training vs by hand, progress-bar parsing, ratio) against the
               stand-in sd-scripts of tests/engines/fake_sdscripts, which replays a recorded real run.
  --cpu-engines  (with --dry-run) sd15 and flux on the CPU engine set-ups (scripts/kohya-cpu-setup.sh and
               scripts/aitoolkit-cpu-setup.sh): a rehearsal of the real engine paths, slow, ratios not judged.

Every step has a time limit, taken from one overall budget (--budget, or --deadline from the shell script): a step
that would not fit is "skipped: time budget ...", never started. The table is printed, and written as
gpu-check.md and gpu-check.json (rewritten after every row) into --out, with the engines' logs in logs.tar.gz.
Exit status: 1 when a row failed, else 0 (skipped rows are not failures).
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import re
import signal
import subprocess
import sys
import tarfile
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench")]

NA = "—"
GPU_ROWS = ["tagging", "resize", "sd15", "sdxl", "flux", "florence2", "joycaption"]
DRY_ROWS = ["tagging", "tagging-cpu", "resize", "resize-cpu", "sd15", "sdxl", "flux", "standin", "florence2", "joycaption",
            "captioning-cpu"]
ORT_GPU_WHEEL = "onnxruntime-gpu 1.31.1 for Python 3.12 is a 244 MiB wheel"


# ---------------------------------------------------------------------------------------------- table and budget
@dataclass
class Row:
    key: str
    what: str
    figure: str = NA
    baseline: str = NA
    ratio: str = NA
    goal: str = NA
    verdict: str = "skipped: not run"
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.verdict.startswith("fail")


class Skip(Exception):
    """The step cannot run here; the message is the exact reason."""


class Fail(Exception):
    """The step ran and did not meet its goal, or the engine failed."""


class Budget:
    """One deadline for the whole check; each step asks for its share before it starts."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline

    def left(self) -> float:
        return self.deadline - time.time()

    def grant(self, want: float, need: float | None = None) -> tuple[float, bool]:
        """(seconds the step may take, whether the budget cut it below ``want``); Skip if less than ``need`` is left."""
        left = self.left()
        need = want if need is None else need
        if left < need:
            raise Skip(f"time budget: {max(0.0, left):.0f} s left, this step needs about {need:.0f} s")
        return min(want, left), left < want


def render_table(rows: list[Row], header: str) -> str:
    cols = ["what", "figure", "baseline", "ratio", "goal", "verdict", "s"]
    cells = [[r.what, r.figure, r.baseline, r.ratio, r.goal, r.verdict, f"{r.seconds:.0f}"] for r in rows]
    lines = [header, "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(c.replace("|", "/").replace("\n", " ") for c in row) + " |" for row in cells]
    return "\n".join(lines) + "\n"


@dataclass
class Ctx:
    args: argparse.Namespace
    work: Path
    out: Path
    models: Path
    budget: Budget
    cuda: str | None          # None when CUDA is usable, else the reason it is not
    logs: list[Path] = field(default_factory=list)
    _ws: Any = None

    @property
    def dry(self) -> bool:
        return bool(self.args.dry_run)

    def workspace(self):
        if self._ws is None:
            import lora_nb

            self._ws = lora_nb.Workspace(self.work / "ws")
        return self._ws


def cuda_reason(dry_run: bool) -> str | None:
    if dry_run:
        return "no CUDA device (--dry-run runs everything on the CPU)"
    try:
        import torch
    except ImportError as e:
        return f"no CUDA device: torch does not import here ({e})"
    if not torch.cuda.is_available():
        return f"no CUDA device: torch {torch.__version__} sees none (torch.cuda.is_available() is False)"
    return None


def device_line() -> str:
    try:
        import torch

        if torch.cuda.is_available():
            p = torch.cuda.get_device_properties(0)
            return f"{p.name}, {p.total_memory / 2**30:.0f} GiB, torch {torch.__version__}, CUDA {torch.version.cuda}"
        return f"no CUDA device, torch {torch.__version__}"
    except ImportError:
        return "no torch"


# ---------------------------------------------------------------------------------------------- subprocess helpers
def run_logged(argv: list[str], log: Path, timeout: float, limited: bool, cwd: str | Path | None = None,
               env: dict[str, str] | None = None, what: str = "the command") -> float:
    """Run ``argv`` with stdout and stderr into ``log`` (as `cmd > log 2>&1` would), in its own process group,
    killed at ``timeout``. Returns the wall time; raises Fail on a non-zero exit, Fail or Skip on the time limit."""
    log.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    with open(log, "wb") as f:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            rc = proc.wait(timeout=max(1.0, timeout))
        except subprocess.TimeoutExpired:
            kill_group(proc)
            msg = f"{what} did not finish in {timeout:.0f} s (log: {log.name})"
            raise (Skip("time budget ran out: " + msg) if limited else Fail(msg)) from None
    if rc != 0:
        raise Fail(f"{what} exited with {rc}: {last_error(log)}")
    return time.monotonic() - t0


def kill_group(proc: subprocess.Popen) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=10)
            return
        except subprocess.TimeoutExpired:
            continue


def last_error(log: Path) -> str:
    """The engine's own error: the last line of the first traceback, else the last non-empty line."""
    try:
        lines = [ln.strip() for ln in re.split(r"[\r\n]+", log.read_text(errors="replace")) if ln.strip()]
    except OSError:
        return "(no log)"
    for i, ln in enumerate(lines):
        if ln.startswith("Traceback (most recent call last)"):
            for nxt in lines[i + 1:]:
                if re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit)\b", nxt):
                    return nxt[:300]
    return lines[-1][:300] if lines else "(empty log)"


# ---------------------------------------------------------------------------------------------- progress bars
BAR = re.compile(r"steps: +\d+%\|[^|]*\| *(\d+)/(\d+) \[[^,\]]*, +(\d+(?:\.\d+)?)(it/s|s/it)")


def bar_points(text: str) -> list[tuple[int, int, float]]:
    """(step, total, average it/s) of every redraw of sd-scripts' ``steps`` bar (tqdm, smoothing=0: the rate shown is
    the average since the bar started)."""
    out = []
    for m in BAR.finditer(text):
        n, total, value, unit = int(m.group(1)), int(m.group(2)), float(m.group(3)), m.group(4)
        if value > 0:
            out.append((n, total, value if unit == "it/s" else 1.0 / value))
    return out


def steady_rate(points: list[tuple[int, int, float]]) -> tuple[float, int, int, int]:
    """(it/s, first step, last step, total steps) between the first redraw at or after a quarter of the run and the last one.

    With an average rate r at step n the bar has run t = n / r seconds; the slope of t over n from the first of
    those redraws to the last (least squares, which also averages out the rate's two printed decimals) is the time
    a step takes once running: start-up and the slow first steps drop out."""
    if not points:
        raise Fail("the engine's progress bar never showed a rate")
    last: dict[int, float] = {}
    for n, _, r in points:
        last[n] = r
    total = points[-1][1]
    steps = sorted(last)
    b = steps[-1]
    a = next((n for n in steps if n >= max(1, math.ceil(total / 4))), b)
    if b - a < 2:
        return last[b], 0, b, total
    pts = [(n, n / last[n]) for n in steps if n >= a]
    mn = sum(n for n, _ in pts) / len(pts)
    mt = sum(t for _, t in pts) / len(pts)
    slope = sum((n - mn) * (t - mt) for n, t in pts) / sum((n - mn) ** 2 for n, _ in pts)
    return 1.0 / slope, a, b, total


# ---------------------------------------------------------------------------------------------- small data
def make_jpegs(folder: Path, n: int, size: tuple[int, int]) -> list[Path]:
    """``n`` camera-sized JPEGs with some structure (smooth noise, alternating orientation)."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        p = folder / f"{i:04d}.jpg"
        if not p.exists():
            w, h = size if i % 2 == 0 else size[::-1]
            base = rng.integers(0, 256, (24, 36, 3), dtype=np.uint8)
            Image.fromarray(base).resize((w, h), Image.Resampling.BICUBIC).save(p, quality=92)
        out.append(p)
    return out


def training_dataset(ctx: Ctx, name: str, n: int, side: int) -> str:
    """A workspace dataset of ``n`` square captioned JPEGs (each caption holds the trigger word)."""
    ws = ctx.workspace()
    if name in ws.datasets.names():
        return name
    paths = make_jpegs(ctx.work / f"train-{side}", n, (side, side))
    ds = ws.datasets.create(name)
    ds.add_images([(p.name, p.read_bytes()) for p in paths])
    for i, item in enumerate(ds.images()):
        ds.captions.set(item, f"ohwx, photo, pattern {i}")
    return name


# ---------------------------------------------------------------------------------------------- tagging
def tagging_row(ctx: Ctx, row: Row) -> None:
    """``tagging``: CUDA provider vs CPU provider; ``tagging-cpu``: CPU with graph optimisations off vs on."""
    gpu = row.key == "tagging"
    if gpu and ctx.cuda:
        raise Skip(ctx.cuda)
    import onnxruntime as ort

    if gpu and "CUDAExecutionProvider" not in ort.get_available_providers():
        raise Skip(f"onnxruntime {ort.__version__} here offers {', '.join(ort.get_available_providers())} and no "
                   f"CUDAExecutionProvider: the device image has the CPU-only onnxruntime wheel, and {ORT_GPU_WHEEL}, "
                   "too large to carry (64 MiB travel); the CPU figure was not measured either")
    tiny = ctx.dry
    depth, width, labels, n, shape = (1, 64, 300, 8, (768, 512)) if tiny else (12, 768, 10_861, 32, (1536, 1024))
    ctx.budget.grant(20 if tiny else 90)
    import numpy as np

    from lora_nb.tagging.options import TagOptions
    from lora_nb.tagging.pipeline import Tagger
    from lora_nb.tagging.preprocess import load_and_preprocess
    from tagging_throughput import build_vit

    model = ctx.models / f"vit-{depth}x{width}-{labels}"
    if not (model / "model.onnx").is_file():
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            build_vit(model, depth=depth, width=width, labels=labels)
    images = make_jpegs(ctx.work / f"tag-images-{n}", n, shape)
    batch, workers = (4, 2) if tiny else (8, min(8, os.cpu_count() or 2))
    probe = Tagger(model, TagOptions(batch_size=batch, workers=workers), providers=["CPUExecutionProvider"])
    tensors = np.stack([load_and_preprocess(p, probe.session.size) for p in images])

    def scores(tagger) -> Any:
        return np.concatenate([tagger.session.run(tensors[i:i + batch]) for i in range(0, n, batch)])

    base_scores = scores(probe)
    threshold = float(np.clip(np.quantile(base_scores[:, 4:], 1 - 20 / (labels - 4)), 0.01, 0.99))
    opts = TagOptions(batch_size=batch, workers=workers, general_threshold=threshold, character_threshold=threshold)
    base = Tagger(model, opts, providers=["CPUExecutionProvider"])
    if gpu:
        cand = Tagger(model, opts, providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
        if cand.session.providers[0] != "CUDAExecutionProvider":
            raise Skip(f"onnxruntime {ort.__version__} lists CUDAExecutionProvider but the session fell back to "
                       f"{cand.session.providers} (CUDA/cuDNN libraries it needs are missing)")
        cand_name = "CUDA provider"
    else:
        cand = Tagger(model, opts, providers=["CPUExecutionProvider"])
        so = ort.SessionOptions()
        so.log_severity_level = 3
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        cand.session.session = ort.InferenceSession(str(model / "model.onnx"), sess_options=so, providers=["CPUExecutionProvider"])
        cand_name = "CPU, optimisations off"
    cand_scores = scores(cand)
    for t in (base, cand):                           # warm-up: allocations, kernel choice, cuDNN autotune
        t.session.run(tensors[:batch])

    def timed(tagger) -> tuple[float, list]:
        t0 = time.perf_counter()
        res = list(tagger.run(images))
        dt = time.perf_counter() - t0
        if any(r.error for r in res):
            raise Fail(f"an image failed to tag: {next(r.error for r in res if r.error)}")
        return n / dt, res

    rounds = [(timed(base), timed(cand)) for _ in range(2)]     # interleaved; the best of each counts
    (base_ips, base_res), (cand_ips, cand_res) = (max((r[i] for r in rounds), key=lambda x: x[0]) for i in (0, 1))
    diff = float(np.abs(base_scores - cand_scores).max())
    flips = (base_scores[:, 4:] >= threshold) != (cand_scores[:, 4:] >= threshold)
    same = [a.tags == b.tags for a, b in zip(base_res, cand_res)]
    explained = all(s or (diff <= 1e-3 and (set(a.tags) == set(b.tags) or flips[i].any()))
                    for i, (s, a, b) in enumerate(zip(same, base_res, cand_res)))
    mean_tags = sum(len(r.tags) for r in base_res) / n
    row.figure = f"{cand_ips:.2f} images/s ({cand_name})"
    row.baseline = f"{base_ips:.2f} images/s (CPU provider)"
    row.ratio = f"{cand_ips / base_ips:.2f}x"
    row.details = {"images": n, "batch": batch, "workers": workers, "threshold": threshold, "mean_tags": mean_tags,
                   "max_score_diff": diff, "threshold_flips": int(flips.sum()), "identical_images": sum(same),
                   "providers": cand.session.providers, "onnxruntime": ort.__version__}
    detail = f"tags identical on {sum(same)}/{n} images ({mean_tags:.0f} tags each), max score difference {diff:.1e}"
    if all(same):
        row.verdict = "pass: " + detail
    elif explained:
        row.verdict = (f"pass: {detail}; the other images differ only by {int(flips.sum())} tags whose scores sit within "
                       f"{diff:.0e} of the threshold")
    else:
        row.verdict = "fail: " + detail


# ---------------------------------------------------------------------------------------------- resize
def resize_row(ctx: Ctx, row: Row) -> None:
    """``resize``: lora_nb's resize on CUDA vs on the CPU (numpy); ``resize-cpu``: torch on the CPU vs numpy."""
    gpu = row.key == "resize"
    tiny = ctx.dry
    if gpu and ctx.cuda:
        raise Skip(ctx.cuda)
    ctx.budget.grant(15 if tiny else 60)
    import numpy as np
    import torch
    from safetensors import safe_open
    from safetensors.numpy import save_file

    import lora_nb.lora.rank_resize as rr
    from lora_resize import sample, sdxl_modules

    mods = sample(sdxl_modules(), 1) if tiny else sdxl_modules()
    rank, new_rank = (32, 8) if tiny else (128, 32)
    src = ctx.models / f"lora-sdxl-{len(mods)}-r{rank}.safetensors"
    if not src.is_file():
        rng = np.random.default_rng(0)
        tensors = {}
        for name, fin, fout in mods:
            tensors[f"{name}.lora_down.weight"] = rng.normal(0, 0.02, (rank, fin)).astype(np.float16)
            tensors[f"{name}.lora_up.weight"] = rng.normal(0, 0.02, (fout, rank)).astype(np.float16)
            tensors[f"{name}.alpha"] = np.array(rank / 2, np.float16)
        save_file(tensors, str(src) + ".tmp", metadata={"ss_network_dim": str(rank), "ss_network_alpha": str(rank / 2)})
        os.replace(str(src) + ".tmp", src)
    out = ctx.work / "resize"
    out.mkdir(parents=True, exist_ok=True)

    def candidate(dst: Path):
        if gpu:
            return rr.resize(src, dst, rank=new_rank, device="cuda", save_precision="float", overwrite=True)
        real = rr._device                                 # the torch code path, on the CPU (the public API has no torch-CPU choice)
        rr._device = lambda: (torch, "cpu")
        try:
            return rr.resize(src, dst, rank=new_rank, device=None, save_precision="float", overwrite=True)
        finally:
            rr._device = real

    if gpu:                                               # CUDA context, cuBLAS/cuSOLVER handles: not part of the figure
        candidate(out / "warm-up.safetensors")
    t0 = time.perf_counter()
    rep_c = candidate(out / "candidate.safetensors")
    t_cand = time.perf_counter() - t0
    t0 = time.perf_counter()
    rep_b = rr.resize(src, out / "cpu.safetensors", rank=new_rank, device="cpu", save_precision="float", overwrite=True)
    t_base = time.perf_counter() - t0
    if rep_c.device != ("cuda" if gpu else "cpu") or rep_b.device != "cpu":
        raise Fail(f"ran on {rep_c.device} and {rep_b.device}, not the devices asked for")
    worst = scale = 0.0
    with safe_open(str(out / "candidate.safetensors"), "np") as fc, safe_open(str(out / "cpu.safetensors"), "np") as fb:
        for name, _, _ in mods:
            wc = fc.get_tensor(f"{name}.lora_up.weight") @ fc.get_tensor(f"{name}.lora_down.weight")
            wb = fb.get_tensor(f"{name}.lora_up.weight") @ fb.get_tensor(f"{name}.lora_down.weight")
            worst = max(worst, float(np.abs(wc - wb).max()))
            scale = max(scale, float(np.abs(wb).max()))
            if fc.get_tensor(f"{name}.alpha") != fb.get_tensor(f"{name}.alpha"):
                raise Fail(f"{name}: alpha differs")
    rel = worst / scale if scale else float("inf")
    cand_name = "CUDA" if gpu else "torch CPU"
    row.figure = f"{t_cand:.2f} s ({cand_name})"
    row.baseline = f"{t_base:.2f} s (numpy CPU)"
    row.ratio = f"{t_base / t_cand:.2f}x"
    row.details = {"modules": len(mods), "rank": rank, "new_rank": new_rank, "max_abs_diff": worst, "weight_scale": scale,
                   "relative_diff": rel, "source_mib": src.stat().st_size / 2**20}
    detail = f"max abs diff of up @ down {worst:.1e} ({rel:.1e} of the largest weight), {len(mods)} modules"
    row.verdict = ("pass: " if rel <= 1e-4 else "fail: ") + detail


# ---------------------------------------------------------------------------------------------- training
@dataclass
class Spec:
    """One training comparison: model family, sizes, and the time each part may take."""

    family: str
    side: int
    images: int
    steps: int
    precision: str
    build_s: float      # at most, building the random model
    run_s: float        # at most, one training run (start-up, model loading and saving included)
    need_s: float       # the least the whole row can plausibly take: with less left it is not started


# sizes for one H200 within the overall budget: sd15 about 25 s to build + 2 x 40 s; sdxl 30 + 2 x 60; flux 60 + 100
GPU_SPECS = {"sd15": Spec("sd15", 512, 8, 160, "bf16", 90, 150, 90), "sdxl": Spec("sdxl", 1024, 8, 50, "bf16", 120, 200, 130),
             "flux": Spec("flux", 512, 8, 8, "bf16", 240, 300, 150)}
CPU_SPECS = {"sd15": Spec("sd15", 64, 4, 12, "no", 0, 600, 120), "flux": Spec("flux", 64, 4, 3, "no", 0, 600, 60)}


def engine_python_or_skip(ctx: Ctx, engine: str) -> tuple[Path, Path]:
    a = ctx.args
    folder, python, why = ((a.kohya_dir, a.kohya_python, a.kohya_skip) if engine == "kohya"
                           else (a.aitoolkit_dir, a.aitoolkit_python, a.aitoolkit_skip))
    if why:
        raise Skip(why)
    if not folder or not python:
        name = "sd-scripts" if engine == "kohya" else "ai-toolkit"
        raise Skip(f"{name} is not set up (no --{engine}-dir/--{engine}-python; scripts/gpu-check.sh sets it up)")
    return Path(folder), Path(python)


def build_model(ctx: Ctx, python: Path, family: str, spec: Spec) -> Path:
    """OUT with OUT/model (Diffusers folder) and OUT/tok, built by bench/gpu_models.py in the engine's python."""
    out = ctx.models / family
    if (out / ".ready").is_file():
        return out
    if family == "flux":
        free = os_free(ctx.models)
        if free < 40 * 2**30:
            raise Skip(f"the random full-size FLUX.1 needs about 34 GiB on disk; {free / 2**30:.0f} GiB free at {ctx.models}")
    seconds, limited = ctx.budget.grant(spec.build_s, need=min(spec.build_s / 2, 60))
    argv = [str(python), str(REPO / "bench" / "gpu_models.py"), family, str(out), "--tools", str(ctx.args.tools)]
    log = ctx.work / "logs" / f"build-{family}.log"
    ctx.logs.append(log)
    run_logged(argv, log, seconds, limited, env=engine_env(), what=f"building the random {family} model")
    return out


def os_free(path: Path) -> int:
    path.mkdir(parents=True, exist_ok=True)
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def engine_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1", DISABLE_TELEMETRY="YES", PYTHONUNBUFFERED="1")
    return env


def wait_job(ctx: Ctx, job, seconds: float, limited: bool, what: str) -> float:
    """Follow a lora_nb job as the dashboard would (progress read every half second) until it ends."""
    from lora_nb.progress.events import JobStatus

    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        status = job.wait(timeout=0.5)
        _ = job.progress
        if status.is_final:
            break
    else:
        job.stop(grace=10)
        msg = f"{what} through lora_nb did not finish in {seconds:.0f} s (job {job.id})"
        raise (Skip("time budget ran out: " + msg) if limited else Fail(msg))
    if job.status is not JobStatus.SUCCEEDED:
        raise Fail(f"{what} through lora_nb {job.status}: {(job.error or '').splitlines()[0] if job.error else last_error(job.log_path)}")
    return time.monotonic() - t0


def by_hand_vs_lora_nb(ctx: Ctx, row: Row, cfg, run_s: float, label: str) -> None:
    """Run the command lora_nb renders for ``cfg`` by hand (baseline), then the same config through
    ws.jobs.submit_training; fill the row with the steady-state it/s of both and their ratio."""
    from lora_nb.engines import get_engine

    ws = ctx.workspace()
    seconds, limited = ctx.budget.grant(run_s, need=run_s / 3)
    hand_dir = ctx.work / "by-hand" / f"{cfg.output_name}-{int(time.time())}"
    plan = get_engine(cfg.engine, ws).prepare(cfg, hand_dir)
    log = hand_dir / "console.log"
    ctx.logs.append(log)
    t_hand = run_logged(plan.argv, log, seconds, limited, cwd=plan.cwd, env={**engine_env(), **plan.env},
                        what=f"{label} by hand")
    hand_text = log.read_text(errors="replace")
    if "model saved." not in hand_text:
        raise Fail(f"{label} by hand exited 0 without 'model saved.': {last_error(log)}")

    seconds, limited = ctx.budget.grant(run_s, need=run_s / 3)
    job = ws.jobs.submit_training(cfg)
    ctx.logs.append(job.log_path)
    t_lnb = wait_job(ctx, job, seconds, limited, label)
    hand_rate, a, b, total = steady_rate(bar_points(hand_text))
    lnb_rate, a2, b2, total2 = steady_rate(bar_points(job.log_path.read_text(errors="replace")))
    if total != total2:
        raise Fail(f"the two runs' progress bars count {total} steps by hand and {total2} via lora_nb")
    ratio = lnb_rate / hand_rate
    unit = (lambda r: f"{r:.2f} it/s") if min(hand_rate, lnb_rate) >= 1 else (lambda r: f"{1 / r:.2f} s/it")
    row.figure = f"{unit(lnb_rate)} via lora_nb"
    row.baseline = f"{unit(hand_rate)} by hand"
    row.ratio = f"{ratio:.3f}"
    row.details = {"steps": total, "window_by_hand": [a, b], "window_lora_nb": [a2, b2], "it_s_by_hand": hand_rate,
                   "it_s_lora_nb": lnb_rate, "wall_s_by_hand": round(t_hand, 1), "wall_s_lora_nb": round(t_lnb, 1),
                   "job": job.id, "argv": plan.argv}
    judged = "pass" if ratio >= 0.99 else "fail"
    if ctx.args.cpu_engines:        # a shared CPU box: the paths are rehearsed, the ratio means little
        judged = "rehearsed (the ratio is not judged on the CPU)"
    window = f"steps {a}-{b}" if (a, b) == (a2, b2) else f"steps {a}-{b} by hand, {a2}-{b2} via lora_nb"
    row.verdict = f"{judged}: {window} of {total} timed; wall {t_hand:.0f} s by hand, {t_lnb:.0f} s via lora_nb"


def kohya_config(ctx: Ctx, spec: Spec, model: Path, tok: Path | None, dataset: str):
    from lora_nb import TrainingConfig

    small = spec.side < 256
    kw: dict[str, Any] = dict(
        model_family=spec.family, dataset=dataset, pretrained_model_name_or_path=str(model), resolution=str(spec.side),
        min_bucket_reso=64 if small else 256, max_bucket_reso=128 if small else max(1024, spec.side),
        max_train_epochs=None, max_train_steps=spec.steps, save_every_n_epochs=None, optimizer_type="AdamW",
        mixed_precision=spec.precision, save_precision="float" if spec.precision == "no" else "fp16",
        gradient_checkpointing=False, cache_latents=True, cache_latents_to_disk=False, max_data_loader_n_workers=0,
        persistent_data_loader_workers=False, network_dim=16, network_alpha=8.0, seed=42, log_with=None,
        trigger_words=["ohwx"], output_name=f"gpucheck-{spec.family}",
        engine_options={"tokenizer_cache_dir": str(tok)} if tok else {})
    if spec.family == "sdxl":
        kw.update(network_train_unet_only=True, cache_text_encoder_outputs=True)
    return TrainingConfig(**kw)


def kohya_row(ctx: Ctx, row: Row) -> None:
    """``sd15`` / ``sdxl``: real sd-scripts, through lora_nb vs by hand."""
    a = ctx.args
    fam = row.key
    rehearsal = a.cpu_engines
    if rehearsal:
        if fam == "sdxl":
            raise Skip("not rehearsed on the CPU: sd-scripts turns any SDXL into its own full-size U-Net (2.6 B parameters)")
    elif ctx.cuda:
        raise Skip(ctx.cuda)
    folder, python = engine_python_or_skip(ctx, "kohya")
    spec = (CPU_SPECS if rehearsal else GPU_SPECS)[fam]
    ctx.budget.grant(spec.run_s, need=spec.need_s)
    if rehearsal and a.sd15_model:
        model, tok = Path(a.sd15_model), Path(a.sd15_tok) if a.sd15_tok else None
    else:
        built = build_model(ctx, python, fam, spec)
        model, tok = built / "model", built / "tok"
    ws = ctx.workspace()
    ws.settings.set("kohya_dir", str(folder))
    ws.settings.set("kohya_python", str(python))
    ws.settings.set("kohya_launcher", "accelerate")
    cfg = kohya_config(ctx, spec, model, tok, training_dataset(ctx, f"bench{spec.side}", spec.images, spec.side))
    by_hand_vs_lora_nb(ctx, row, cfg, spec.run_s, fam)


def flux_row(ctx: Ctx, row: Row) -> None:
    """``flux``: real ai-toolkit FLUX.1 LoRA steps on random full-size bf16 weights, through lora_nb."""
    a = ctx.args
    rehearsal = a.cpu_engines
    if not rehearsal and ctx.cuda:
        raise Skip(ctx.cuda)
    folder, python = engine_python_or_skip(ctx, "aitoolkit")
    spec = (CPU_SPECS if rehearsal else GPU_SPECS)["flux"]
    ctx.budget.grant(spec.run_s, need=spec.need_s)
    model = Path(a.flux_model) if rehearsal and a.flux_model else build_model(ctx, python, "flux", spec) / "model"
    ws = ctx.workspace()
    ws.settings.set("aitoolkit_dir", str(folder))
    ws.settings.set("aitoolkit_python", str(python))
    from lora_nb import TrainingConfig

    cfg = TrainingConfig(engine="ai-toolkit", model_family="flux", pretrained_model_name_or_path=str(model),
                         dataset=training_dataset(ctx, f"bench{spec.side}", spec.images, spec.side), resolution=str(spec.side),
                         min_bucket_reso=64 if spec.side < 256 else 256, max_bucket_reso=max(1024, spec.side),
                         max_train_epochs=None, max_train_steps=spec.steps, save_every_n_epochs=None, optimizer_type="AdamW",
                         mixed_precision=spec.precision, save_precision="bf16", gradient_checkpointing=True,
                         cache_latents_to_disk=False, network_dim=16, network_alpha=16.0, seed=42, log_with=None,
                         trigger_words=["ohwx"], output_name="gpucheck-flux")
    seconds, limited = ctx.budget.grant(spec.run_s, need=spec.need_s / 2)
    job = ws.jobs.submit_training(cfg)
    ctx.logs.append(job.log_path)
    wall = wait_job(ctx, job, seconds, limited, "the FLUX run")
    p = job.progress
    loras = [x for x in job.artifacts if x.get("kind") == "lora"]
    row.details = {"steps": p.step, "total_steps": p.total_steps, "loss": p.loss, "rate_it_s": p.rate, "wall_s": round(wall, 1),
                   "artifacts": [x.get("path") for x in job.artifacts], "job": job.id}
    if p.rate:
        row.figure = f"{1 / p.rate:.2f} s/step" if p.rate < 1 else f"{p.rate:.2f} it/s"
    problems = []
    if p.step != spec.steps:
        problems.append(f"{p.step} of {spec.steps} steps")
    if p.loss is None or not math.isfinite(p.loss):
        problems.append(f"loss {p.loss}")
    if not loras or not Path(loras[-1]["path"]).is_file():
        problems.append("no LoRA file saved")
    detail = f"{p.step}/{spec.steps} steps, loss {p.loss}, wall {wall:.0f} s (model loading included)"
    row.verdict = ("fail: " + "; ".join(problems) + "; " if problems else "pass: ") + detail


def standin_row(ctx: Ctx, row: Row) -> None:
    """The training comparison's machinery against the stand-in sd-scripts (a recorded real run, replayed)."""
    folder = REPO / "tests" / "engines" / "fake_sdscripts"
    capture = REPO.parent / "shared" / "fixtures" / "kohya" / "captures" / "run1.chunks.jsonl"
    if not (folder / "train_network.py").is_file() or not capture.is_file():
        raise Skip(f"the stand-in sd-scripts or its recording is missing ({folder}, {capture})")
    ctx.budget.grant(60, need=20)
    os.environ.setdefault("LORA_NB_STANDIN_SPEED", "0.02")
    ws = ctx.workspace()
    ws.settings.set("kohya_dir", str(folder))
    ws.settings.set("kohya_python", sys.executable)
    ws.settings.set("kohya_launcher", "python")
    model = ctx.work / "standin-model.safetensors"
    model.write_bytes(b"\x02\x00\x00\x00\x00\x00\x00\x00{}")
    from lora_nb import TrainingConfig

    cfg = TrainingConfig(dataset=training_dataset(ctx, "bench64", 4, 64), pretrained_model_name_or_path=str(model),
                         resolution="64", min_bucket_reso=64, max_bucket_reso=128, max_train_epochs=2, optimizer_type="AdamW",
                         mixed_precision="no", trigger_words=["ohwx"], output_name="standin", log_with=None)
    by_hand_vs_lora_nb(ctx, row, cfg, 60, "the stand-in run")
    row.verdict = ("pass" if row.ratio == "1.000" else "fail") + row.verdict[row.verdict.index(":"):]


# ---------------------------------------------------------------------------------------------- captioners
def captioner_row(ctx: Ctx, row: Row) -> None:
    """``florence2`` / ``joycaption``: lora_nb's Captioner in bf16 on CUDA on a real-size random model vs a baseline;
    ``captioning-cpu``: a small random Florence-2 on the CPU, lora_nb batched vs the plain loop (same captions)."""
    from captioning_throughput import REAL_SIZE, make_images, ours, plain_loop, real_size_model

    from lora_nb.tagging.caption_options import CaptionOptions
    from lora_nb.tagging.captioner import Captioner

    if row.key == "captioning-cpu":
        ctx.budget.grant(60, need=30)
        from lora_nb.tagging.caption_tiny import build_tiny_florence2

        folder = ctx.models / "florence2-tiny"
        if not (folder / "config.json").is_file():
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                build_tiny_florence2(folder)
        images = make_images(ctx.work / "caption-images-8", 8, (320, 240))
        cap = Captioner(folder, CaptionOptions(batch_size=4, workers=2, max_new_tokens=12, mode="detailed"), device="cpu")
        plain_loop(cap, images[:1])
        t0 = time.perf_counter()
        base = plain_loop(cap, images)
        base_ips = len(images) / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        mine = ours(cap, images)
        ips = len(images) / (time.perf_counter() - t0)
        same = sum(a == b for a, b in zip(base, mine))
        row.figure, row.baseline = f"{ips:.2f} images/s (lora_nb, batch 4)", f"{base_ips:.2f} images/s (plain loop)"
        row.ratio = f"{ips / base_ips:.2f}x"
        row.details = {"images": len(images), "identical": same, "new_tokens": 12, "batch": 4}
        row.verdict = ("pass: " if same == len(images) and all(mine) else "fail: ") + f"captions identical on {same}/{len(images)} images"
        return
    if ctx.cuda:
        raise Skip(ctx.cuda)
    import torch

    family = row.key
    need_gib = 24 if family == "joycaption" else 4
    free = torch.cuda.mem_get_info()[0] / 2**30
    if free < need_gib:
        raise Skip(f"{free:.0f} GiB of GPU memory free, the {family} model needs about {need_gib} GiB in bf16")
    ctx.budget.grant(150 if family == "joycaption" else 120, need=60)
    n, batch, tokens = (32, 8, 32)
    workers = min(8, os.cpu_count() or 2)
    images = make_images(ctx.work / f"caption-images-{n}", n)
    opts = CaptionOptions(batch_size=batch, workers=workers, max_new_tokens=tokens)
    t0 = time.perf_counter()
    if family == "florence2":                  # the same weights on both devices: built in fp32 on CUDA (fast), copied to the CPU
        import copy

        gpu_model, processor = real_size_model(family, "cuda", torch.float32)
        cpu_model = copy.deepcopy(gpu_model).to("cpu")
        gpu_model = gpu_model.to(torch.bfloat16)
    else:
        gpu_model, processor = real_size_model(family, "cuda", torch.bfloat16)
    build_s = time.perf_counter() - t0
    cand = Captioner.from_loaded(gpu_model, processor, opts)
    ours(cand, images[:batch])                 # warm-up: CUDA context, kernels, allocator
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    texts = ours(cand, images)
    torch.cuda.synchronize()
    ips = n / (time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated() / 2**30
    row.details = {"images": n, "batch": batch, "new_tokens": tokens, "workers": workers, "build_s": round(build_s, 1),
                   "peak_gib": round(peak, 1), "params_b": round(sum(p.numel() for p in gpu_model.parameters()) / 1e9, 3),
                   "layout": REAL_SIZE[family]}
    row.figure = f"{ips:.2f} images/s (CUDA bf16, batch {batch})"
    if family == "florence2":
        base = Captioner.from_loaded(cpu_model, processor, opts)
        m = 4
        ours(base, images[:1])
        t0 = time.perf_counter()
        ours(base, images[:m])
        base_ips = m / (time.perf_counter() - t0)
        row.baseline = f"{base_ips:.2f} images/s (CPU fp32, {os.cpu_count()} cores)"
        ok = ips > base_ips
    else:
        plain_loop(cand, images[:1])
        m = 8
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        plain_loop(cand, images[:m])
        torch.cuda.synchronize()
        base_ips = m / (time.perf_counter() - t0)
        row.baseline = f"{base_ips:.2f} images/s (plain loop, one image at a time, CUDA bf16)"
        ok = ips / base_ips >= 2.0
    row.ratio = f"{ips / base_ips:.2f}x"
    row.details["baseline_images"] = m
    detail = (f"{len(texts)} images captioned, {tokens} new tokens each, peak {peak:.1f} GiB, "
              f"{row.details['params_b']} B parameters")
    row.verdict = ("pass: " if ok and len(texts) == n else "fail: ") + detail


STEPS: dict[str, Callable[[Ctx, Row], None]] = {
    "tagging": tagging_row, "tagging-cpu": tagging_row, "resize": resize_row, "resize-cpu": resize_row,
    "sd15": kohya_row, "sdxl": kohya_row, "flux": flux_row, "standin": standin_row,
    "florence2": captioner_row, "joycaption": captioner_row, "captioning-cpu": captioner_row}


def new_row(key: str, ctx: Ctx) -> Row:
    """The row with its description and goal, before the step runs (a skipped row keeps them)."""
    rehearsal = ctx.args.cpu_engines
    what, goal = {
        "tagging": ("WD14 tagging (ViT-B/16 448 px, 10,861 labels), lora_nb Tagger end to end: onnxruntime CUDA vs CPU provider",
                    "identical tags"),
        "tagging-cpu": ("WD14 tagging (tiny ViT), lora_nb Tagger end to end: CPU provider, graph optimisations off vs on",
                        "identical tags"),
        "resize": ("LoRA resize, rank 128 -> 32, all 722 SDXL U-Net modules: CUDA (torch) vs CPU (numpy)",
                   "equal results (max abs diff <= 1e-4 of the weights)"),
        "resize-cpu": ("LoRA resize (8 SDXL modules, rank 32 -> 8): torch on the CPU vs numpy",
                       "equal results (max abs diff <= 1e-4 of the weights)"),
        "sd15": ("sd-scripts SD 1.5 LoRA (train_network.py), random full-size weights, "
                 + ("64 px (CPU rehearsal)" if rehearsal else "512 px") + ": through lora_nb vs by hand", ">= 0.99"),
        "sdxl": ("sd-scripts SDXL LoRA (sdxl_train_network.py), random full-size weights, 1024 px: through lora_nb vs by hand",
                 ">= 0.99"),
        "flux": (("ai-toolkit FLUX.1 LoRA, tiny random FLUX, 64 px (CPU rehearsal)" if rehearsal else
                  "ai-toolkit FLUX.1 LoRA, random full-size weights in bf16, 512 px") + ", through lora_nb",
                 "steps run, finite loss, LoRA saved"),
        "standin": ("sd-scripts path with the stand-in trainer (replays a recorded real run): through lora_nb vs by hand",
                    "ratio 1.000 (same replay)"),
        "florence2": ("Florence-2 captions, random Florence-2-large-size model (0.77 B, 768 px), lora_nb Captioner batched: "
                      "CUDA bf16 vs CPU fp32, 32 new tokens an image", "every image captioned; CUDA faster"),
        "joycaption": ("JoyCaption captions, random JoyCaption-beta-one-size model (SigLIP + Llama 3.1 8B, 8.5 B), CUDA bf16: "
                       "lora_nb Captioner batched vs a plain one-image-at-a-time transformers loop", ">= 2x"),
        "captioning-cpu": ("Florence-2 captions (tiny random model), CPU: lora_nb Captioner batched vs a plain one-image-at-a-time "
                           "transformers loop", "identical captions"),
    }[key]
    return Row(key, what, goal=goal)


# ---------------------------------------------------------------------------------------------- main
def write_outputs(ctx: Ctx, rows: list[Row], header: str, final: bool) -> str:
    table = render_table(rows, header)
    ctx.out.mkdir(parents=True, exist_ok=True)
    (ctx.out / "gpu-check.md").write_text(table, encoding="utf-8")
    (ctx.out / "gpu-check.json").write_text(json.dumps({"header": header, "final": final, "rows": [asdict(r) for r in rows]},
                                                       indent=1, default=str), encoding="utf-8")
    if final and ctx.logs:
        with tarfile.open(ctx.out / "logs.tar.gz", "w:gz") as tar:
            for log in ctx.logs:
                if log.is_file():
                    data = log.read_bytes()[-2_000_000:]          # the tail: enough for the traceback and the bar
                    info = tarfile.TarInfo(f"{log.parent.name}-{log.name}")
                    info.size, info.mtime = len(data), int(time.time())
                    tar.addfile(info, io.BytesIO(data))
    return table


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dry-run", action="store_true", help="CPU only, tiny sizes; GPU rows are skipped")
    ap.add_argument("--cpu-engines", action="store_true", help="with --dry-run: run sd15/flux on CPU engine set-ups (slow)")
    ap.add_argument("--only", default="", help="comma-separated row keys to run (default: all)")
    ap.add_argument("--budget", type=float, default=430.0, help="seconds for the whole check (default 430)")
    ap.add_argument("--deadline", type=float, default=None, help="absolute end time (epoch seconds); wins over --budget")
    ap.add_argument("--out", type=Path, default=REPO / "test-artifacts" / "gpu-check")
    ap.add_argument("--work", type=Path, default=None, help="scratch folder (default OUT/../gpu-check-work)")
    ap.add_argument("--models", type=Path, default=None, help="built models, kept between runs (default WORK/models)")
    ap.add_argument("--tools", type=Path, default=REPO.parent / "shared" / "tools" / "kohya-cpu", help="folder of make_model.py")
    for eng in ("kohya", "aitoolkit"):
        ap.add_argument(f"--{eng}-dir", default=None, help="engine checkout")
        ap.add_argument(f"--{eng}-python", default=None, help="engine python")
        ap.add_argument(f"--{eng}-skip", default=None, help="the set-up's reason when the engine is not usable")
    ap.add_argument("--sd15-model", default=None, help="a built SD 1.5 Diffusers folder (CPU rehearsal)")
    ap.add_argument("--sd15-tok", default=None, help="its tokenizer cache folder")
    ap.add_argument("--flux-model", default=None, help="a built FLUX Diffusers folder (CPU rehearsal)")
    args = ap.parse_args(argv)
    if args.cpu_engines and not args.dry_run:
        ap.error("--cpu-engines goes with --dry-run")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    start = time.time()
    deadline = args.deadline or start + args.budget
    work = args.work or args.out.parent / "gpu-check-work"
    work.mkdir(parents=True, exist_ok=True)
    import shutil

    for old in ("ws", "by-hand", "logs", "resize"):       # fresh workspace and logs; built models are kept
        shutil.rmtree(work / old, ignore_errors=True)
    models = args.models or work / "models"
    models.mkdir(parents=True, exist_ok=True)
    for k, v in (("HF_HUB_OFFLINE", "1"), ("TRANSFORMERS_OFFLINE", "1"), ("HF_DATASETS_OFFLINE", "1"), ("DISABLE_TELEMETRY", "YES")):
        os.environ.setdefault(k, v)          # nothing can be fetched on the GPU machine: fail at once, never wait
    if not args.dry_run:
        os.environ.setdefault("LORA_NB_PROBE_CUDA", "1")   # lora_nb's resize asks torch even if /dev/nvidia* is hidden
    ctx = Ctx(args, work, args.out, models, Budget(deadline), cuda_reason(args.dry_run))
    keys = DRY_ROWS if args.dry_run else GPU_ROWS
    if args.only:
        wanted = [k.strip() for k in args.only.split(",") if k.strip()]
        unknown = set(wanted) - set(keys)
        if unknown:
            print(f"gpu_check: unknown rows {sorted(unknown)}; rows: {', '.join(keys)}", file=sys.stderr)
            return 2
        keys = [k for k in keys if k in wanted]
    mode = "dry run (CPU)" if args.dry_run else "GPU"
    header = (f"GPU check ({mode}), {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(start))}: {device_line()}, "
              f"{os.cpu_count()} CPUs; budget {deadline - start:.0f} s")
    rows: list[Row] = []
    for key in keys:
        t0 = time.time()
        row = new_row(key, ctx)
        print(f"[gpu-check {time.time() - start:5.0f} s] {key} ...", file=sys.stderr, flush=True)
        try:
            STEPS[key](ctx, row)
        except Skip as e:
            row.verdict = f"skipped: {e}"
        except Fail as e:
            row.verdict = f"fail: {e}"
        except Exception as e:                    # a bug or an unexpected engine state: a failed check, with the cause
            row.verdict = f"fail: {type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"
            row.details["traceback"] = traceback.format_exc()[-4000:]
        row.seconds = time.time() - t0
        rows.append(row)
        print(f"[gpu-check {time.time() - start:5.0f} s] {key}: {row.verdict}", file=sys.stderr, flush=True)
        write_outputs(ctx, rows, header, final=False)
    header += f", used {time.time() - start:.0f} s"
    print(write_outputs(ctx, rows, header, final=True), end="")
    return 1 if any(r.failed for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
