"""The WD14 tagger models we know, and where their files come from.

A model is a registry name (``wd-vit-tagger-v3``), a Hugging Face repo id (``SmilingWolf/wd-vit-tagger-v3``),
or a local folder with ``model.onnx`` and ``selected_tags.csv``. Downloads go through huggingface_hub,
so ``HF_HOME``, ``HF_HUB_OFFLINE`` and ``HF_ENDPOINT`` are honoured and files are cached once.

>>> MODELS["wd-vit-tagger-v3"].repo_id
'SmilingWolf/wd-vit-tagger-v3'
>>> resolve_name("wd-eva02-large-tagger-v3")
'SmilingWolf/wd-eva02-large-tagger-v3'
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import TaggerError

__all__ = ["TaggerModel", "MODELS", "resolve_name", "model_files", "FILES"]

FILES = ("model.onnx", "selected_tags.csv")


@dataclass(frozen=True)
class TaggerModel:
    name: str
    repo_id: str
    generation: str        # "v3" (2024) or "v2" (wd-v1-4, 2023)
    size: str              # rough download size of model.onnx
    note: str = ""


MODELS = {m.name: m for m in [
    TaggerModel("wd-eva02-large-tagger-v3", "SmilingWolf/wd-eva02-large-tagger-v3", "v3", "1.2 GB", "most accurate; slowest"),
    TaggerModel("wd-vit-large-tagger-v3", "SmilingWolf/wd-vit-large-tagger-v3", "v3", "1.2 GB"),
    TaggerModel("wd-vit-tagger-v3", "SmilingWolf/wd-vit-tagger-v3", "v3", "380 MB", "good default"),
    TaggerModel("wd-swinv2-tagger-v3", "SmilingWolf/wd-swinv2-tagger-v3", "v3", "390 MB"),
    TaggerModel("wd-convnext-tagger-v3", "SmilingWolf/wd-convnext-tagger-v3", "v3", "390 MB"),
    TaggerModel("wd-v1-4-moat-tagger-v2", "SmilingWolf/wd-v1-4-moat-tagger-v2", "v2", "330 MB"),
    TaggerModel("wd-v1-4-swinv2-tagger-v2", "SmilingWolf/wd-v1-4-swinv2-tagger-v2", "v2", "390 MB"),
    TaggerModel("wd-v1-4-convnext-tagger-v2", "SmilingWolf/wd-v1-4-convnext-tagger-v2", "v2", "390 MB", "sd-scripts' default"),
    TaggerModel("wd-v1-4-convnextv2-tagger-v2", "SmilingWolf/wd-v1-4-convnextv2-tagger-v2", "v2", "390 MB"),
    TaggerModel("wd-v1-4-vit-tagger-v2", "SmilingWolf/wd-v1-4-vit-tagger-v2", "v2", "380 MB"),
]}


def resolve_name(model: str) -> str:
    """The Hub repo id for a registry name or an ``owner/repo`` id."""
    if model in MODELS:
        return MODELS[model].repo_id
    if model.count("/") == 1 and not model.startswith((".", "/", "~")):
        return model
    raise TaggerError(f"'{model}' is neither a known tagger nor a folder with model.onnx and selected_tags.csv.",
                      fix=f"Use one of: {', '.join(MODELS)}; a Hub id like SmilingWolf/wd-vit-tagger-v3; or a local folder.")


def model_files(model: str | os.PathLike[str], cache_dir: str | Path | None = None) -> tuple[Path, Path]:
    """(model.onnx, selected_tags.csv) for ``model``, downloading them into the HF cache when needed.

    Raises :class:`TaggerError` with the fix when a folder lacks a file, or when the model is not
    cached and the Hub cannot be reached (offline mode, no network).
    """
    path = Path(model).expanduser()
    if path.is_dir() or str(model).startswith((".", "/", "~")):
        missing = [f for f in FILES if not (path / f).is_file()]
        if missing:
            raise TaggerError(f"The tagger folder {path} has no {' or '.join(missing)}.",
                              fix="A WD14 tagger folder needs model.onnx and selected_tags.csv (from a SmilingWolf repository).")
        return path / FILES[0], path / FILES[1]
    repo_id = resolve_name(str(model))
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError, RepositoryNotFoundError

    out = []
    for filename in FILES:
        try:
            out.append(Path(hf_hub_download(repo_id, filename, cache_dir=cache_dir)))
        except LocalEntryNotFoundError:
            raise TaggerError(f"The tagger {repo_id} is not in the local cache and the Hugging Face Hub cannot be reached.",
                              fix="Connect to the internet (or unset HF_HUB_OFFLINE) once to download it, "
                                  "or point model= at a folder with model.onnx and selected_tags.csv.") from None
        except (RepositoryNotFoundError, EntryNotFoundError):
            raise TaggerError(f"{repo_id} has no {filename} on the Hugging Face Hub.",
                              fix="Check the repository name; WD14 taggers are SmilingWolf/wd-*-tagger-v2/v3.") from None
        except OSError as e:  # network errors, a full disk
            raise TaggerError(f"Downloading {filename} of {repo_id} failed ({e}).", fix="Check the network and free disk space, then try again.") from None
    return out[0], out[1]
