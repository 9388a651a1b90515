"""``selected_tags.csv`` of a WD14 tagger: the label of every output, by category.

Header ``tag_id,name,category,count``; category 9 = rating, 0 = general, 4 = character. As in
kohya's script, the model's outputs are the ratings, then the general tags, then the character
tags, each group in CSV order.

>>> import io
>>> labels = read_labels(io.StringIO("tag_id,name,category,count\\n1,general,9,1\\n2,sensitive,9,1\\n"
...                                   "3,questionable,9,1\\n4,explicit,9,1\\n5,1girl,0,9\\n6,hatsune_miku,4,3\\n"))
>>> labels.general, labels.character, len(labels)
(['1girl'], ['hatsune_miku'], 6)
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from ..errors import TaggerError

__all__ = ["Labels", "read_labels"]


@dataclass(frozen=True)
class Labels:
    rating: list[str]
    general: list[str]
    character: list[str]

    def __len__(self) -> int:
        return len(self.rating) + len(self.general) + len(self.character)


def read_labels(source: str | Path | IO[str]) -> Labels:
    """Parse a ``selected_tags.csv`` (a path or an open text file); a clear error when it is not one."""
    try:
        text = source.read() if hasattr(source, "read") else Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise TaggerError(f"selected_tags.csv could not be read ({e}).", fix="Download the tagger again.") from None
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or [c.strip() for c in rows[0][:3]] != ["tag_id", "name", "category"]:
        raise TaggerError("selected_tags.csv does not start with the header tag_id,name,category,count.",
                          fix="Use the selected_tags.csv that comes with the WD14 model.")
    groups: dict[str, list[str]] = {"9": [], "0": [], "4": []}
    for n, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) < 3 or not row[1]:
            raise TaggerError(f"Line {n} of selected_tags.csv is not 'tag_id,name,category,count'.", fix="Download the tagger again.")
        if row[2].strip() in groups:
            groups[row[2].strip()].append(row[1])
    if len(groups["9"]) != 4:
        raise TaggerError(f"selected_tags.csv lists {len(groups['9'])} rating tags; WD14 taggers have 4.",
                          fix="Use a SmilingWolf WD14 tagger's selected_tags.csv.")
    return Labels(groups["9"], groups["0"], groups["4"])
