"""DatasetPanel: list, create, rename, delete; import by browser upload, URL, ZIP or folder path;
a paged gallery of thumbnails; the dataset report.

The gallery has a fixed number of cells that are re-used from page to page, so a dataset of
20,000 images costs the same to show as one of 20: only the visible page's thumbnails and
captions are read. The cells are made the first time a dataset with images is shown, so an empty
workspace's first page does not carry them (about 100 widget models fewer to open the dashboard).

>>> import lora_nb, tempfile
>>> from lora_nb.widgets import DatasetPanel
>>> p = DatasetPanel(lora_nb.Workspace(tempfile.mkdtemp()))
>>> p.name_box.value = "cats"; p.create_button.click(); p.select.value
'cats'
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import ipywidgets as W

from lora_nb import Workspace
from lora_nb.progress.events import JobStatus

from lora_nb.errors import InvalidInput, NotFound

if TYPE_CHECKING:  # pragma: no cover
    from lora_nb.jobs.manager import Job

from .common import HTMLStyle, ErrorBanner, JobLine, Runner, css, ended_text, esc, image_bytes

__all__ = ["DatasetPanel", "Gallery"]


class Gallery(W.VBox):
    """A paged grid of ``page_size`` re-used cells: thumbnail, file name, caption (made when first needed)."""

    def __init__(self, runner: Runner, page_size: int = 20, thumb_size: int = 128) -> None:
        self.runner = runner
        self.page_size = page_size
        self.thumb_size = thumb_size
        self.ds: Any = None
        self.files: list[str] = []
        self.page = 0
        self._generation = 0
        self.images: list[W.Image] = []        # the cells: none until a dataset with images is shown
        self.names: list[W.HTML] = []
        self.captions: list[W.HTML] = []
        self.cells: list[W.VBox] = []
        self.prev_button = css(W.Button(description="◀ Prev", layout=W.Layout(width="80px")), "lnb-gallery-prev")
        self.next_button = css(W.Button(description="Next ▶", layout=W.Layout(width="80px")), "lnb-gallery-next")
        self.page_label = css(W.HTML(""), "lnb-gallery-page")
        self.prev_button.on_click(lambda _: self.go(self.page - 1))
        self.next_button.on_click(lambda _: self.go(self.page + 1))
        self.grid = W.Box([], layout=W.Layout(display="flex", flex_flow="row wrap"))
        super().__init__([W.HBox([self.prev_button, self.page_label, self.next_button]), self.grid])
        self.add_class("lnb-gallery")
        self._render()

    def _make_cells(self) -> None:
        size = self.thumb_size
        lay = W.Layout(width=f"{size}px", height=f"{size}px", object_fit="contain")
        html_lay, html_style = W.Layout(), HTMLStyle()     # shared: fewer models in the browser
        self.images = [W.Image(format="jpeg", width=size, height=size, layout=lay) for _ in range(self.page_size)]
        self.names = [W.HTML("", layout=html_lay, style=html_style) for _ in range(self.page_size)]
        self.captions = [W.HTML("", layout=html_lay, style=html_style) for _ in range(self.page_size)]
        self.cells = [css(W.VBox([img, name, cap], layout=W.Layout(width=f"{size + 16}px", margin="4px")), "lnb-gallery-cell")
                      for img, name, cap in zip(self.images, self.names, self.captions)]
        self.grid.children = self.cells

    @property
    def pages(self) -> int:
        return max(1, -(-len(self.files) // self.page_size))

    def show(self, ds: Any, files: list[str] | None = None, page: int = 0) -> None:
        """Show ``files`` (absolute paths; default: every image of ``ds``) starting at ``page``."""
        self.ds = ds
        self.files = list(files) if files is not None else (ds.image_files() if ds is not None else [])
        self.go(page)

    def go(self, page: int) -> None:
        self.page = max(0, min(page, self.pages - 1))
        self._render()

    def visible(self) -> list[str]:
        start = self.page * self.page_size
        return self.files[start:start + self.page_size]

    def _render(self) -> None:
        self._generation += 1
        gen = self._generation
        files = self.visible()
        self.page_label.value = (f"&nbsp;page {self.page + 1} of {self.pages} · {len(self.files):,} images&nbsp;"
                                 if self.files else "&nbsp;no images&nbsp;")
        self.prev_button.disabled = self.page == 0
        self.next_button.disabled = self.page >= self.pages - 1
        if files and not self.cells:
            self._make_cells()
        for i, cell in enumerate(self.cells):
            if i < len(files):
                f = files[i]
                cell.layout.display = ""
                self.names[i].value = f'<span title="{esc(f)}" style="font-size:11px">{esc(Path(f).name)}</span>'
                cap = self._caption(f)
                self.captions[i].value = (f'<div style="font-size:11px;line-height:1.3;color:#555;max-height:3.9em;overflow:hidden">'
                                          f'{esc(cap) if cap is not None else "<i>no caption</i>"}</div>')
                self.images[i].value = b""
            else:
                cell.layout.display = "none"
                self.images[i].value = b""
        if files and self.ds is not None:
            ds, size = self.ds, self.thumb_size
            self.runner.latest("thumbs", ds.thumbnails, [Path(f) for f in files], size,
                               on_done=lambda thumbs: self._set_thumbs(gen, thumbs))

    def _caption(self, f: str) -> str | None:
        try:
            return self.ds.captions.get(f)
        except Exception:
            return None

    def _set_thumbs(self, gen: int, thumbs: list[Path | None]) -> None:
        if gen != self._generation:   # the page changed meanwhile
            return
        for img, t in zip(self.images, thumbs):
            img.value = image_bytes(t)


class DatasetPanel(W.VBox):
    """Datasets: choose, create, rename, delete, import, upload, browse, check."""

    def __init__(self, ws: Workspace | None = None, page_size: int = 20, on_change: Callable[[str | None], Any] | None = None) -> None:
        import lora_nb

        self.ws = ws if ws is not None else lora_nb.Workspace()
        self.on_change = on_change
        self.banner = ErrorBanner()
        self.runner = Runner(self.banner, "lnb-datasets")
        g = self.banner.guard

        self.select = css(W.Dropdown(description="Dataset", options=[]), "lnb-dataset-select")
        self.refresh_button = W.Button(description="Refresh", icon="refresh", layout=W.Layout(width="100px"))
        self.summary = W.HTML("")
        self.name_box = css(W.Text(description="New dataset", placeholder="new dataset name", style={"description_width": "initial"},
                                   layout=W.Layout(width="270px")), "lnb-create-name")
        self.create_button = css(W.Button(description="Create", button_style="primary"), "lnb-create-btn")
        self.rename_box = css(W.Text(description="Rename to", placeholder="new name for this dataset",
                                     style={"description_width": "initial"}, layout=W.Layout(width="270px")), "lnb-rename-name")
        self.rename_button = css(W.Button(description="Rename"), "lnb-rename-btn")
        self.delete_button = css(W.Button(description="Delete", button_style="danger"), "lnb-delete-btn")
        self.source_box = css(W.Text(placeholder="https://…/images.zip, /path/to/archive.zip or /path/to/folder",
                                     layout=W.Layout(width="420px")), "lnb-import-source")
        self.import_button = css(W.Button(description="Import", icon="download"), "lnb-import-btn")
        self.import_line = JobLine(on_final=self._import_finished)
        self.import_line.layout.display = "none"
        self.report_button = css(W.Button(description="Check dataset", icon="check"), "lnb-report-btn")
        self.report_view = css(W.HTML(""), "lnb-report")
        self.gallery = Gallery(self.runner, page_size=page_size)
        self.upload = self._make_upload()
        self._confirm_delete = False
        self._quiet = False

        self.refresh_button.on_click(g(lambda _: self.refresh()))
        self.create_button.on_click(g(self._create))
        self.rename_button.on_click(g(self._rename))
        self.delete_button.on_click(g(self._delete))
        self.import_button.on_click(g(self._import))
        self.report_button.on_click(g(self._report))
        self.select.observe(lambda ch: self._selected(), names="value")

        upload_row = [W.HTML("<b>Upload</b> (ZIP or images, any size):"), self.upload] if self.upload is not None else [
            W.HTML(f"<i>{esc(self._upload_error)}</i>")]
        super().__init__([
            W.HTML("<h3 style='margin:4px 0'>Datasets</h3>"), self.banner,
            W.HBox([self.select, self.refresh_button, self.summary]),
            W.HBox([self.name_box, self.create_button, W.HTML("&nbsp;&nbsp;"), self.rename_box, self.rename_button,
                    self.delete_button]),
            W.HBox([self.source_box, self.import_button, self.import_line]),
            W.HBox(upload_row),
            self.gallery,
            W.HBox([self.report_button]), self.report_view,
        ])
        self.add_class("lnb-datasets")
        g(self.refresh)()

    # -- state ---------------------------------------------------------------------------
    @property
    def dataset(self) -> Any:
        name = self.select.value
        return self.ws.datasets.get(name) if name else None

    def refresh(self, select: str | None = None) -> None:
        names = self.ws.datasets.names()
        keep = select if select is not None else self.select.value
        self._quiet = True
        try:
            self.select.options = names
            self.select.value = keep if keep in names else (names[0] if names else None)
        finally:
            self._quiet = False
        self._selected()

    def _selected(self) -> None:
        if self._quiet:
            return
        self._confirm_delete = False
        self.delete_button.description = "Delete"
        self.report_view.value = ""
        ds = self.dataset
        for w in (self.rename_box, self.rename_button, self.delete_button, self.report_button):   # nothing to act on
            w.disabled = ds is None
        if ds is None:
            self.summary.value = "<i>no dataset yet: create one</i>"
            self.gallery.show(None, [])
        else:
            files = ds.image_files()
            self.summary.value = f"&nbsp;{len(files):,} images"
            self.gallery.show(ds, files)
        if self.on_change is not None:
            self.on_change(self.select.value)

    # -- actions -------------------------------------------------------------------------
    def _create(self, _: Any = None) -> None:
        ds = self.ws.datasets.create(self.name_box.value.strip())
        self.name_box.value = ""
        self.refresh(select=ds.name)
        self.banner.info(f"Created dataset '{ds.name}'.")

    def _rename(self, _: Any = None) -> None:
        if not self.select.value:
            raise InvalidInput('No dataset is selected.', fix='Choose a dataset to rename in the list first.')
        ds = self.ws.datasets.rename(self.select.value, self.rename_box.value.strip())
        self.rename_box.value = ""
        self.refresh(select=ds.name)
        self.banner.info(f"Renamed to '{ds.name}'.")

    def _delete(self, _: Any = None) -> None:
        name = self.select.value
        if not name:
            raise InvalidInput('No dataset is selected.', fix='Choose a dataset to delete in the list first.')
        if not self._confirm_delete:
            self._confirm_delete = True
            self.delete_button.description = f"Really delete '{name}'?"
            return
        self.ws.datasets.delete(name)
        self.refresh()
        self.banner.info(f"Deleted dataset '{name}'.")

    def _target_name(self) -> str:
        name = self.select.value or self.name_box.value.strip()
        if not name:
            raise InvalidInput('There is no dataset to import into.', fix='Choose a dataset, or type a new name, before importing.')
        return name

    def _import(self, _: Any = None) -> None:
        source = self.source_box.value.strip()
        if not source:
            raise InvalidInput('There is nothing to import from.', fix='Type a URL, a .zip path or a folder path to import from.')
        name = self._target_name()
        merge = name in self.ws.datasets.names()
        if source.startswith(("http://", "https://")):
            job = self.ws.datasets.import_url_job(source, name, merge=merge)
            self._url_target = name
            self.import_line.layout.display = ""
            self.import_line.attach(job)
            self.banner.info(f"Downloading into '{name}' (job {job.id}).")
            return
        path = Path(source).expanduser()
        if path.is_dir():
            fn = lambda: self.ws.datasets.import_folder(path, name, merge=merge)  # noqa: E731
        elif path.is_file():
            fn = lambda: self.ws.datasets.import_zip(path, name, merge=merge)  # noqa: E731
        else:
            raise NotFound(f"There is no file or folder {source} on this machine.", fix="Check the path; it is read on the machine that runs the dashboard.")
        self.banner.info(f"Importing {path.name} into '{name}'…")
        self.runner.submit(fn, on_done=lambda result: self._imported(name, result))

    def _imported(self, name: str, result: Any) -> None:
        skipped = len(getattr(result, "skipped", []) or [])
        self.refresh(select=name)
        self.banner.info(f"Imported {len(result.added)} images into '{name}'"
                         + (f"; skipped {skipped} files." if skipped else "."))

    def _import_finished(self, job: Job) -> None:
        self.refresh(select=getattr(self, "_url_target", None))
        if job.status is JobStatus.SUCCEEDED:
            self.banner.info(f"Import finished ({job.name}).")
        else:
            self.banner.error(ended_text(job, "The import"))

    def _report(self, _: Any = None) -> None:
        ds = self.dataset
        if ds is None:
            raise InvalidInput('No dataset is selected.', fix='Choose a dataset to check in the list first.')
        self.report_view.value = "<i>checking…</i>"
        self.runner.submit(ds.report, on_done=lambda r: setattr(self.report_view, "value", report_html(r)))

    # -- upload --------------------------------------------------------------------------
    def _make_upload(self) -> Any:
        self._upload_error = ""
        try:
            from .upload import ChunkedUpload
        except Exception as e:  # the uploader is a separate module; the panel works without it
            self._upload_error = "Browser upload is unavailable here (" + str(e).splitlines()[0][:120] + ")."
            return None
        up_dir = self.ws.tmp_dir / "uploads"
        up_dir.mkdir(exist_ok=True)
        try:
            upload = ChunkedUpload(dest_dir=up_dir, max_bytes=None)
            upload.on_done(self.banner.guard(self._uploaded))
        except Exception as e:
            self._upload_error = "Browser upload is unavailable here (" + str(e).splitlines()[0][:120] + ")."
            return None
        return css(upload, "lnb-upload")

    def _uploaded(self, path: Any) -> None:
        """Called by the uploader with the finished file: a ZIP is imported, an image added."""
        path = Path(path)
        name = self._target_name()
        merge = name in self.ws.datasets.names()

        def work() -> Any:
            try:
                with open(path, "rb") as f:
                    head = f.read(2)
                if head == b"PK":
                    return self.ws.datasets.import_zip(path, name, merge=merge)
                ds = self.ws.datasets.get(name) if merge else self.ws.datasets.create(name)
                return ds.add_images([path])
            finally:
                path.unlink(missing_ok=True)
        self.banner.info(f"Importing {path.name} into '{name}'…")
        self.runner.submit(work, on_done=lambda result: self._imported(name, result))


def report_html(report: Any) -> str:
    """The dataset report as a short HTML block (problems first, each one sentence)."""
    colour = {"error": "#b00020", "warning": "#9a6700", "info": "#555"}
    head = (f"<b>{esc(report.dataset)}</b>: {report.image_count:,} images, {report.captioned:,} captioned, "
            f"{report.samples_per_epoch:,} samples per epoch at {report.resolution[0]}x{report.resolution[1]}.")
    rows = [f'<li style="color:{colour.get(p.severity, "#555")}">[{esc(p.severity)}] {esc(p.message)}</li>' for p in report.issues]
    buckets = ""
    if report.buckets:
        buckets = "<br>Buckets: " + esc(", ".join(f"{w}x{h}: {n}" for (w, h), n in sorted(report.buckets.items())))
    body = "<ul style='margin:2px 0'>" + "".join(rows) + "</ul>" if rows else "<br><span style='color:#1b5e20'>No problems found.</span>"
    return f"<div class='lnb-report-body'>{head}{buckets}{body}</div>"

