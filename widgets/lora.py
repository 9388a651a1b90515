"""LoraPanel: browse the workspace's LoRAs (``loras/`` and run outputs), read their metadata,
verify, resize (a job) and publish to the Hugging Face Hub (a job).

``lora_nb.lora`` is imported when the panel is built; if that fails the panel says so in one
sentence and its buttons stay disabled.

>>> import lora_nb, tempfile
>>> from lora_nb.widgets import LoraPanel
>>> LoraPanel(lora_nb.Workspace(tempfile.mkdtemp())).select.options
()
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import ipywidgets as W

from lora_nb import Workspace
from lora_nb.progress.events import JobStatus

from lora_nb.errors import InvalidInput

from .common import ErrorBanner, JobLine, Runner, css, ended_text, esc, fmt_bytes

__all__ = ["LoraPanel"]

_SHOWN_META = ("ss_output_name", "ss_base_model_version", "ss_sd_model_name", "ss_network_module", "ss_network_dim",
               "ss_network_alpha", "ss_resolution", "ss_num_train_images", "ss_num_epochs", "ss_steps", "ss_learning_rate",
               "ss_optimizer", "ss_training_comment", "modelspec.title")


class LoraPanel(W.VBox):
    """LoRA files: metadata, verify, resize, publish."""

    def __init__(self, ws: Workspace | None = None) -> None:
        import lora_nb

        self.ws = ws if ws is not None else lora_nb.Workspace()
        self.banner = ErrorBanner()
        self.runner = Runner(self.banner, "lnb-lora")
        g = self.banner.guard
        self.lora: Any = None
        self.unavailable = ""
        try:
            import lora_nb.lora as L

            L.list_loras  # noqa: B018 - resolves the lazy attribute now, so a broken module is reported here
            self.L = L
        except Exception as e:
            self.L = None
            self.unavailable = f"LoRA tools are unavailable: {str(e).splitlines()[0] if str(e) else type(e).__name__}."

        self.select = css(W.Select(options=[], rows=8, layout=W.Layout(width="100%")), "lnb-lora-list")
        self.refresh_button = W.Button(description="Refresh", icon="refresh")
        self.details = css(W.HTML(""), "lnb-lora-details")
        self.verify_button = css(W.Button(description="Verify", icon="check"), "lnb-lora-verify")
        self.verify_view = css(W.HTML(""), "lnb-lora-verify-result")
        self.rank = css(W.BoundedIntText(description="New rank", value=8, min=1, max=1024, layout=W.Layout(width="180px")), "lnb-lora-rank")
        # "rank", not None: a Dropdown whose value is None shows nothing at all
        self.method = css(W.Dropdown(description="Method", options=[("fixed rank", "rank"), ("sv_ratio", "sv_ratio"), ("sv_fro", "sv_fro"),
                                                                    ("sv_cumulative", "sv_cumulative")], value="rank",
                                     layout=W.Layout(width="220px")), "lnb-lora-method")
        self.param = css(W.FloatText(description="Param", value=0.9, disabled=True, layout=W.Layout(width="160px"),
                                     tooltip="the threshold of the sv_* methods (unused for a fixed rank)"), "lnb-lora-param")
        self.method.observe(lambda ch: setattr(self.param, "disabled", ch["new"] == "rank"), names="value")
        self.resize_button = css(W.Button(description="Resize", icon="compress"), "lnb-lora-resize")
        self.resize_line = css(JobLine(on_final=self._job_done), "lnb-lora-resize-progress")
        self.repo = css(W.Text(description="Repo", placeholder="you/my-lora", layout=W.Layout(width="300px")), "lnb-lora-repo")
        self.private = W.Checkbox(description="private", value=True, indent=False, layout=W.Layout(width="90px"))
        self.token = W.Password(description="Token", placeholder="HF token (else HF_TOKEN / saved login)", layout=W.Layout(width="330px"))
        self.publish_button = css(W.Button(description="Publish", icon="upload"), "lnb-lora-publish")
        self.publish_line = css(JobLine(on_final=self._job_done), "lnb-lora-publish-progress")
        for b, fn in ((self.refresh_button, lambda _: self.refresh()), (self.verify_button, self.verify),
                      (self.resize_button, self.resize), (self.publish_button, self.publish)):
            b.on_click(g(fn))
        self.select.observe(lambda ch: g(self._selected)(ch["new"]), names="value")
        super().__init__([
            W.HTML("<h3 style='margin:4px 0'>LoRA files</h3>"), self.banner, W.HBox([self.refresh_button]), self.select,
            self.details, W.HBox([self.verify_button]), self.verify_view,
            W.HTML("<b>Resize</b> (lower rank, smaller file)"), W.HBox([self.rank, self.method, self.param, self.resize_button]),
            self.resize_line,
            W.HTML("<b>Publish</b> to the Hugging Face Hub"), W.HBox([self.repo, self.private, self.token, self.publish_button]),
            self.publish_line,
        ])
        self.add_class("lnb-lora")
        if self.unavailable:
            self.banner.error(self.unavailable)
            for b in (self.refresh_button, self.verify_button, self.resize_button, self.publish_button):
                b.disabled = True
        else:
            g(self.refresh)()

    def refresh(self) -> None:
        infos = self.L.list_loras(self.ws)
        self.infos = {str(i.path): i for i in infos}
        keep = self.select.value
        self.select.options = [(f"{i.path.name} · rank {i.rank} · {i.family} · {fmt_bytes(i.size)}", str(i.path)) for i in infos]
        self.select.value = keep if keep in self.infos else (str(infos[0].path) if infos else None)
        if self.select.value is None:
            self.details.value = "<i>No LoRA files yet: finished training runs and files in loras/ appear here.</i>"

    def _selected(self, path: str | None) -> None:
        self.verify_view.value = ""
        if not path:
            self.lora = None
            return
        info = self.infos.get(path) or self.L.lora_info(path)
        self.lora = info
        rows = [("file", str(info.path)), ("size", fmt_bytes(info.size)), ("network", info.network), ("family", info.family),
                ("rank", info.rank), ("alpha", info.alpha), ("modules", info.modules), ("dtype", info.dtype),
                ("trigger words", ", ".join(info.trigger_words) or "-")]
        rows += [(k, info.metadata[k]) for k in _SHOWN_META if k in info.metadata]
        self.details.value = ("<table class='lnb-lora-meta' style='font-size:12px'>"
                              + "".join(f"<tr><td style='color:#555;padding-right:8px'>{esc(k)}</td><td>{esc(v)}</td></tr>" for k, v in rows)
                              + "</table>")

    def _path(self) -> Path:
        if self.lora is None:
            raise InvalidInput('No LoRA file is selected.', fix='Choose a LoRA file in the list first.')
        return Path(self.lora.path)

    def verify(self, _: Any = None) -> None:
        path = self._path()
        self.verify_view.value = "<i>checking…</i>"
        self.runner.submit(self.L.verify, path, on_done=lambda r: setattr(
            self.verify_view, "value", f"<pre style='font-size:11px;color:{'#1b5e20' if r.ok else '#b00020'}'>{esc(r.summary())}</pre>"))

    def resize(self, _: Any = None) -> Any:
        path = self._path()
        options: dict[str, Any] = {"rank": int(self.rank.value)}
        if self.method.value and self.method.value != "rank":
            options.update(method=self.method.value, param=float(self.param.value))
        job = self.L.resize_job(self.ws, path, **options)
        self.resize_line.attach(job)
        self.banner.info(f"Resizing {path.name} (job {job.id}).")
        return job

    def publish(self, _: Any = None) -> Any:
        path = self._path()
        repo = self.repo.value.strip()
        if not repo:
            raise InvalidInput('No Hub repository was given.', fix='Type it like you/my-lora.')
        token = self.token.value or None
        self.token.value = ""                 # never kept in the widget's state
        job = self.L.publish(path, repo, ws=self.ws, private=self.private.value, token=token)
        self.publish_line.attach(job)
        self.banner.info(f"Publishing {path.name} to {repo} (job {job.id}).")
        return job

    def _job_done(self, job: Any) -> None:
        if job.status is JobStatus.SUCCEEDED:
            self.banner.info(f"{job.name}: done.")
            self.refresh()
        else:
            self.banner.error(ended_text(job))
