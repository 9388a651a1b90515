"""The dataset doctor: the report's findings that block a launch, and the one-click fixes.

:func:`findings` runs the report (:mod:`lora_nb.datasets.report`; decoded images are cached, so a
second check is fast) and keeps the errors, limited to the folders a run uses. ``ws.jobs.submit_training``
refuses a config while any exist (:class:`lora_nb.errors.DatasetBlocked`). Where a safe fix exists,
:func:`fix_label` names it and :func:`apply_fix` (``ds.fix(problem)``) applies it; nothing is deleted:

- ``corrupt`` (images that do not decode), ``exact_duplicates``: the images move into the dataset's
  ``.lora-nb/excluded`` quarantine (``ds.restore_excluded()`` puts them back);
- ``caption_encoding`` (not UTF-8), ``caption_bom``: the captions are rewritten as UTF-8 (read as
  Windows-1252 where they are not UTF-8) as one caption operation, so ``ds.captions.undo()`` restores the bytes;
- ``caption_lines``: the lines are joined (``normalize_whitespace`` on those captions, undoable);
- ``trigger_missing``: the trigger word is added to those captions (undoable).

>>> import lora_nb, tempfile, io
>>> from PIL import Image
>>> ws = lora_nb.Workspace(tempfile.mkdtemp())
>>> ds = ws.datasets.create("demo")
>>> buf = io.BytesIO(); Image.new("RGB", (64, 64)).save(buf, "PNG")
>>> _ = ds.add_images([("a.png", buf.getvalue())])
>>> _ = (ds.path / "a.txt").write_bytes(b"caf\\xe9, smile")      # written on Windows: cp1252
>>> [(f.code, f.fix) for f in ds.doctor()]
[('caption_encoding', 'Re-encode 1 caption as UTF-8')]
>>> ds.fix(ds.doctor()[0]).message
'Re-encoded 1 caption as UTF-8 (ds.captions.undo() restores the old bytes).'
>>> ds.doctor(), ds.captions.get("a.png")
([], 'café, smile')
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Union

from ..errors import InvalidInput
from .report import Problem

if TYPE_CHECKING:  # pragma: no cover
    from .dataset import Dataset

__all__ = ["Finding", "FixResult", "findings", "fix_label", "apply_fix", "FIXABLE"]

FIXABLE = frozenset({"corrupt", "exact_duplicates", "caption_encoding", "caption_bom", "caption_lines", "trigger_missing"})


@dataclass(frozen=True)
class Finding:
    """One blocking finding of one dataset: the report's :class:`Problem` and the fix, if there is one."""

    dataset: str
    problem: Problem
    fix: str | None = None          # the fix's button label, e.g. "Move 2 images to .lora-nb/excluded"

    @property
    def code(self) -> str:
        return self.problem.code

    @property
    def message(self) -> str:
        return self.problem.message

    def __str__(self) -> str:
        return f"Dataset '{self.dataset}': {self.problem.message}"


@dataclass
class FixResult:
    """What a fix did: ``message`` is one sentence that says how to undo it."""

    code: str
    changed: int
    message: str
    paths: list[Path] = field(default_factory=list)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def fix_label(problem: Problem) -> str | None:
    """The label of the one-click fix for ``problem``, or None when it has none."""
    n = len(problem.paths)
    if problem.code not in FIXABLE or not n:
        return None
    return {
        "corrupt": f"Move {_plural(n, 'image')} to .lora-nb/excluded",
        "exact_duplicates": f"Move {_plural(n, 'copy')} to .lora-nb/excluded".replace("copys", "copies"),
        "caption_encoding": f"Re-encode {_plural(n, 'caption')} as UTF-8",
        "caption_bom": f"Remove the byte-order mark from {_plural(n, 'caption')}",
        "caption_lines": f"Join the lines of {_plural(n, 'caption')}",
        "trigger_missing": f"Add '{problem.detail}' to {_plural(n, 'caption')}",
    }[problem.code]


def _in_folders(ds: "Dataset", p: Path, folders: set[str]) -> bool:
    try:
        folder = Path(ds.rel(p)).parent.as_posix()
    except ValueError:
        return False
    return ("" if folder == "." else folder) in folders


def findings(ds: "Dataset", folders: Iterable[str] | None = None, progress=None) -> list[Finding]:
    """The report's blocking findings (errors) for ``ds``; with ``folders`` (subset folders, "" for the top
    folder), only those about images in them (findings about the whole dataset always count)."""
    from .report import build_report

    rep = build_report(ds, duplicates=False, progress=progress)
    wanted = None if folders is None else set(folders)
    out = []
    for p in rep.issues:
        if p.severity != "error":
            continue
        if wanted is not None and p.paths:
            kept = tuple(x for x in p.paths if _in_folders(ds, x, wanted))
            if not kept:
                continue
            if len(kept) != len(p.paths):
                p = Problem(p.severity, p.code, p.message, kept, p.detail)
        out.append(Finding(ds.name, p, fix_label(p)))
    return out


FixTarget = Union[Finding, Problem]


def apply_fix(ds: "Dataset", target: FixTarget) -> FixResult:
    """Apply the one-click fix of a finding (or a report :class:`Problem`) to ``ds``; raises InvalidInput
    when the finding has no fix or belongs to another dataset."""
    problem = target.problem if isinstance(target, Finding) else target
    if isinstance(target, Finding) and target.dataset != ds.name:
        raise InvalidInput(f"That finding is about dataset '{target.dataset}', not '{ds.name}'.",
                           fix=f"Fix it with ws.datasets.get('{target.dataset}').fix(finding).")
    if fix_label(problem) is None:
        raise InvalidInput(f"The finding '{problem.code}' has no automatic fix: {problem.message}",
                           fix="Do what the sentence says, then check the dataset again.")
    paths = [p for p in problem.paths if p.exists()]
    code = problem.code
    if code in ("corrupt", "exact_duplicates"):
        moved = ds.exclude_images(paths)
        return FixResult(code, len(moved), f"Moved {_plural(len(moved), 'image')} (with captions) into {ds.name}/.lora-nb/excluded "
                         "(ds.restore_excluded() puts them back).", moved)
    images = paths          # the report names the images whose captions are at fault
    if code in ("caption_encoding", "caption_bom"):
        r = ds.captions.reencode_utf8(images)
        what = "Re-encoded" if code == "caption_encoding" else "Removed the byte-order mark from"
        msg = f"{what} {_plural(r.changed, 'caption')}{' as UTF-8' if code == 'caption_encoding' else ''} (ds.captions.undo() restores the old bytes)."
    elif code == "caption_lines":
        r = ds.captions.normalize_whitespace(images)
        msg = f"Joined the lines of {_plural(r.changed, 'caption')} (ds.captions.undo() restores them)."
    else:   # trigger_missing
        r = ds.captions.add_trigger(problem.detail, selection=images)
        msg = f"Added '{problem.detail}' to {_plural(r.changed, 'caption')} (ds.captions.undo() removes it)."
    return FixResult(code, r.changed, msg, [c.caption_path for c in r.changes])

