"""Run history and run comparison: every training run as one row, and 2-4 runs side by side.

Everything is read from the job store (``ws.jobs.snapshots(kind="training")``) and each run's folder
(``config.json`` written at launch, the log, the sample artifacts); nothing is kept in memory between
calls. The loss series is read back from the run's log with the run's own parser, so a finished run
shows the same curve as it did live.

>>> import lora_nb, tempfile
>>> runs = lora_nb.Workspace(tempfile.mkdtemp()).runs
>>> runs.history()
[]
>>> smooth([(1, 1.0), (2, 0.0), (3, 1.0)], 0.5)
[(1, 1.0), (2, 0.5), (3, 0.75)]
>>> config_diff({"a": {"lr": 1e-4, "dim": 16}, "b": {"lr": 2e-4, "dim": 16}})
{'lr': {'a': 0.0001, 'b': 0.0002}}
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from ..errors import ConfigError
from ..progress.events import EventKind, JobStatus
from .format import SVG_PANEL, SVG_TEXT, fmt_duration
from .models import JobSnapshot

if TYPE_CHECKING:  # pragma: no cover
    from .manager import JobManager

__all__ = ["RunRow", "RunComparison", "Runs", "run_row", "loss_series", "smooth", "config_diff", "sample_step",
           "overlay_svg", "SORT_KEYS"]

SORT_KEYS = ("created", "name", "status", "family", "engine", "steps", "loss", "duration", "loras")
COLOURS = ("#1565c0", "#c62828", "#2e7d32", "#ef6c00")
MAX_COMPARE = 4
LOG_BYTES = 8 << 20   # the end of a log read for its loss curve


@dataclass(frozen=True)
class RunRow:
    """One training run as a row of the history table."""

    id: str
    name: str
    status: str
    family: str
    engine: str
    steps: int | None
    total_steps: int | None
    final_loss: float | None
    duration: float | None
    loras: tuple[str, ...]
    created_at: float
    run_dir: str

    @property
    def duration_text(self) -> str:
        return fmt_duration(self.duration)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["loras"] = list(self.loras)
        return d


def run_row(snap: JobSnapshot) -> RunRow:
    """The history row of one job snapshot."""
    p = snap.progress
    end = snap.ended_at if snap.ended_at is not None else None
    duration = (end - snap.started_at) if (snap.started_at is not None and end is not None) else p.elapsed
    loras = tuple(a["path"] for a in snap.artifacts if a.get("kind") == "lora")
    return RunRow(id=snap.id, name=snap.name, status=JobStatus(snap.status).value,
                  family=str(snap.meta.get("model_family") or "?"), engine=str(snap.meta.get("engine") or "?"),
                  steps=p.step, total_steps=p.total_steps or snap.meta.get("expected_steps"), final_loss=p.loss,
                  duration=duration, loras=loras, created_at=snap.created_at, run_dir=str(snap.run_dir))


def _sort_value(row: RunRow, key: str) -> Any:
    value = {"created": row.created_at, "name": row.name.lower(), "status": row.status, "family": row.family,
             "engine": row.engine, "steps": row.steps, "loss": row.final_loss, "duration": row.duration,
             "loras": len(row.loras)}[key]
    return (value is None, value if value is not None else 0)   # unknown values last, whichever the order


def loss_series(snap: JobSnapshot, max_bytes: int = LOG_BYTES, last_known: bool = True) -> list[tuple[float, float]]:
    """(step, loss) points of a run, read back from the last ``max_bytes`` of its log with the run's own parser
    (``last_known``: a log without a loss gives the snapshot's last step and loss, if any)."""
    from ..progress.parsers import get_parser

    try:
        with open(snap.log_path, "rb") as f:
            f.seek(max(0, f.seek(0, 2) - max_bytes))
            data = f.read()
    except OSError:
        return []
    parser = get_parser(snap.parser, snap.run_dir, snap.parser_options)
    out: list[tuple[float, float]] = []
    for raw in data.replace(b"\r", b"\n").split(b"\n"):
        if not raw:
            continue
        for ev in parser.feed(raw.decode("utf-8", errors="replace")):
            d = ev.data
            if ev.kind is EventKind.PROGRESS and d.get("loss") is not None and d.get("step") is not None:
                if not out or d["step"] != out[-1][0]:
                    out.append((d["step"], float(d["loss"])))
    if last_known and not out and snap.progress.step is not None and snap.progress.loss is not None:
        out = [(snap.progress.step, snap.progress.loss)]
    return out


def smooth(points: Sequence[tuple[float, float]], weight: float = 0.6) -> list[tuple[float, float]]:
    """Exponential moving average of the losses (TensorBoard's smoothing); ``weight`` in [0, 1)."""
    if not 0 <= weight < 1:
        raise ConfigError(f"The smoothing weight must be at least 0 and below 1, not {weight}.", fix="Use e.g. 0.6.")
    out, last = [], None
    for x, y in points:
        last = y if last is None else last * weight + (1 - weight) * y
        out.append((x, round(last, 10)))
    return out


def overlay_svg(series: dict[str, Sequence[tuple[float, float]]], width: int = 560, height: int = 220) -> str:
    """Several (step, loss) curves on one set of axes, one colour each, with a legend.

    >>> overlay_svg({"a": [(1, 1.0), (2, 0.5)], "b": [(1, 0.8), (3, 0.4)]}).count("<polyline")
    2
    """
    drawn = {k: list(v) for k, v in series.items() if v}
    if not drawn:
        return (f'<svg class="lnb-compare-svg" width="{width}" height="{height}"><text x="10" y="{height // 2}" '
                f'font-size="12" {SVG_TEXT}>no loss values in these runs</text></svg>')
    xs = [x for pts in drawn.values() for x, _ in pts]
    ys = [y for pts in drawn.values() for _, y in pts]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    x1 = x1 if x1 != x0 else x0 + 1
    y1 = y1 if y1 != y0 else y0 + (abs(y0) or 1) * 0.1
    left, right, top, bottom = 48, 8, 8, 20 + 14 * len(drawn)
    pw, ph = width - left - right, height - top - bottom
    parts = [f'<svg class="lnb-compare-svg" width="{width}" height="{height}" data-series="{len(drawn)}" '
             f'xmlns="http://www.w3.org/2000/svg">',
             f'<rect class="lnb-chart-panel" x="{left}" y="{top}" width="{pw}" height="{ph}" {SVG_PANEL}/>']
    for i, (name, pts) in enumerate(drawn.items()):
        if len(pts) > 600:
            stride = len(pts) / 600
            pts = [pts[int(j * stride)] for j in range(600)] + [pts[-1]]
        colour = COLOURS[i % len(COLOURS)]
        path = " ".join(f"{left + (x - x0) / (x1 - x0) * pw:.1f},{top + (1 - (y - y0) / (y1 - y0)) * ph:.1f}" for x, y in pts)
        parts.append(f'<polyline data-run="{_esc(name)}" fill="none" stroke="{colour}" stroke-width="1.5" points="{path}"/>')
        ly = top + ph + 30 + 14 * i
        parts.append(f'<rect x="{left}" y="{ly - 8}" width="10" height="3" fill="{colour}"/>'
                     f'<text x="{left + 14}" y="{ly - 4}" font-size="10" {SVG_TEXT}>{_esc(name)} · loss {pts[-1][1]:.4g}</text>')
    parts.append(f'<text x="2" y="{top + 10}" font-size="10" {SVG_TEXT}>{y1:.4g}</text>'
                 f'<text x="2" y="{top + ph}" font-size="10" {SVG_TEXT}>{y0:.4g}</text>'
                 f'<text x="{left}" y="{top + ph + 14}" font-size="10" {SVG_TEXT}>step {x0:g}</text>'
                 f'<text x="{width - right - 70}" y="{top + ph + 14}" font-size="10" {SVG_TEXT}>step {x1:g}</text></svg>')
    return "".join(parts)


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def config_diff(configs: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Only the options whose values differ between runs: ``{option: {run: value}}`` (missing: None)."""
    keys = sorted({k for c in configs.values() for k in c})
    out: dict[str, dict[str, Any]] = {}
    for key in keys:
        values = {run: c.get(key) for run, c in configs.items()}
        if len({json.dumps(v, sort_keys=True, default=str) for v in values.values()}) > 1:
            out[key] = values
    return out


# sd-scripts: <name>_<step:06d>_<i>_<time>.png or <name>_e<epoch:06d>_...; ai-toolkit: <time>__<step:09d>_<i>.jpg
_KOHYA_STEP = re.compile(r"_(\d{6})_\d+(?:_\d+)?\.\w+$")
_TOOLKIT_STEP = re.compile(r"__(\d{9})_\d+\.\w+$")


def sample_step(path: str) -> int | None:
    """The training step a sample image was made at, from its engine's file name (None when not named by step).

    >>> sample_step("/r/sample/demo_000020_00_20261202120000.png"), sample_step("/r/samples/1733_1__000000250_0.jpg")
    (20, 250)
    """
    name = Path(path).name
    m = _TOOLKIT_STEP.search(name) or _KOHYA_STEP.search(name)
    return int(m.group(1)) if m else None


@dataclass
class RunComparison:
    """2-4 runs compared: their loss curves (smoothed), the options that differ, samples by step."""

    runs: list[RunRow]
    losses: dict[str, list[tuple[float, float]]]
    config_diff: dict[str, dict[str, Any]]
    samples: dict[int, dict[str, list[str]]] = field(default_factory=dict)   # step -> run id -> paths

    @property
    def common_sample_steps(self) -> list[int]:
        """Steps at which every compared run has a sample."""
        ids = {r.id for r in self.runs}
        return sorted(s for s, by_run in self.samples.items() if ids <= set(by_run))

    def loss_svg(self) -> str:
        return overlay_svg({r.name if list(self._names()).count(r.name) == 1 else r.id: self.losses[r.id] for r in self.runs})

    def _names(self) -> Iterable[str]:
        return (r.name for r in self.runs)


class Runs:
    """``ws.runs``: the history of training runs and their comparison.

    >>> import lora_nb, tempfile
    >>> ws = lora_nb.Workspace(tempfile.mkdtemp())
    >>> ws.runs.history(search="alice", status="succeeded", sort="loss")
    []
    """

    def __init__(self, jobs: "JobManager") -> None:
        self.jobs = jobs

    def history(self, search: str = "", status: str | Sequence[str] | None = None, family: str | None = None,
                engine: str | None = None, sort: str = "created", descending: bool = True) -> list[RunRow]:
        """Every training run as a :class:`RunRow`, filtered and sorted.

        ``search`` matches the run's id, name, family, engine, dataset and LoRA file names (case-insensitive,
        every word must match); ``sort`` is one of :data:`SORT_KEYS` (unknown values go last).
        """
        if sort not in SORT_KEYS:
            raise ConfigError(f"Runs cannot be sorted by '{sort}'.", fix="Use one of: " + ", ".join(SORT_KEYS) + ".")
        snaps = self.jobs.snapshots(status=status, kind="training")
        rows = []
        words = search.lower().split()
        for snap in snaps:
            row = run_row(snap)
            if family and row.family != family:
                continue
            if engine and row.engine != engine:
                continue
            hay = " ".join([row.id, row.name, row.family, row.engine, str(snap.meta.get("dataset") or ""),
                            *(Path(p).name for p in row.loras)]).lower()
            if all(w in hay for w in words):
                rows.append(row)
        rows.sort(key=lambda r: _sort_value(r, sort), reverse=descending)
        if descending:   # keep unknowns last in both orders
            rows.sort(key=lambda r: _sort_value(r, sort)[0])
        return rows

    def config(self, run_id: str) -> dict[str, Any]:
        """The TrainingConfig a run was launched with (its ``config.json``), as a dict."""
        snap = self.jobs.get(run_id).snapshot(check=False)
        path = snap.run_dir / "config.json"
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def compare(self, ids: Sequence[str], smoothing: float = 0.6) -> RunComparison:
        """Compare 2-4 runs by id: smoothed loss by step, config differences only, samples by step.

        >>> # cmp = ws.runs.compare([a.id, b.id]); cmp.config_diff; cmp.loss_svg(); cmp.common_sample_steps
        """
        ids = list(dict.fromkeys(ids))
        if not 2 <= len(ids) <= MAX_COMPARE:
            raise ConfigError(f"Compare needs 2 to {MAX_COMPARE} different runs, not {len(ids)}.",
                              fix="Pick between two and four runs from ws.runs.history().")
        snaps = [self.jobs.get(i).snapshot(check=False) for i in ids]
        for s in snaps:
            if s.kind != "training":
                raise ConfigError(f"Job {s.id} is not a training run.", fix="Compare runs listed by ws.runs.history().")
        rows = [run_row(s) for s in snaps]
        losses = {s.id: smooth(loss_series(s), smoothing) for s in snaps}
        diff = config_diff({s.id: self.config(s.id) for s in snaps})
        samples: dict[int, dict[str, list[str]]] = {}
        for s in snaps:
            for a in s.artifacts:
                if a.get("kind") != "sample":
                    continue
                step = sample_step(a["path"])
                if step is not None:
                    samples.setdefault(step, {}).setdefault(s.id, []).append(a["path"])
        return RunComparison(runs=rows, losses=losses, config_diff=diff, samples=dict(sorted(samples.items())))

    def __repr__(self) -> str:
        return "<Runs: ws.runs.history(), ws.runs.compare(ids)>"
