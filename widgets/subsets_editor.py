"""SubsetsEditor: train on a list of subsets instead of one whole dataset (``TrainingConfig.dataset`` as a list).

One row per subset: dataset, folder inside it, repeats, caption extension, keep tokens, flip, random crop and the
regularisation flag; a row's invalid value shows one sentence beside the row. ``data()`` is what the training form
puts in its config; ``on_change`` is called on every edit (the form recounts the steps off the kernel thread).
Folder lists are read in the background (``ds.subsets()`` walks the images).

>>> import lora_nb, tempfile
>>> ws = lora_nb.Workspace(tempfile.mkdtemp()); _ = ws.datasets.create("alice")
>>> ed = SubsetsEditor(ws)
>>> ed.data(), ed.problems()
({}, {})
>>> ed.use.value = True; ed.rows[0].repeats.value = 0
>>> ed.data()["dataset"][0]["num_repeats"], ed.problems()
(0, {'dataset': 'Subset 1, Repeats: Input should be greater than or equal to 1.'})
"""
from __future__ import annotations

from typing import Any, Callable

import ipywidgets as W

from .common import Runner, css, esc

__all__ = ["SubsetsEditor", "SubsetRow"]

_FLIP = [("as the form", None), ("flip", True), ("no flip", False)]
_LABELS = {"dataset": "Dataset", "folder": "Folder", "num_repeats": "Repeats", "caption_extension": "Caption extension",
           "keep_tokens": "Keep tags", "flip_aug": "Flip", "random_crop": "Random crop", "is_reg": "Regularisation"}


class SubsetRow(W.VBox):
    """One subset: its inputs in a line, its message under them."""

    def __init__(self, names: list[str], on_change: Callable[[], None], on_remove: Callable[["SubsetRow"], None]) -> None:
        small = W.Layout(width="90px")
        self.dataset = W.Dropdown(options=names, value=names[0] if names else None, layout=W.Layout(width="150px"),
                                  tooltip="Workspace dataset")
        self.folder = W.Dropdown(options=[("(whole dataset)", "")], value="", layout=W.Layout(width="170px"),
                                 tooltip="Sub-folder inside the dataset ('whole dataset': its top folder)")
        self.repeats = W.IntText(value=1, layout=W.Layout(width="70px"), tooltip="How many times each image is seen per epoch")
        self.caption_extension = W.Text(value="", placeholder=".txt", layout=small, continuous_update=True,
                                        tooltip="Caption files of this subset (empty: the form's caption extension)")
        self.keep_tokens = W.Text(value="", placeholder="form", layout=W.Layout(width="60px"), continuous_update=True,
                                  tooltip="Tags kept first when shuffling (empty: the form's Keep first tags)")
        self.flip = W.Dropdown(options=_FLIP, value=None, layout=W.Layout(width="110px"),
                               tooltip="Random horizontal flips for this subset")
        self.random_crop = W.Checkbox(value=False, description="crop", indent=False, layout=W.Layout(width="60px"),
                                      tooltip="Random crops instead of centre crops (needs Cache latents off)")
        self.is_reg = W.Checkbox(value=False, description="reg", indent=False, layout=W.Layout(width="55px"),
                                 tooltip="Regularisation images")
        self.remove = css(W.Button(icon="trash", tooltip="remove this subset", layout=W.Layout(width="36px")), "lnb-subset-remove")
        self.message = css(W.HTML(""), "lnb-subset-message")
        self.fresh = False                 # True: the folder list, once read, picks the first folder and its repeats
        self.applying = False
        for w in (self.folder, self.repeats):   # the user's own choice wins over a folder list read later
            w.observe(lambda _: setattr(self, "fresh", self.fresh and self.applying), names="value")
        self.inputs = [self.dataset, self.folder, self.repeats, self.caption_extension, self.keep_tokens, self.flip,
                       self.random_crop, self.is_reg]
        for w in self.inputs:
            w.observe(lambda _: on_change(), names="value")
        self.remove.on_click(lambda _: on_remove(self))
        super().__init__([W.HBox(self.inputs + [self.remove]), self.message])
        self.add_class("lnb-subset-row")

    def data(self) -> dict[str, Any]:
        """This row as a Subset's fields (empty texts: the form's value)."""
        keep = self.keep_tokens.value.strip()
        out: dict[str, Any] = {"dataset": self.dataset.value or "", "folder": self.folder.value or "",
                               "num_repeats": self.repeats.value, "is_reg": self.is_reg.value,
                               "caption_extension": self.caption_extension.value.strip() or None,
                               "keep_tokens": int(keep) if keep.lstrip("-").isdigit() else (keep or None),
                               "flip_aug": self.flip.value, "random_crop": self.random_crop.value}
        return out

    def set(self, sub: dict[str, Any]) -> None:
        if sub.get("dataset") and sub["dataset"] not in self.dataset.options:
            self.dataset.options = list(self.dataset.options) + [sub["dataset"]]
        self.dataset.value = sub.get("dataset") or None
        folder = sub.get("folder") or ""
        if folder not in [v for _, v in self.folder.options]:
            self.folder.options = list(self.folder.options) + [(folder, folder)]
        self.folder.value = folder
        self.repeats.value = int(sub.get("num_repeats") or 1)
        self.caption_extension.value = sub.get("caption_extension") or ""
        self.keep_tokens.value = "" if sub.get("keep_tokens") is None else str(sub["keep_tokens"])
        self.flip.value = sub.get("flip_aug")
        self.random_crop.value = bool(sub.get("random_crop"))
        self.is_reg.value = bool(sub.get("is_reg"))

    def show(self, message: str) -> None:
        self.message.value = f'<span class="lnb-error-text" style="color:#b00020">{esc(message)}</span>' if message else ""


