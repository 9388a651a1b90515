"""Demo material generated on the spot: a small captioned dataset, a small local tagger, and a
stand-in training run for machines without a GPU.

Everything here is made locally (no downloads), so the quickstart notebook runs anywhere.
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
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .datasets import Dataset
    from .jobs.manager import Job
    from .workspace import Workspace

__all__ = ["make_dataset", "make_tagger", "submit_demo_run", "DEMO_TRIGGER"]

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
