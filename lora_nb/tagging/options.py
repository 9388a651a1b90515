"""Tagging options, validated once (pydantic): thresholds, what goes where in the caption, what to do
with existing captions.

Names follow kohya's tagging script where it has the option (``general_threshold``,
``character_threshold``, ``remove_underscore``, ``character_tags_first``, ``always_first_tags``,
``undesired_tags`` as ``blacklist``, ``caption_separator``); lora-nb adds ``trigger_words``
(inserted first, in order, even when the model did not predict them), MCut automatic thresholds,
and the policy for existing captions.

>>> TagOptions(general_threshold=0.3).general_threshold
0.3
>>> TagOptions(existing="keep").existing
Traceback (most recent call last):
...
lora_nb.errors.ConfigError: existing: Input should be 'overwrite', 'append' or 'skip'. Choose overwrite, append or skip.
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..errors import ConfigError

__all__ = ["TagOptions"]


class TagOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    general_threshold: float = Field(0.35, ge=0.0, le=1.01, description="Keep general tags scoring at least this (above 1: none).")
    character_threshold: float = Field(0.35, ge=0.0, le=1.01, description="Keep character tags scoring at least this (above 1: none).")
    general_mcut: bool = Field(False, description="Pick the general threshold per image with MCut (largest gap between sorted scores).")
    character_mcut: bool = Field(False, description="MCut for character tags (never below 0.15).")
    blacklist: list[str] = Field(default_factory=list, description="Tags never written (compared after underscores are replaced).")
    always_first_tags: list[str] = Field(default_factory=list, description="Moved to the front when predicted (kohya: the last listed ends first).")
    trigger_words: list[str] = Field(default_factory=list, description="Written first in every caption, in this order.")
    remove_underscore: bool = Field(True, description="'long_hair' -> 'long hair' (tags of 3 characters or less, like ^_^, are kept).")
    caption_separator: str = Field(", ", min_length=1, max_length=8)
    rating: Literal["off", "first", "last"] = Field("off", description="Add the most likely rating tag (general/sensitive/...).")
    character_tags_first: bool = False
    character_tag_expand: bool = Field(False, description="'name_(series)' -> 'name, series'.")
    existing: Literal["overwrite", "append", "skip"] = Field("overwrite", description="Captions already there: replace, add new tags, or leave the image alone.")
    recursive: bool = Field(True, description="Include images in sub-folders (kohya N_name folders).")
    batch_size: int = Field(8, ge=1, le=512)
    workers: int = Field(4, ge=1, le=64, description="Threads that decode and resize images while the model runs.")

    @field_validator("blacklist", "always_first_tags", "trigger_words", mode="before")
    @classmethod
    def _split(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = v.split(",")
        return [t.strip() for t in v if str(t).strip()] if isinstance(v, (list, tuple)) else v

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "options"
            fix = "Choose overwrite, append or skip." if where == "existing" else (
                f"Known options: {', '.join(type(self).model_fields)}." if first["type"] == "extra_forbidden" else "Check the value.")
            raise ConfigError(f"{where}: {first['msg']}.", fix=fix) from None
