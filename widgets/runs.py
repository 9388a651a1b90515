"""RunsPanel: the history of training runs (sortable, filterable, searchable) and 2-4 runs compared.

Rows come from ``ws.runs.history(...)`` (one read of every training job); the comparison from
``ws.runs.compare(ids)``: loss curves overlaid (smoothed, by step), only the options that differ,
and sample images side by side at the steps every run has one. The comparison reads logs, so the
Compare button runs it on a daemon thread.

>>> import lora_nb, tempfile
>>> p = RunsPanel(lora_nb.Workspace(tempfile.mkdtemp()))
>>> p.rows, p.pick.options
([], ())
"""
from __future__ import annotations

import base64
import json
import mimetypes
import threading
from pathlib import Path
from typing import Sequence

import ipywidgets as W

from lora_nb import Workspace
from lora_nb.jobs.history import SORT_KEYS, RunComparison, RunRow

from .common import ErrorBanner, chip, css, esc

__all__ = ["RunsPanel", "history_html", "comparison_html"]

_CHIP = {"succeeded": ("ok", "✓"), "failed": ("err", "✗"), "stopped": ("warn", "■"), "running": ("run", "▶"),
         "starting": ("run", "…"), "queued": ("idle", "⏲")}
_STATUSES = ("any", "succeeded", "failed", "stopped", "running", "queued")
MAX_SAMPLE_BYTES = 4 << 20


def _loss(v: float | None) -> str:
    return "–" if v is None else f"{v:.4g}"


def history_html(rows: Sequence[RunRow], sort: str = "created", descending: bool = True) -> str:
    """The history table as HTML (the sorted column marked with an arrow)."""
    if not rows:
        return '<div class="lnb-runs-empty" style="color:#666">No training runs match. Start one in the Training tab.</div>'
    cols = [("name", "Run"), ("status", "Status"), ("family", "Family"), ("engine", "Engine"), ("steps", "Steps"),
            ("loss", "Final loss"), ("duration", "Duration"), ("loras", "LoRA files")]
    arrow = " ▼" if descending else " ▲"
    head = "".join(f'<th data-col="{k}">{esc(t)}{arrow if k == sort else ""}</th>' for k, t in cols)
    body = []
    for r in rows:
        kind, icon = _CHIP.get(r.status, ("idle", ""))
        steps = "–" if r.steps is None else (f"{r.steps:,}/{r.total_steps:,}" if r.total_steps else f"{r.steps:,}")
        loras = ", ".join(esc(Path(p).name) for p in r.loras) or "–"
        body.append(f'<tr data-run="{esc(r.id)}"><td title="{esc(r.id)}">{esc(r.name)}</td><td>{chip(r.status, kind, icon)}</td>'
                    f'<td>{esc(r.family)}</td><td>{esc(r.engine)}</td><td>{steps}</td><td>{_loss(r.final_loss)}</td>'
                    f'<td>{esc(r.duration_text)}</td><td>{loras}</td></tr>')
    return (f'<table class="lnb-runs-table" style="border-collapse:collapse;width:100%"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table>')


def _img(path: str) -> str:
    p = Path(path)
    try:
        if p.stat().st_size > MAX_SAMPLE_BYTES:
            return f'<div style="color:#666">{esc(p.name)} (too large to inline)</div>'
        data = base64.b64encode(p.read_bytes()).decode()
    except OSError:
        return f'<div style="color:#666">{esc(p.name)} (missing)</div>'
    mime = mimetypes.guess_type(p.name)[0] or "image/png"
    return f'<img class="lnb-compare-sample" src="data:{mime};base64,{data}" title="{esc(p.name)}" style="max-width:160px;max-height:160px"/>'


def comparison_html(cmp: RunComparison) -> str:
    """The comparison as HTML: overlaid loss curves, the options that differ, samples side by side."""
    names = {r.id: r.name for r in cmp.runs}
    out = [f'<div class="lnb-compare-loss"><b>Loss (smoothed, by step)</b><br>{cmp.loss_svg()}</div>']
    if cmp.config_diff:
        head = "".join(f"<th>{esc(names[r.id])}</th>" for r in cmp.runs)
        rows = "".join(f'<tr data-option="{esc(k)}"><td><code>{esc(k)}</code></td>'
                       + "".join(f"<td>{esc(json.dumps(v.get(r.id), default=str))}</td>" for r in cmp.runs) + "</tr>"
                       for k, v in cmp.config_diff.items())
        out.append(f'<div><b>Options that differ</b><table class="lnb-compare-diff"><tr><th>option</th>{head}</tr>{rows}</table></div>')
    else:
        out.append('<div class="lnb-compare-diff-none">The runs were launched with the same options.</div>')
    steps = cmp.common_sample_steps
    if steps:
        head = "".join(f"<th>{esc(names[r.id])}</th>" for r in cmp.runs)
        rows = "".join(f'<tr data-step="{s}"><td>step {s}</td>'
                       + "".join("<td>" + "".join(_img(p) for p in cmp.samples[s][r.id][:2]) + "</td>" for r in cmp.runs)
                       + "</tr>" for s in steps)
        out.append(f'<div><b>Samples at the same steps</b><table class="lnb-compare-samples"><tr><th></th>{head}</tr>{rows}</table></div>')
    else:
        out.append('<div class="lnb-compare-samples-none" style="color:#666">No step has a sample image in every one of these runs.</div>')
    return "".join(out)


