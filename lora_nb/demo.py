"""Demo material generated on the spot: a small captioned dataset, a small local tagger, and a
stand-in training run for machines without a GPU.

Everything here is made locally (no downloads), so the quickstart notebook runs anywhere.
:func:`start_demo` does the whole tour in one call (the dashboard's *Try the demo* and ``lora-nb demo``):
a new dataset of shapes, tagged by the small local tagger (a job), then the stand-in run on it (a job).
The stand-in run is *not* training: it is a short job that behaves like one (progress, loss,
epochs, a checkpoint per epoch) and writes a real, valid LoRA file with kohya key names and
``ss_*`` metadata whose weights are random. It says so in its metadata and its log.

>>> import lora_nb, tempfile
>>> ws = lora_nb.Workspace(tempfile.mkdtemp())
>>> ds = make_dataset(ws, n=6, size=(96, 96))
>>> len(ds.images()), ds.images()[0].caption.startswith("lnbdemo, ")
(6, True)
"""
from __future__ import annotations

import io
import random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:  # pragma: no cover
    from .datasets import Dataset
    from .jobs.manager import Job
    from .workspace import Workspace

__all__ = ["make_dataset", "make_tagger", "submit_demo_run", "start_demo", "free_name", "DemoRun", "DEMO_TRIGGER"]

DEMO_TRIGGER = "lnbdemo"
_COLOURS = {"red": (205, 40, 40), "green": (40, 160, 70), "blue": (40, 80, 200), "yellow": (230, 200, 40), "purple": (130, 50, 170)}
_SHAPES = ("circle", "square", "triangle")
_BACKGROUNDS = {"white": (250, 250, 250), "grey": (120, 120, 120), "black": (15, 15, 15)}


