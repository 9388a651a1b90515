"""ModelsPanel: the base models in the workspace (kind and family read from file headers), the
starter list, and downloads (Hugging Face, Civitai, https) as jobs with live progress.

``ws.models`` is used lazily; if the model library cannot be loaded the panel says so in one sentence.

>>> import lora_nb, tempfile
>>> from lora_nb.widgets import ModelsPanel
>>> p = ModelsPanel(lora_nb.Workspace(tempfile.mkdtemp())); p.runner.idle(); "no models" in p.table.value
True
"""
from __future__ import annotations

from typing import Any

import ipywidgets as W

from lora_nb import Workspace
from lora_nb.progress.events import JobStatus
from lora_nb.jobs.manager import Job

from lora_nb.errors import InvalidInput

from .common import ErrorBanner, JobLine, Runner, css, ended_text, esc, fmt_bytes

__all__ = ["ModelsPanel"]


class ModelsPanel(W.VBox):
    """Local models, starters, downloads."""

    def __init__(self, ws: Workspace | None = None) -> None:
        import lora_nb

        self.ws = ws if ws is not None else lora_nb.Workspace()
        self.banner = ErrorBanner()
        self.runner = Runner(self.banner, "lnb-models")
        g = self.banner.guard
        self.table = css(W.HTML(""), "lnb-models-table")
        self.refresh_button = W.Button(description="Refresh", icon="refresh")
        self.family = css(W.Dropdown(description="Starters", options=[], layout=W.Layout(width="260px")), "lnb-models-family")
        self.starter = css(W.Dropdown(options=[], layout=W.Layout(width="520px")), "lnb-models-starter")
        self.source = css(W.Text(description="Source", placeholder="hf:owner/repo/file.safetensors, civitai:12345 or https://…",
                                 layout=W.Layout(width="560px")), "lnb-models-source")
        self.subfolder = W.Text(description="Into", placeholder="sub-folder of models/ (optional)", layout=W.Layout(width="300px"))
        self.download_button = css(W.Button(description="Download", icon="download", button_style="primary"), "lnb-models-download")
        self.line = JobLine(on_final=self._done)
        self.refresh_button.on_click(g(lambda _: self.refresh()))
        self.download_button.on_click(g(self.download))
        self.family.observe(lambda ch: g(self._family)(ch["new"]), names="value")
        self.starter.observe(lambda ch: setattr(self.source, "value", ch["new"] or self.source.value), names="value")
        self.line.add_class("lnb-models-progress")
        super().__init__([W.HTML("<h3 style='margin:4px 0'>Models</h3>"), self.banner, W.HBox([self.refresh_button]), self.table,
                          W.HTML("<b>Download</b>"), W.HBox([self.family, self.starter]), self.source,
                          W.HBox([self.subfolder, self.download_button]), self.line])
        self.add_class("lnb-models")
        try:
            self.library = self.ws.models
            self.starters = self.library.starters()
        except Exception as e:
            self.library = None
            self.starters = {}
            self.banner.error(f"The model library is unavailable: {str(e).splitlines()[0] if str(e) else type(e).__name__}.")
            self.download_button.disabled = self.refresh_button.disabled = True
            return
        self.family.options = list(self.starters)
        self.family.value = next(iter(self.starters), None)      # both dropdowns show something from the start
        g(self.refresh)()

    def _family(self, fam: str | None) -> None:
        items = self.starters.get(fam, []) if fam else []
        self.starter.options = [(f"{s.name} · {s.size}" + (" · gated: needs an HF token" if s.gated else "")
                                 + (f" · {s.note}" if s.note else ""), s.source) for s in items]
        self.starter.value = items[0].source if items else None

    def refresh(self) -> None:
        self.table.value = "<i>reading model headers…</i>"
        self.runner.submit(self.library.list, on_done=self._show)

    def _show(self, entries: list[Any]) -> None:
        if not entries:
            self.table.value = "<i>no models in models/ yet: download one below, or copy files there.</i>"
            return
        rows = "".join(f"<tr><td>{esc(e.path.relative_to(self.library.folder))}</td><td>{esc(e.kind)}</td><td>{esc(e.family)}</td>"
                       f"<td style='text-align:right'>{fmt_bytes(e.size)}</td></tr>" for e in entries)
        self.table.value = ("<table style='font-size:12px'><tr><th align=left>file</th><th align=left>kind</th>"
                            f"<th align=left>family</th><th>size</th></tr>{rows}</table>")

    def download(self, _: Any = None) -> Any:
        source = self.source.value.strip()
        if not source:
            raise InvalidInput('There is no model to download.', fix='Type a source (a Hub id, a URL) or pick a starter model.')
        job = self.library.download(source, subfolder=self.subfolder.value.strip() or None)
        self.line.attach(job)
        self.banner.info(f"Downloading {source} (job {job.id}).")
        return job

    def _done(self, job: Job) -> None:
        if job.status is JobStatus.SUCCEEDED:
            self.banner.info(f"{job.name}: done.")
            self.refresh()
        else:
            self.banner.error(ended_text(job))
