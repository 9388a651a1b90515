"""Captioning options, validated once (pydantic), and prompt presets saved in the workspace.

The caption policy fields are the tagger's (``existing``, ``trigger_words``, ``recursive``, ``batch_size``,
``workers``); the captioner adds the mode (a Florence-2 task or a JoyCaption prompt mode), the length, a
custom prompt template, a ``max_length`` cap in characters, and ``with_tags``: a WD14 tagger whose tags are
written with the sentence in one caption.

>>> CaptionOptions(mode="booru_list", length="short").length
'short'
>>> CaptionOptions(existing="keep")
Traceback (most recent call last):
...
lora_nb.errors.ConfigError: existing: Input should be 'overwrite', 'append' or 'skip'. Choose overwrite, append or skip.
>>> finish_caption("A red circle on white. It is round.", ["ohwx"], max_length=30)
'ohwx, A red circle on white.'
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..errors import ConfigError, NotFound

__all__ = ["CaptionOptions", "finish_caption", "combine", "PromptPresets"]

_MODES = ("detailed", "more_detailed", "caption", "descriptive", "descriptive_casual", "straightforward", "training_prompt",
          "booru_list")


class CaptionOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: str = Field("", description="Florence-2: detailed | more_detailed | caption; JoyCaption: descriptive | "
                                      "descriptive_casual | straightforward | training_prompt | booru_list. Empty: the model's default.")
    length: Literal["any", "very short", "short", "medium-length", "long", "very long"] | int = Field(
        "long", description="JoyCaption's caption length (a word, or a number of words); also bounds the tokens generated.")
    prompt: str = Field("", max_length=2000, description="JoyCaption: a custom prompt ({length} is replaced); overrides mode.")
    max_new_tokens: int | None = Field(None, ge=1, le=2048, description="Tokens generated at most (default from length / task).")
    num_beams: int = Field(1, ge=1, le=8)
    max_length: int | None = Field(None, ge=10, le=20000, description="Cap in characters: cut at the last sentence (else word) end.")
    trigger_words: list[str] = Field(default_factory=list, description="Written first in every caption, in this order.")
    existing: Literal["overwrite", "append", "skip"] = Field("overwrite", description="Captions already there: replace, add "
                                                                                       "the sentence after them, or leave the image alone.")
    with_tags: str = Field("", description="A WD14 tagger (name, repo id or folder): its tags and the sentence in one caption.")
    tags_position: Literal["before", "after"] = "before"
    tags_threshold: float = Field(0.35, ge=0.0, le=1.01)
    recursive: bool = True
    batch_size: int = Field(4, ge=1, le=256)
    workers: int = Field(2, ge=1, le=64, description="Threads that decode and preprocess images while the model generates.")

    @field_validator("trigger_words", mode="before")
    @classmethod
    def _split(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = v.split(",")
        return [t.strip() for t in v if str(t).strip()] if isinstance(v, (list, tuple)) else v

    @field_validator("mode")
    @classmethod
    def _mode(cls, v: str) -> str:
        if v and v not in _MODES:
            raise ValueError(f"'{v}' is not a caption mode (one of {', '.join(_MODES)})")
        return v

    @field_validator("length", mode="before")
    @classmethod
    def _length(cls, v: Any) -> Any:
        if isinstance(v, str) and v.strip().isdigit():
            v = int(v)
        if isinstance(v, int) and not 1 <= v <= 1000:
            raise ValueError("a word count must be between 1 and 1000")
        return v

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(p) for p in first["loc"][:1]) or "options"
            fix = {"existing": "Choose overwrite, append or skip.", "mode": "Pick a mode from the list.",
                   "length": "Use any, very short, short, medium-length, long, very long, or a number of words."}.get(where) or (
                f"Known options: {', '.join(type(self).model_fields)}." if first["type"] == "extra_forbidden" else "Check the value.")
            raise ConfigError(f"{where}: {first['msg']}.", fix=fix) from None


_WS = re.compile(r"\s+")


def clean_sentence(text: str) -> str:
    """One line, single spaces, no undecodable bytes (kohya reads the first line only)."""
    text = "".join(" " if c == "\ufffd" or (ord(c) < 32 or 127 <= ord(c) < 160) else c for c in text)
    return _WS.sub(" ", text).strip()


def cap(text: str, max_length: int | None) -> str:
    """Cut to ``max_length`` characters at the last sentence end, else the last word boundary."""
    if max_length is None or len(text) <= max_length:
        return text
    head = text[:max_length]
    ends = [m.end() for m in re.finditer(r"[.!?](\s|$)", head)]
    if ends and ends[-1] > max_length // 3:
        return head[:ends[-1]].strip()
    cut = head.rsplit(" ", 1)[0] if " " in head else head
    return cut.rstrip(",;: ")


def combine(sentence: str, tags: list[str], position: str = "before") -> str:
    """WD14 tags and a sentence in one caption: ``"1girl, smile, A girl smiling."`` (or the sentence first)."""
    if not tags:
        return sentence
    if not sentence:
        return ", ".join(tags)
    return ", ".join(tags) + ", " + sentence if position == "before" else sentence.rstrip() + " " + ", ".join(tags)


def finish_caption(sentence: str, trigger_words: list[str], max_length: int | None = None, old: str | None = None,
                   existing: str = "overwrite") -> str:
    """The text written: the trigger words first, the (capped) caption, after the old one with ``existing="append"``."""
    body = cap(sentence, None if max_length is None else max(1, max_length - sum(len(t) + 2 for t in trigger_words)))
    if existing == "append" and old and old.strip():
        old = old.strip()
        if body and body not in old:
            old = old + (" " if old[-1] in ".!?" else ", ") + body
        missing = [t for t in trigger_words if t not in old]
        return ", ".join(missing + [old]) if missing else old
    return ", ".join([*trigger_words, body]) if body else ", ".join(trigger_words)


class PromptPresets:
    """Prompt templates with their options, saved as JSON files in a folder (the workspace's
    ``presets/captions/``).

    >>> import tempfile
    >>> p = PromptPresets(tempfile.mkdtemp())
    >>> p.save("flux-long", {"mode": "descriptive", "length": "long", "prompt": "Write a {length} caption."})
    >>> p.names(), p.load("flux-long")["length"]
    (['flux-long'], 'long')
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def names(self) -> list[str]:
        try:
            return sorted(p.stem for p in self.folder.glob("*.json"))
        except OSError:
            return []

    def save(self, name: str, options: dict[str, Any]) -> None:
        from ..files import atomic_write
        from ..paths import safe_name

        safe_name(name, "preset name")
        keep = {k: v for k, v in options.items() if k in CaptionOptions.model_fields and k not in ("recursive", "workers")}
        checked = CaptionOptions(**keep).model_dump()   # refuse to save options that would not run; save them parsed
        keep = {k: checked[k] for k in keep}
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write(self.folder / f"{name}.json", (json.dumps(keep, indent=1) + "\n").encode("utf-8"))

    def load(self, name: str) -> dict[str, Any]:
        path = self.folder / f"{name}.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise NotFound(f"There is no caption preset called '{name}'.",
                           fix=f"Saved presets: {', '.join(self.names()) or 'none'}.") from None
        except (OSError, ValueError) as e:
            raise ConfigError(f"The caption preset {path} is unreadable ({e}).", fix="Save it again.") from None
        return dict(data)

    def delete(self, name: str) -> None:
        (self.folder / f"{name}.json").unlink(missing_ok=True)