class RunsPanel(W.VBox):
    """Run history with search, filters and sorting; pick 2-4 runs and Compare."""

    def __init__(self, ws: Workspace | None = None) -> None:
        self.ws = ws if ws is not None else Workspace()
        self.banner = ErrorBanner()
        g = self.banner.guard
        self.search = css(W.Text(placeholder="search runs (name, id, family, engine, dataset, LoRA)", continuous_update=False,
                                 layout=W.Layout(width="320px")), "lnb-runs-search")
        self.status = css(W.Dropdown(options=_STATUSES, value="any", description="Status", layout=W.Layout(width="200px")),
                          "lnb-runs-status")
        self.family = css(W.Dropdown(options=["any"], value="any", description="Family", layout=W.Layout(width="200px")),
                          "lnb-runs-family")
        self.sort = css(W.Dropdown(options=SORT_KEYS, value="created", description="Sort by", layout=W.Layout(width="200px")),
                        "lnb-runs-sort")
        self.descending = css(W.ToggleButton(value=True, description="Descending", icon="sort-amount-desc"), "lnb-runs-order")
        self.refresh_button = css(W.Button(description="Refresh", icon="refresh"), "lnb-runs-refresh")
        self.table = css(W.HTML(""), "lnb-runs-history")
        self.pick = css(W.SelectMultiple(options=[], rows=6, description="Compare", layout=W.Layout(width="100%")), "lnb-runs-pick")
        self.compare_button = css(W.Button(description="Compare", icon="columns", disabled=True,
                                           tooltip="Pick 2 to 4 runs to compare"), "lnb-runs-compare")
        self.comparison = css(W.HTML(""), "lnb-runs-comparison")
        self.rows: list[RunRow] = []
        self.last_comparison: RunComparison | None = None
        self._thread: threading.Thread | None = None
        for w in (self.search, self.status, self.family, self.sort, self.descending):
            w.observe(lambda ch: g(self.refresh)(), names="value")
        self.refresh_button.on_click(g(lambda _: self.refresh()))
        self.pick.observe(lambda ch: self._picked(), names="value")
        self.compare_button.on_click(g(lambda _: self._compare_clicked()))
        super().__init__([W.HTML("<h3 style='margin:4px 0'>Runs</h3>"), self.banner,
                          W.HBox([self.search, self.refresh_button]),
                          W.HBox([self.status, self.family, self.sort, self.descending]), self.table,
                          self.pick, self.compare_button, self.comparison])
        self.add_class("lnb-runs")
        g(self.refresh)()

    def refresh(self) -> None:
        """Re-read the history with the current search, filters and order."""
        status = None if self.status.value == "any" else self.status.value
        family = None if self.family.value == "any" else self.family.value
        self.rows = self.ws.runs.history(search=self.search.value, status=status, family=family, sort=self.sort.value,
                                         descending=self.descending.value)
        self.descending.description = "Descending" if self.descending.value else "Ascending"
        self.table.value = history_html(self.rows, self.sort.value, self.descending.value)
        families = sorted({r.family for r in self.ws.runs.history()})
        if list(self.family.options) != ["any", *families]:
            keep = self.family.value
            self.family.options = ["any", *families]
            self.family.value = keep if keep in self.family.options else "any"
        chosen = tuple(v for v in self.pick.value if v in {r.id for r in self.rows})
        self.pick.options = [(f"{r.name} · {r.status} · {r.id}", r.id) for r in self.rows]
        self.pick.value = chosen
        self._picked()

    def _picked(self) -> None:
        n = len(self.pick.value)
        ok = 2 <= n <= 4
        busy = self._thread is not None and self._thread.is_alive()
        self.compare_button.disabled = not ok or busy
        self.compare_button.tooltip = "Compare the picked runs" if ok else f"Pick 2 to 4 runs to compare ({n} picked)"

    def compare(self, ids: Sequence[str]) -> RunComparison:
        """Compare runs by id now (in this thread) and show the result."""
        cmp = self.ws.runs.compare(ids)
        self.last_comparison = cmp
        self.comparison.value = comparison_html(cmp)
        return cmp

    def _compare_clicked(self) -> None:
        ids = list(self.pick.value)
        self.compare_button.disabled = True
        self.comparison.value = '<div style="color:#666">Reading the runs…</div>'

        def work() -> None:
            try:
                self.compare(ids)
                self.banner.clear()
            except Exception as e:  # shown as one sentence
                self.comparison.value = ""
                self.banner.error(e)
            finally:
                self._thread = None
                self._picked()
        self._thread = threading.Thread(target=work, name="lnb-runs-compare", daemon=True)
        self._thread.start()
