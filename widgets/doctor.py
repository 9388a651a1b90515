"""DoctorBox: the dataset doctor's blocking findings beside Start, each with a button for its one-click fix.

``watch(dataset)`` (a dataset name, or a list of subsets) checks the dataset off the kernel thread whenever
what the form trains on changes; while findings exist ``blocked`` is True and ``on_change(True)`` lets the
Training panel disable Start. A fix button calls ``ds.fix(finding)`` (in the background too) and checks again.

>>> import lora_nb, tempfile
>>> box = DoctorBox(lora_nb.Workspace(tempfile.mkdtemp()))
>>> box.blocked, box.rows.children
(False, ())
"""
from __future__ import annotations

from typing import Any, Callable

import ipywidgets as W

from lora_nb import Workspace

from .common import ErrorBanner, Runner, css, esc, one_sentence

__all__ = ["DoctorBox", "dataset_folders"]


def _field(item: Any, name: str, default: Any = None) -> Any:
    return item.get(name, default) if isinstance(item, dict) else getattr(item, name, default)


def dataset_folders(dataset: Any) -> dict[str, set[str] | None]:
    """``{dataset name: subset folders, or None for the whole dataset}`` from a form's ``dataset`` value
    (a name, or a list of subsets as ``Subset`` objects or dicts)."""
    if isinstance(dataset, str):
        return {dataset: None} if dataset else {}
    out: dict[str, set[str] | None] = {}
    for sub in dataset or []:
        name = _field(sub, "dataset")
        if name:
            folders = out.setdefault(name, set())
            assert folders is not None
            folders.add(_field(sub, "folder", "") or "")
    return out


class DoctorBox(W.VBox):
    """Blocking findings of the dataset(s) a run would use, with fix buttons. ``findings`` holds the last check."""

    def __init__(self, ws: Workspace, on_change: Callable[[bool], None] | None = None, banner: ErrorBanner | None = None) -> None:
        self.ws = ws
        self.on_change = on_change
        self.banner = banner if banner is not None else ErrorBanner()
        self.runner = Runner(self.banner, "lnb-doctor")
        self.findings: list[Any] = []
        self.key: Any = None
        self.wanted: dict[str, set[str] | None] = {}
        self.status = css(W.HTML(""), "lnb-doctor-status")
        self.message = css(W.HTML(""), "lnb-doctor-message")
        self.rows = css(W.VBox([]), "lnb-doctor-findings")
        super().__init__([self.status, self.rows, self.message])
        self.add_class("lnb-doctor")

    @property
    def blocked(self) -> bool:
        """True while the last check found something that stops a launch."""
        return bool(self.findings)

    # -- checking ----------------------------------------------------------------------------
    def watch(self, dataset: Any, force: bool = False) -> None:
        """Check ``dataset`` (the form's value) in the background, unless it is what was checked last."""
        wanted = dataset_folders(dataset)
        if self._key(wanted) == self.key and not force:
            return
        self._start(wanted)

    def recheck(self) -> None:
        """Check the same datasets again (after files changed)."""
        self._start(self.wanted)

    @staticmethod
    def _key(wanted: dict[str, set[str] | None]) -> Any:
        return sorted((k, sorted(v) if v is not None else None) for k, v in wanted.items())

    def _start(self, wanted: dict[str, set[str] | None]) -> None:
        self.key, self.wanted = self._key(wanted), wanted
        if not wanted:
            self.show([])
            return
        self.status.value = '<span style="color:#777">checking the dataset…</span>'
        self.runner.latest("doctor", self._check, self.key, wanted, on_done=self._checked)

    def _check(self, key: Any, wanted: dict[str, set[str] | None]) -> tuple[Any, list[Any]]:
        from lora_nb.errors import NotFound

        found: list[Any] = []
        for name, folders in sorted(wanted.items()):
            try:
                ds = self.ws.datasets.get(name)
            except NotFound:
                continue              # the form says so beside the dataset field
            found += ds.doctor(folders)
        return key, found

    def _checked(self, result: tuple[Any, list[Any]]) -> None:
        key, found = result
        if key == self.key:           # a check of a dataset the form no longer names is dropped
            self.show(found)

    # -- showing -----------------------------------------------------------------------------
    def show(self, findings: list[Any]) -> None:
        """Show ``findings`` (from a check, or from a refused launch's ``DatasetBlocked.findings``)."""
        self.findings = list(findings)
        if not self.findings:
            self.status.value = ""
            self.rows.children = ()
        else:
            n = len(self.findings)
            self.status.value = (f'<b style="color:#b00020">Start is disabled: the dataset has {n} problem{"s" * (n != 1)} '
                                 "that would stop training.</b>")
            self.rows.children = tuple(self._row(f) for f in self.findings)
        if self.on_change is not None:
            self.on_change(self.blocked)

    def _row(self, finding: Any) -> W.Widget:
        text = css(W.HTML(f'<span style="color:#b00020">✖</span> {esc(str(finding))}',
                          layout=W.Layout(flex="1 1 auto")), "lnb-doctor-reason")
        if not finding.fix:
            return css(W.HBox([text]), "lnb-doctor-row")
        button = css(W.Button(description=finding.fix, icon="wrench", button_style="warning",
                              tooltip="applies the fix, then checks the dataset again",
                              layout=W.Layout(width="auto", min_width="220px")), "lnb-doctor-fix")
        button.on_click(lambda _: self.fix(finding))
        return css(W.HBox([text, button]), "lnb-doctor-row")

    # -- fixing ------------------------------------------------------------------------------
    def fix(self, finding: Any) -> None:
        """Apply ``finding``'s fix in the background, say what it did, then check again."""
        for row in self.rows.children:
            for child in row.children:
                if isinstance(child, W.Button):
                    child.disabled = True
        self.message.value = '<span style="color:#777">fixing…</span>'

        def work() -> None:
            try:
                result = self.ws.datasets.get(finding.dataset).fix(finding)
            except Exception as e:          # shown where the user clicked; the check shows what is left
                self.message.value = f'<span class="lnb-error" style="color:#b00020">{esc(one_sentence(e))}</span>'
            else:
                self.message.value = f'<span class="lnb-doctor-done" style="color:#1b5e20">{esc(result.message)}</span>'
            self.recheck()

        self.runner.submit(work)

    def idle(self, timeout: float = 60.0) -> None:
        """Wait until checks and fixes are done (tests)."""
        self.runner.idle(timeout)
