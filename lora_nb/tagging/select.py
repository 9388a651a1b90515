"""From one image's model scores to its caption, with kohya's ordering rules.

>>> from lora_nb.tagging.labels import Labels
>>> from lora_nb.tagging.options import TagOptions
>>> labels = Labels(["general", "sensitive", "questionable", "explicit"], ["1girl", "long_hair", "^_^"], ["hatsune_miku"])
>>> r = select_tags([0.9, 0.1, 0.0, 0.0, 0.8, 0.6, 0.7, 0.9], labels, TagOptions(trigger_words=["mylora"]))
>>> r.tags
['mylora', '1girl', 'long hair', '^_^', 'hatsune miku']
>>> r.rating, round(r.scores["long hair"], 2)
('general', 0.6)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from .labels import Labels
from .options import TagOptions

__all__ = ["TagResult", "select_tags", "mcut_threshold", "display_names"]


@dataclass
class TagResult:
    """Tags of one image in caption order, with the score of every kept tag and the top rating."""

    tags: list[str]
    scores: dict[str, float] = field(default_factory=dict)
    rating: str | None = None
    path: str | None = None
    error: str | None = None          # the image could not be read

    def caption(self, separator: str = ", ") -> str:
        return separator.join(self.tags)


def mcut_threshold(scores: Sequence[float]) -> float:
    """MCut: the midpoint of the largest gap between consecutive sorted scores (Largeron et al.)."""
    s = sorted(scores, reverse=True)
    if len(s) < 2:
        return 0.0
    gaps = [s[i] - s[i + 1] for i in range(len(s) - 1)]
    t = max(range(len(gaps)), key=gaps.__getitem__)
    return (s[t] + s[t + 1]) / 2


def display_names(names: Sequence[str], opts: TagOptions, character: bool = False) -> list[str]:
    """Tag names as they will be written (character expansion, then underscores), as kohya prepares them."""
    out = list(names)
    if character and opts.character_tag_expand:
        expanded = []
        for tag in out:
            if tag.endswith(")"):
                parts = tag.split("(")
                name = "(".join(parts[:-1])
                name = name[:-1] if name.endswith("_") else name
                tag = name + opts.caption_separator + parts[-1].replace(")", "")
            expanded.append(tag)
        out = expanded
    if opts.remove_underscore:
        out = [t.replace("_", " ") if len(t) > 3 else t for t in out]
    return out


def select_tags(scores: Sequence[float], labels: Labels, opts: TagOptions, names: tuple[list[str], list[str], list[str]] | None = None) -> TagResult:
    """Apply thresholds, blacklist and ordering to one image's scores (ratings, general, character)."""
    rating_names, general_names, character_names = names or (
        display_names(labels.rating, opts), display_names(labels.general, opts), display_names(labels.character, opts, True))
    n_r, n_g = len(labels.rating), len(labels.general)
    general_scores = [float(x) for x in scores[n_r:n_r + n_g]]
    character_scores = [float(x) for x in scores[n_r + n_g:n_r + n_g + len(labels.character)]]
    g_thr = mcut_threshold(general_scores) if opts.general_mcut else opts.general_threshold
    c_thr = max(0.15, mcut_threshold(character_scores)) if opts.character_mcut else opts.character_threshold
    blacklist = set(opts.blacklist)
    combined: list[str] = []
    kept: dict[str, float] = {}
    for i, p in enumerate(general_scores):
        if p >= g_thr and general_names[i] not in blacklist:
            combined.append(general_names[i])
            kept[general_names[i]] = p
    for i, p in enumerate(character_scores):
        if p >= c_thr and character_names[i] not in blacklist:
            name = character_names[i]
            kept[name] = p
            if opts.character_tags_first:
                combined.insert(0, name)
            else:
                combined.append(name)
    rating_scores = [float(x) for x in scores[:n_r]]
    rating = rating_names[max(range(n_r), key=rating_scores.__getitem__)] if n_r else None
    if rating is not None and opts.rating != "off" and rating not in blacklist:
        kept[rating] = rating_scores[rating_names.index(rating)]
        combined.insert(0, rating) if opts.rating == "first" else combined.append(rating)
    for tag in opts.always_first_tags:
        if tag in combined:
            combined.remove(tag)
            combined.insert(0, tag)
    triggers = [t for t in opts.trigger_words]
    combined = triggers + [t for t in combined if t not in triggers]
    return TagResult(combined, kept, rating)