def _image(shape: str, colour: tuple[int, int, int], bg: tuple[int, int, int], size: tuple[int, int], rng: random.Random) -> bytes:
    from PIL import Image, ImageDraw

    w, h = size
    img = Image.new("RGB", (w, h), bg)
    d = ImageDraw.Draw(img)
    r = int(min(w, h) * rng.uniform(0.2, 0.38))
    cx, cy = int(w * rng.uniform(0.35, 0.65)), int(h * rng.uniform(0.35, 0.65))
    if shape == "circle":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=colour)
    elif shape == "square":
        d.rectangle([cx - r, cy - r, cx + r, cy + r], fill=colour)
    else:
        d.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=colour)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def make_dataset(ws: "Workspace | None" = None, name: str = "demo", n: int = 12, size: tuple[int, int] = (512, 512),
                 captions: bool = True, repeats: int = 10, seed: int = 0) -> "Dataset":
    """Create dataset ``name`` with ``n`` generated images of coloured shapes in ``<repeats>_lnbdemo/``.

    With ``captions=True`` each image gets ``"lnbdemo, <colour> <shape>, <background> background"``;
    with ``False`` there are none, for trying the tagger. Sizes vary a little around ``size`` so
    the bucketing has something to do. An existing dataset of that name is refused (choose another name).
    """
    from .workspace import Workspace

    ws = ws or Workspace()
    rng = random.Random(seed)
    ds = ws.datasets.create(name)
    items: list[tuple[str, bytes]] = []
    for i in range(n):
        shape, colour, bg = _SHAPES[i % 3], list(_COLOURS)[i % 5], list(_BACKGROUNDS)[(i // 3) % 3]
        w, h = size
        if i % 4 == 1:
            w = int(w * 1.5) // 8 * 8
        elif i % 4 == 2:
            h = int(h * 1.5) // 8 * 8
        items.append((f"{i:03d}_{colour}_{shape}.png", _image(shape, _COLOURS[colour], _BACKGROUNDS[bg], (w, h), rng)))
    ds.add_images(items, subset=f"{repeats}_{DEMO_TRIGGER}")
    if captions:
        for item in ds.images():
            _, colour, shape = item.path.stem.split("_", 2)
            bg = list(_BACKGROUNDS)[(int(item.path.stem[:3]) // 3) % 3]
            ds.captions.set(item, f"{DEMO_TRIGGER}, {colour} {shape}, {bg} background, simple shape")
    return ds


def make_tagger(folder: str | Path | None = None, ws: "Workspace | None" = None) -> Path:
    """Build a small real WD14-style tagger (ONNX model + selected_tags.csv) and return its folder.

    Its weights are random, so its tags are not meaningful; it exercises the whole tagging path
    (onnxruntime, preprocessing, thresholds, caption writing) without a download.
    """
    from .tagging.tiny import build_tiny_tagger
    from .workspace import Workspace

    if folder is None:
        folder = (ws or Workspace()).root / "models" / "taggers" / "lnb-demo-tagger"
    path = Path(folder)
    if not (path / "model.onnx").is_file():
        build_tiny_tagger(path)
    return path


def submit_demo_run(ws: "Workspace", dataset: str = "demo", epochs: int = 3, steps_per_epoch: int = 10, network_dim: int = 4,
                    seconds_per_step: float = 0.2, output_name: str = "lnbdemo") -> "Job":
    """Queue the CPU stand-in run: progress like a trainer, then a real (random-weight) LoRA file.

    Use it to see the job system, the monitor and the LoRA tools on a machine without a GPU;
    on a GPU host submit a real ``TrainingConfig`` with ``ws.jobs.submit_training`` instead.
    """
    ws.datasets.get(dataset)  # a clear error if it does not exist
    params: dict[str, Any] = {"dataset": dataset, "epochs": int(epochs), "steps_per_epoch": int(steps_per_epoch),
                              "network_dim": int(network_dim), "seconds_per_step": float(seconds_per_step), "output_name": output_name}
    return ws.jobs.submit_task("demo_train", params, name=f"{output_name} (demo stand-in)", uses_gpu=False,
                               meta={"demo": True})


def free_name(ws: "Workspace", base: str = "demo") -> str:
    """``base``, or ``base-2``, ``base-3`` ... : the first dataset name not taken yet."""
    names = set(ws.datasets.names())
    if base not in names:
        return base
    n = 2
    while f"{base}-{n}" in names:
        n += 1
    return f"{base}-{n}"


@dataclass(frozen=True)
class DemoRun:
    """What :func:`start_demo` made: the dataset, its tagging job (None when tagging was skipped), the run."""

    dataset: "Dataset"
    tagging: "Job | None"
    run: "Job"
    note: str = ""          # why tagging was skipped, if it was


def _tagger_missing() -> str:
    import importlib.util

    missing = [m for m in ("onnx", "onnxruntime") if importlib.util.find_spec(m) is None]
    if not missing:
        return ""
    return (f"Tagging was skipped because {' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not installed "
            "(pip install 'lora-nb[cpu]' onnx); the demo captions were written instead.")


def start_demo(ws: "Workspace", name: str | None = None, n: int = 12, size: tuple[int, int] = (256, 256), epochs: int = 3,
               steps_per_epoch: int = 10, seconds_per_step: float = 0.2, timeout: float = 600.0,
               on_job: "Callable[[Job], Any] | None" = None, say: Callable[[str], Any] | None = None) -> DemoRun:
    """The whole demo: a new dataset of ``n`` shapes (``name``, default the first free ``demo``, ``demo-2`` ...),
    tagged by the small local tagger as a job, then the CPU stand-in run on it as a job.

    Waits for the tagging job (at most ``timeout`` seconds; seconds for a dozen images), not for the run.
    ``on_job(job)`` is called with each job as it is queued, ``say(text)`` with each step. Without onnx or
    onnxruntime the tagging step is skipped and the generated captions are written instead (``note`` says so).
    """
    from .errors import JobError
    from .jobs.format import failure_cause
    from .progress.events import JobStatus

    say = say or (lambda text: None)
    name = name or free_name(ws)
    note = _tagger_missing()
    tagger = None
    if not note:
        say("Building the small local tagger (random weights: its tags are placeholders)…")
        tagger = make_tagger(ws=ws)
    say(f"Making dataset '{name}': {n} images of coloured shapes…")
    ds = make_dataset(ws, name=name, n=n, size=size, captions=tagger is None)
    job = None
    if tagger is not None:
        job = ds.tag(model=str(tagger), general_threshold=0.2, trigger_words=[DEMO_TRIGGER])
        if on_job is not None:
            on_job(job)
        say(f"Tagging '{name}' with the local tagger (job {job.id})…")
        status = job.wait(timeout)
        if status is not JobStatus.SUCCEEDED:
            cause = failure_cause(job.error) if status is JobStatus.FAILED else f"it ended {status.value}"
            raise JobError(f"The demo's tagging job {job.id} did not succeed: {cause}",
                           fix="Look at its log in the Jobs tab (lora-nb jobs logs " + job.id + ").")
    else:
        say(note)
    run = submit_demo_run(ws, dataset=name, epochs=epochs, steps_per_epoch=steps_per_epoch, seconds_per_step=seconds_per_step)
    if on_job is not None:
        on_job(run)
    say(f"Started the CPU stand-in run on '{name}' (job {run.id}): progress, loss and checkpoints like a trainer, "
        "then a LoRA file with random weights.")
    return DemoRun(ds, job, run, note)
