"""CaptionGrid: thumbnail + editable caption per image, paged with re-used cells; selection;
a bulk toolbar (trigger word, search/replace, remove, sort, dedupe, undo) that previews how many
captions would change; tag-frequency chips that filter the grid.

>>> import lora_nb, tempfile
>>> from lora_nb.widgets import CaptionGrid
>>> ws = lora_nb.Workspace(tempfile.mkdtemp()); _ = ws.datasets.create("d")
>>> grid = CaptionGrid(ws, dataset="d"); grid.op.value = "dedupe"; grid.preview_now(); grid.preview_label.value
'would change 0 of 0 captions'
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import ipywidgets as W

from lora_nb import Workspace

from lora_nb.errors import InvalidInput

from .common import CheckboxStyle, HTMLStyle, TextStyle, ToggleButtonStyle, ErrorBanner, Runner, css, esc, image_bytes

__all__ = ["CaptionGrid", "OPS"]

# operation -> (label, what the two text boxes mean)
OPS: dict[str, tuple[str, str, str]] = {
    "add_trigger": ("Add trigger word(s)", "words, comma separated", ""),
    "replace": ("Search and replace tag", "old tag", "new tag (empty: remove)"),
    "replace_text": ("Search and replace text", "old text", "new text"),
    "remove": ("Remove tags", "tags, comma separated", ""),
    "keep_only": ("Keep only tags", "tags, comma separated", ""),
    "sort": ("Sort tags A-Z", "keep first N tags (number)", ""),
    "sort_frequency": ("Sort tags by frequency", "keep first N tags (number)", ""),
    "dedupe": ("Remove repeated tags", "", ""),
    "underscores_to_spaces": ("Underscores to spaces", "", ""),
}


class CaptionGrid(W.VBox):
    """Edit a dataset's captions. Edits are saved when a text box loses focus (or Enter in it)."""

    def __init__(self, ws: Workspace | None = None, dataset: str | None = None, page_size: int = 12, thumb_size: int = 128,
                 chips: int = 30) -> None:
        import lora_nb

        self.ws = ws if ws is not None else lora_nb.Workspace()
        self.page_size = page_size
        self.thumb_size = thumb_size
        self.banner = ErrorBanner()
        self.runner = Runner(self.banner, "lnb-captions")
        g = self.banner.guard
        self.ds: Any = None
        self.all_files: list[str] = []
        self.files: list[str] = []          # after the tag filter
        self.filter_tags: list[str] = []
        self.selected: set[str] = set()
        self.page = 0
        self._generation = 0
        self._loading = False

        self.select = css(W.Dropdown(description="Dataset", options=[]), "lnb-caption-dataset")
        self.reload_button = W.Button(description="Reload", icon="refresh", layout=W.Layout(width="90px"))
        # cells
        check_lay, html_lay, text_lay = W.Layout(width="24px"), W.Layout(), W.Layout(width="100%", height="90px")
        img_lay = W.Layout(width=f"{thumb_size}px", height=f"{thumb_size}px", object_fit="contain")
        check_style, html_style, text_style = CheckboxStyle(), HTMLStyle(), TextStyle()   # shared by every cell
        self.checks = [css(W.Checkbox(value=False, indent=False, layout=check_lay, style=check_style), "lnb-caption-check")
                       for _ in range(page_size)]
        self.images = [W.Image(format="jpeg", width=thumb_size, height=thumb_size, layout=img_lay) for _ in range(page_size)]
        self.names = [W.HTML("", layout=html_lay, style=html_style) for _ in range(page_size)]
        self.texts = [css(W.Textarea(continuous_update=False, layout=text_lay, style=text_style), "lnb-caption-text")
                      for _ in range(page_size)]
        self.cells = []
        for i in range(page_size):
            cell = css(W.HBox([W.VBox([self.checks[i], self.images[i]]), W.VBox([self.names[i], self.texts[i]],
                                                                                   layout=W.Layout(flex="1"))],
                               layout=W.Layout(width="48%", margin="4px", border="1px solid #ddd")), "lnb-caption-cell")
            self.cells.append(cell)
            self.texts[i].observe(g(lambda ch, i=i: self._edited(i, ch["new"])), names="value")
            self.checks[i].observe(lambda ch, i=i: self._checked(i, ch["new"]), names="value")
        # pager and selection
        self.prev_button = css(W.Button(description="◀ Prev", layout=W.Layout(width="80px")), "lnb-caption-prev")
        self.next_button = css(W.Button(description="Next ▶", layout=W.Layout(width="80px")), "lnb-caption-next")
        self.page_label = W.HTML("")
        self.select_page_button = W.Button(description="Select page", layout=W.Layout(width="110px"))
        self.select_all_button = W.Button(description="Select all shown", layout=W.Layout(width="130px"))
        self.select_none_button = W.Button(description="Select none", layout=W.Layout(width="110px"))
        self.selection_label = css(W.HTML(""), "lnb-selection")
        # bulk toolbar
        self.op = css(W.Dropdown(options=[(v[0], k) for k, v in OPS.items()], value="add_trigger", layout=W.Layout(width="220px")), "lnb-bulk-op")
        self.arg1 = css(W.Text(layout=W.Layout(width="200px")), "lnb-bulk-arg1")
        self.arg2 = css(W.Text(layout=W.Layout(width="200px")), "lnb-bulk-arg2")
        self.where = W.Dropdown(options=["start", "end", "both"], value="start", layout=W.Layout(width="80px"))
        self.regex = W.Checkbox(description="regex", value=False, indent=False, layout=W.Layout(width="70px"))
        self.preview_label = css(W.HTML(""), "lnb-bulk-preview")
        self.apply_button = css(W.Button(description="Apply", button_style="primary", icon="check"), "lnb-bulk-apply")
        self.undo_button = css(W.Button(description="Undo", icon="undo", disabled=True, tooltip="nothing to undo"), "lnb-undo")
        self.toolbar = css(W.HBox([self.op, self.arg1, self.arg2, self.where, self.regex, self.apply_button, self.undo_button,
                                   self.preview_label], layout=W.Layout(flex_flow="row wrap")), "lnb-bulk-toolbar")
        # tag chips
        chip_style = ToggleButtonStyle()
        self.chip_buttons = [css(W.ToggleButton(value=False, layout=W.Layout(width="auto", display="none"), style=chip_style),
                                 "lnb-tag-chip") for _ in range(chips)]
        for b in self.chip_buttons:
            b.observe(g(lambda ch, b=b: self._chip(b, ch["new"])), names="value")
        self.clear_filter_button = W.Button(description="Clear filter", layout=W.Layout(width="100px"))
        self.filter_label = css(W.HTML(""), "lnb-filter")

        self.select.observe(g(lambda ch: self.load(ch["new"])), names="value")
        self.reload_button.on_click(g(lambda _: self.reload()))
        self.prev_button.on_click(lambda _: self.go(self.page - 1))
        self.next_button.on_click(lambda _: self.go(self.page + 1))
        self.select_page_button.on_click(lambda _: self._select_files(self._visible(), True))
        self.select_all_button.on_click(lambda _: self._select_files(self.files, True))
        self.select_none_button.on_click(lambda _: self._select_files(list(self.selected), False))
        self.apply_button.on_click(g(self._apply))
        self.undo_button.on_click(g(self._undo))
        self.clear_filter_button.on_click(g(lambda _: self.set_filter([])))
        for w in (self.op, self.arg1, self.arg2, self.where, self.regex):
            w.observe(lambda ch: self._op_changed(), names="value")

        grid = W.Box(self.cells, layout=W.Layout(display="flex", flex_flow="row wrap"))
        super().__init__([
            W.HTML("<h3 style='margin:4px 0'>Captions</h3>"), self.banner,
            W.HBox([self.select, self.reload_button]),
            W.HBox([W.HTML("<b>Tags</b>&nbsp;"), self.clear_filter_button, self.filter_label]),
            css(W.Box(self.chip_buttons, layout=W.Layout(display="flex", flex_flow="row wrap")), "lnb-tag-chips"),
            self.toolbar,
            W.HBox([self.prev_button, self.page_label, self.next_button, self.select_page_button, self.select_all_button,
                    self.select_none_button, self.selection_label]),
            grid,
        ])
        self.add_class("lnb-captions")
        self._op_changed()
        g(self.refresh_datasets)(dataset)

    # -- loading -------------------------------------------------------------------------
    def refresh_datasets(self, select: str | None = None) -> None:
        names = self.ws.datasets.names()
        keep = select or self.select.value
        self.select.options = names
        value = keep if keep in names else (names[0] if names else None)
        if self.select.value == value:
            self.load(value)
        else:
            self.select.value = value

    def load(self, name: str | None) -> None:
        self.ds = self.ws.datasets.get(name) if name else None
        self.selected.clear()
        self.filter_tags = []
        self.reload()

    def reload(self) -> None:
        """Re-read the file list, tag counts and the visible page (after tagging or outside edits)."""
        self.all_files = self.ds.image_files() if self.ds is not None else []
        self._apply_filter()
        self._refresh_chips()
        self._undo_state()

    def _undo_state(self) -> None:
        """Undo is enabled only when the dataset has a bulk edit (or a tagging run) to undo; its tooltip names it."""
        history = self.ds.captions.history() if self.ds is not None else []
        self.undo_button.disabled = not history
        self.undo_button.tooltip = (f"undo {history[-1]['op']} ({history[-1]['count']:,} captions)" if history
                                    else "nothing to undo")

    def _apply_filter(self, page: int = 0) -> None:
        if self.ds is not None and self.filter_tags:
            self.files = [str(p) for p in self.ds.captions.filter(with_tags=self.filter_tags)]
        else:
            self.files = list(self.all_files)
        self.filter_label.value = (f"&nbsp;showing images tagged <b>{esc(', '.join(self.filter_tags))}</b>: {len(self.files):,}"
                                   if self.filter_tags else "")
        self.go(page)
        self._op_changed()

    def _refresh_chips(self) -> None:
        """Count tags off the kernel's thread (a big dataset reads every caption file); the grid is usable
        meanwhile. The count works on a snapshot (this dataset, now); a result for an older request is dropped."""
        if not hasattr(self, "tag_runner"):
            self.tag_runner = Runner(self.banner, "lnb-caption-tags")
            self._tag_generation = 0
        self._tag_generation += 1
        gen, ds, n = self._tag_generation, self.ds, len(self.chip_buttons)
        if ds is None:
            self._show_chips(gen, [])
            return
        self.filter_label.value = self.filter_label.value or "&nbsp;<i class='lnb-tags-counting'>counting tags…</i>"
        self.tag_runner.latest("freq", lambda: ds.captions.frequencies().most_common(n),
                               on_done=lambda freq: self._show_chips(gen, freq))

    def _show_chips(self, gen: int, freq: list[tuple[str, int]]) -> None:
        if gen != self._tag_generation:      # stale: the dataset or its captions changed meanwhile
            return
        if "counting tags" in self.filter_label.value:
            self.filter_label.value = ""
        for b, item in zip(self.chip_buttons, freq + [None] * len(self.chip_buttons)):
            if item is None:
                b.layout.display = "none"
                b.tag = None
                continue
            tag, n = item
            b.tag = tag
            b.description = f"{tag} ({n})"
            b.layout.display = ""
            with b.hold_trait_notifications():
                self._loading = True
                b.value = tag in self.filter_tags
                self._loading = False

    def set_filter(self, tags: list[str]) -> None:
        """Show only images whose captions hold all of ``tags`` ([] shows every image)."""
        self.filter_tags = list(tags)
        self._loading = True
        for b in self.chip_buttons:
            b.value = getattr(b, "tag", None) in self.filter_tags
        self._loading = False
        self._apply_filter()

    def _chip(self, button: W.ToggleButton, on: bool) -> None:
        if self._loading or getattr(button, "tag", None) is None:
            return
        tags = [t for t in self.filter_tags if t != button.tag] + ([button.tag] if on else [])
        self.set_filter(tags)

    # -- paging --------------------------------------------------------------------------
    @property
    def pages(self) -> int:
        return max(1, -(-len(self.files) // self.page_size))

    def _visible(self) -> list[str]:
        start = self.page * self.page_size
        return self.files[start:start + self.page_size]

    def go(self, page: int) -> None:
        self.page = max(0, min(page, self.pages - 1))
        self._generation += 1
        gen = self._generation
        files = self._visible()
        self.page_label.value = f"&nbsp;page {self.page + 1} of {self.pages}&nbsp;"
        self.prev_button.disabled = self.page == 0
        self.next_button.disabled = self.page >= self.pages - 1
        self._loading = True
        try:
            for i, cell in enumerate(self.cells):
                if i < len(files):
                    f = files[i]
                    cell.layout.display = ""
                    self.names[i].value = f'<span style="font-size:11px" title="{esc(f)}">{esc(self.ds.rel(f))}</span>'
                    self.texts[i].value = self.ds.captions.get(f) or ""
                    self.checks[i].value = f in self.selected
                else:
                    cell.layout.display = "none"
                    self.texts[i].value = ""
                    self.checks[i].value = False
                self.images[i].value = b""
        finally:
            self._loading = False
        self._selection_changed()
        if files:
            ds = self.ds
            self.runner.latest("thumbs", ds.thumbnails, [Path(f) for f in files], self.thumb_size,
                               on_done=lambda thumbs: self._set_thumbs(gen, thumbs))

    def _set_thumbs(self, gen: int, thumbs: list[Path | None]) -> None:
        if gen == self._generation:
            for img, t in zip(self.images, thumbs):
                img.value = image_bytes(t)

    # -- editing -------------------------------------------------------------------------
    def _edited(self, i: int, text: str) -> None:
        if self._loading:
            return
        files = self._visible()
        if i >= len(files):
            return
        self.ds.captions.set(files[i], text)
        self._refresh_chips()
        self.banner.info(f"Saved the caption of {Path(files[i]).name}.")

    def _checked(self, i: int, on: bool) -> None:
        if self._loading:
            return
        files = self._visible()
        if i < len(files):
            (self.selected.add if on else self.selected.discard)(files[i])
            self._selection_changed()

    def _select_files(self, files: list[str], on: bool) -> None:
        if on:
            self.selected.update(files)
        else:
            self.selected.difference_update(files)
        self._loading = True
        for i, f in enumerate(self._visible()):
            self.checks[i].value = f in self.selected
        self._loading = False
        self._selection_changed()

    def _selection_changed(self) -> None:
        n = len(self.selected)
        self.selection_label.value = f"&nbsp;{n:,} selected" if n else ""
        self._op_changed()

    # -- bulk operations -----------------------------------------------------------------
    def scope(self) -> list[str] | None:
        """What a bulk operation applies to: the selection, else the filtered images, else everything (None)."""
        if self.selected:
            return sorted(self.selected)
        if self.filter_tags:
            return list(self.files)
        return None

    def _run_op(self, preview: bool) -> Any:
        if self.ds is None:
            raise InvalidInput('No dataset is selected.', fix='Choose a dataset first.')
        c, op, a1, a2, sel = self.ds.captions, self.op.value, self.arg1.value.strip(), self.arg2.value, self.scope()
        if sel == []:
            raise InvalidInput('No image matches the filter.', fix='Clear or change the filter.')
        if op == "add_trigger":
            return c.add_trigger([w.strip() for w in a1.split(",") if w.strip()], where=self.where.value, selection=sel, preview=preview)
        if op == "replace":
            return c.replace(a1, a2.strip(), regex=self.regex.value, whole_tag=True, selection=sel, preview=preview)
        if op == "replace_text":
            return c.replace(self.arg1.value, a2, regex=self.regex.value, whole_tag=False, selection=sel, preview=preview)
        if op in ("remove", "keep_only"):
            tags = [t.strip() for t in a1.split(",") if t.strip()]
            if not tags:
                raise InvalidInput('No tags were given.', fix='Type the tags, comma separated.')
            return getattr(c, op)(tags, regex=self.regex.value, selection=sel, preview=preview)
        if op in ("sort", "sort_frequency"):
            try:
                keep = int(a1 or 0)
            except ValueError:
                raise InvalidInput("'Keep first N tags' is not a whole number.", fix='Type a whole number such as 1.') from None
            return c.sort(key="alpha" if op == "sort" else "frequency", keep=keep, selection=sel, preview=preview)
        return getattr(c, op)(selection=sel, preview=preview)

    def _op_changed(self) -> None:
        _, hint1, hint2 = OPS[self.op.value]
        self.arg1.placeholder, self.arg2.placeholder = hint1, hint2
        self.arg1.layout.display = "" if hint1 else "none"
        self.arg2.layout.display = "" if hint2 else "none"
        self.where.layout.display = "" if self.op.value == "add_trigger" else "none"
        self.regex.layout.display = "" if self.op.value in ("replace", "replace_text", "remove", "keep_only") else "none"
        if self.ds is not None and not self._loading:
            self.runner.latest("preview", self.preview_now)

    def preview_now(self) -> None:
        """Compute how many captions the toolbar's operation would change (shown next to Apply)."""
        _, hint1, _ = OPS[self.op.value]
        if hint1 and not hint1.startswith("keep first") and not self.arg1.value.strip():
            self.preview_count = None
            self.preview_label.value = f'<span style="color:#777">type the {esc(hint1.split(",")[0])} to see how many captions change</span>'
            return
        try:
            r = self._run_op(preview=True)
        except Exception as e:
            from .common import one_sentence

            self.preview_label.value = f'<span style="color:#777">{esc(one_sentence(e))}</span>'
            self.preview_count = None
            return
        self.preview_count = r.changed
        self.preview_label.value = f"would change {r.changed:,} of {r.total:,} captions"

    def _apply(self, _: Any = None) -> None:
        r = self._run_op(preview=False)
        self.banner.info(f"{OPS[self.op.value][0]}: changed {r.changed:,} of {r.total:,} captions (Undo puts them back).")
        self.go(self.page)
        self._refresh_chips()
        self._undo_state()

    def _undo(self, _: Any = None) -> None:
        r = self.ds.captions.undo() if self.ds is not None else None
        if r is None:
            raise InvalidInput('No dataset is selected.', fix='Choose a dataset first.')
        self.banner.info(f"Undid {r.op.removeprefix('undo ')}: restored {r.changed:,} captions.")
        self.reload()