class SubsetsEditor(W.VBox):
    """Train on subsets: a switch, the rows, Add subset. Off, the form's Dataset field decides."""

    def __init__(self, ws: Any, on_change: Callable[[], None] | None = None, runner: Runner | None = None) -> None:
        self.ws = ws
        self.on_change = on_change
        self.runner = runner or Runner(None, "lnb-subsets")
        self.rows: list[SubsetRow] = []
        self.folders: dict[str, list[tuple[str, int]]] = {}   # dataset -> its sub-folders and repeats, read in the background
        self.use = css(W.Checkbox(value=False, description="Train on subsets (several folders or datasets, each with its own repeats)",
                                  indent=False, layout=W.Layout(width="auto")), "lnb-subsets-use")
        self.add = css(W.Button(description="Add subset", icon="plus"), "lnb-subsets-add")
        head = "".join(f'<span style="display:inline-block;width:{w}px;font-size:11px;color:#555">{t}</span>' for t, w in
                       [("dataset", 154), ("folder", 174), ("repeats", 74), ("caption ext.", 94), ("keep", 64), ("flip", 114),
                        ("", 60), ("", 55)])
        self.header = W.HTML(head)
        self.box = W.VBox([])
        self.body = W.VBox([self.header, self.box, self.add], layout=W.Layout(display="none"))
        self.use.observe(lambda _: self._toggled(), names="value")
        self.add.on_click(lambda _: self.add_row())
        super().__init__([self.use, self.body])
        self.add_class("lnb-subsets")

    # -- rows ------------------------------------------------------------------------------
    def _names(self) -> list[str]:
        try:
            return self.ws.datasets.names()
        except Exception:
            return []

    def add_row(self, sub: dict[str, Any] | None = None) -> SubsetRow:
        row = SubsetRow(self._names(), self._changed, self.remove_row)
        if sub:
            row.set(sub)
        row.fresh = not sub               # a new row takes the dataset's first folder and its N_ repeats

        def dataset_changed(_: Any) -> None:
            row.fresh = True              # another dataset: its own first folder
            self._load_folders(row)
        row.dataset.observe(dataset_changed, names="value")
        self.rows.append(row)
        self.box.children = tuple(self.rows)
        self._load_folders(row)
        self._changed()
        return row

    def remove_row(self, row: SubsetRow) -> None:
        self.rows = [r for r in self.rows if r is not row]
        self.box.children = tuple(self.rows)
        self._changed()

    def _load_folders(self, row: SubsetRow) -> None:
        name = row.dataset.value
        if not name:
            return

        def read() -> list[tuple[str, int]]:
            return [(s.name, s.repeats) for s in self.ws.datasets.get(name).subsets() if s.name]

        def show(folders: list[tuple[str, int]]) -> None:
            self.folders[name] = folders
            for r in self.rows:
                if r.dataset.value == name:
                    keep = r.folder.value
                    opts = [("(whole dataset)", "")] + [(f, f) for f, _ in folders]
                    if keep not in [v for _, v in opts]:
                        opts.append((keep, keep))
                    r.applying = True
                    try:
                        r.folder.options = opts
                        if r.fresh and folders:
                            r.folder.value, r.repeats.value = folders[0]
                            r.fresh = False
                        else:
                            r.folder.value = keep
                    finally:
                        r.applying = False
        if name in self.folders:
            show(self.folders[name])
        else:
            self.runner.submit(read, on_done=show)

    def _toggled(self) -> None:
        self.body.layout.display = "" if self.use.value else "none"
        if self.use.value and not self.rows:
            self.add_row()
        else:
            self._changed()

    def _changed(self) -> None:
        self.problems()
        if self.on_change is not None:
            self.on_change()

    # -- what the form reads -----------------------------------------------------------------
    def data(self) -> dict[str, Any]:
        """``{"dataset": [subset, ...]}`` while subsets are on, else {} (the form's Dataset field applies)."""
        return {"dataset": [r.data() for r in self.rows]} if self.use.value else {}

    def problems(self) -> dict[str, str]:
        """Check each row as a Subset; show its first problem beside it. ``{"dataset": first sentence}`` or {}."""
        from pydantic import ValidationError

        from lora_nb.config.model import Subset, field_messages

        first = ""
        for i, row in enumerate(self.rows if self.use.value else []):
            msg = ""
            try:
                Subset(**row.data())
            except ValidationError as e:
                field, text = next(iter(field_messages(e).items()))
                msg = f"{_LABELS.get(field, field)}: {text.rstrip('.')}."
            row.show(msg)
            first = first or (f"Subset {i + 1}, {msg}" if msg else "")
        if self.use.value and not self.rows:
            first = "Add at least one subset, or turn subsets off."
        return {"dataset": first} if first else {}

    def set(self, dataset: Any) -> None:
        """Show a config's dataset: a list turns subsets on with one row each; a name turns them off."""
        if isinstance(dataset, list):
            for r in list(self.rows):
                self.rows.remove(r)
            for sub in dataset:
                self.add_row(sub if isinstance(sub, dict) else sub.model_dump())
            self.use.value = True
        else:
            self.use.value = False
