"""The natural-language captioners we know (Florence-2, JoyCaption), their prompts, and where their files come from.

A captioner is a registry name (``florence-2-large``), a Hugging Face repo id, or a local folder saved with
``save_pretrained`` (``config.json`` + weights + processor files). Downloads go through huggingface_hub
(``hf_hub_download`` of config.json, the weights and the processor files), so ``HF_HOME``, ``HF_HUB_OFFLINE``, ``HF_ENDPOINT`` and ``HF_TOKEN`` are honoured
and files are cached once. The family (``florence2`` or ``joycaption``) is read from ``config.json``.

Florence-2 runs with transformers' native ``Florence2ForConditionalGeneration``: its weights in that format are
the ``florence-community/Florence-2-*`` repositories (the same models as ``microsoft/Florence-2-*``, converted);
the original ``microsoft/`` repositories need ``trust_remote_code`` and are refused with that fix.

>>> CAPTIONERS["florence-2-large"].repo_id
'florence-community/Florence-2-large'
>>> joycaption_prompt("booru_list", "short")
'Write a short list of Booru-like tags for this image.'
>>> joycaption_prompt("descriptive", "any")
'Write a descriptive caption for this image in a formal tone.'
>>> joycaption_prompt("descriptive", 40)
'Write a descriptive caption for this image in a formal tone. Keep it within 40 words.'
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import TaggerError

__all__ = ["CaptionModel", "CAPTIONERS", "FLORENCE_TASKS", "JOY_MODES", "LENGTHS", "joycaption_prompt", "resolve_captioner",
           "captioner_folder", "model_family", "is_captioner_folder",
           "family_of"]


@dataclass(frozen=True)
class CaptionModel:
    name: str
    repo_id: str
    family: str            # "florence2" or "joycaption"
    params: str            # parameter count
    download: str          # rough download size
    vram_gb: float         # GPU memory for batch 1 in bf16, weights + activations (a batch of 8 adds ~10-20 %)
    note: str = ""

    @property
    def vram(self) -> str:
        return f"{self.vram_gb:g} GB VRAM (bf16)"


CAPTIONERS = {m.name: m for m in [
    CaptionModel("florence-2-base", "florence-community/Florence-2-base", "florence2", "0.23 B", "0.5 GB", 1.5,
                 "fast; short sentences"),
    CaptionModel("florence-2-large", "florence-community/Florence-2-large", "florence2", "0.77 B", "1.6 GB", 3.0,
                 "FluxGym's captioner; good default"),
    CaptionModel("joycaption-beta-one", "fancyfeast/llama-joycaption-beta-one-hf-llava", "joycaption", "8.5 B", "17 GB", 19.0,
                 "SigLIP + Llama 3.1 8B; best detail, needs a 24 GB GPU"),
]}

# Florence-2: the caption tasks (the processor turns the task token into its prompt)
FLORENCE_TASKS = {"caption": "<CAPTION>", "detailed": "<DETAILED_CAPTION>", "more_detailed": "<MORE_DETAILED_CAPTION>"}

# JoyCaption: prompt modes; {length} becomes the length word ("short", "long" ...) or vanishes for "any"
JOY_MODES = {
    "descriptive": "Write a {length} descriptive caption for this image in a formal tone.",
    "descriptive_casual": "Write a {length} descriptive caption for this image in a casual tone.",
    "straightforward": "Write a {length} straightforward caption for this image. Begin with the main subject and medium; "
                       "mention what matters and leave out speculation.",
    "training_prompt": "Write a {length} stable diffusion prompt for this image.",
    "booru_list": "Write a {length} list of Booru-like tags for this image.",
}
# length word -> new tokens allowed (generation stops earlier at the end of the caption)
LENGTHS = {"any": 300, "very short": 40, "short": 80, "medium-length": 160, "long": 260, "very long": 400}
SYSTEM_PROMPT = "You are a helpful image captioner."


def joycaption_prompt(mode: str, length: str | int = "any", template: str | None = None) -> str:
    """The user prompt for a JoyCaption mode (or a custom ``template`` with an optional ``{length}``)."""
    text = template if template else JOY_MODES[mode]
    word = "" if isinstance(length, int) or length == "any" else str(length)
    text = re.sub(r"\s+", " ", text.replace("{length}", word)).replace(" .", ".").strip()
    if isinstance(length, int):
        text += f" Keep it within {length} words."
    return text


def max_new_tokens_for(length: str | int) -> int:
    """New tokens allowed for a length choice (a word count: about 1.6 tokens a word, plus room to finish)."""
    return int(length * 1.6) + 16 if isinstance(length, int) else LENGTHS[length]


def resolve_captioner(model: str) -> str:
    """The Hub repo id for a registry name or an ``owner/repo`` id."""
    if model in CAPTIONERS:
        return CAPTIONERS[model].repo_id
    if model.count("/") == 1 and not model.startswith((".", "/", "~")):
        return model
    raise TaggerError(f"'{model}' is neither a known captioner nor a folder with a saved captioning model.",
                      fix=f"Use one of: {', '.join(CAPTIONERS)}; a Hub id like florence-community/Florence-2-large; or a local folder.")


def is_captioner_folder(path: Path) -> bool:
    return (path / "config.json").is_file() and any(path.glob("*.safetensors"))


def captioner_folder(model: str | os.PathLike[str], cache_dir: str | Path | None = None) -> Path:
    """The local folder of ``model``, downloading its files into the HF cache when needed.

    Raises :class:`TaggerError` with the fix when a folder is not a saved model, or when the model is not
    cached and the Hub cannot be reached (offline mode, no network)."""
    path = Path(model).expanduser()
    if path.is_dir() or str(model).startswith((".", "/", "~")):
        if not is_captioner_folder(path):
            raise TaggerError(f"The captioner folder {path} has no config.json and *.safetensors weights.",
                              fix="Point model= at a folder written by save_pretrained (model and processor), or use a registry name.")
        return path
    repo_id = resolve_captioner(str(model))
    config = Path(_download(repo_id, "config.json", cache_dir, required=True))
    index = _download(repo_id, "model.safetensors.index.json", cache_dir)
    if index:
        try:
            shards = sorted(set(json.loads(Path(index).read_text(encoding="utf-8"))["weight_map"].values()))
        except (OSError, ValueError, KeyError, AttributeError) as e:
            raise TaggerError(f"The weight index of {repo_id} is unreadable ({e}).", fix="Download the model again.") from None
    else:
        shards = ["model.safetensors"]
    for shard in shards:
        _download(repo_id, shard, cache_dir, required=True)
    for name in OPTIONAL_FILES:
        _download(repo_id, name, cache_dir)
    return config.parent


# what a processor and generation may read besides config.json and the weights (absent ones are skipped)
OPTIONAL_FILES = ("generation_config.json", "preprocessor_config.json", "processor_config.json", "tokenizer.json",
                  "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "vocab.json", "merges.txt",
                  "chat_template.jinja", "chat_template.json")


def _download(repo_id: str, filename: str, cache_dir: str | Path | None, required: bool = False) -> str | None:
    """One file of the repository through huggingface_hub (cached in HF_HOME); None when an optional file is absent."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (EntryNotFoundError, GatedRepoError, LocalEntryNotFoundError, RepositoryNotFoundError,
                                        RevisionNotFoundError)

    try:
        return hf_hub_download(repo_id, filename, cache_dir=cache_dir)
    except LocalEntryNotFoundError:
        if not required:
            return None
        raise TaggerError(f"The captioner {repo_id} is not in the local cache and the Hugging Face Hub cannot be reached.",
                          fix="Connect to the internet (or unset HF_HUB_OFFLINE) once to download it, "
                              "or point model= at a local folder with the saved model.") from None
    except GatedRepoError:
        raise TaggerError(f"{repo_id} is gated on the Hugging Face Hub.",
                          fix="Accept its terms on the Hub and set HF_TOKEN, then try again.") from None
    except (RepositoryNotFoundError, RevisionNotFoundError):
        raise TaggerError(f"{repo_id} is not a repository on the Hugging Face Hub.",
                          fix="Check the name; known captioners: " + ", ".join(m.repo_id for m in CAPTIONERS.values()) + ".") from None
    except EntryNotFoundError:
        if not required:
            return None
        raise TaggerError(f"{repo_id} has no {filename} on the Hugging Face Hub.",
                          fix="Use a repository saved for transformers with safetensors weights, e.g. florence-community/Florence-2-large.") from None
    except OSError as e:  # network errors, a full disk
        raise TaggerError(f"Downloading {filename} of {repo_id} failed ({str(e).splitlines()[0][:200]}).",
                          fix="Check the network and free disk space, then try again.") from None


def family_of(model: str) -> str | None:
    """``florence2`` / ``joycaption`` for a registry name or a local model folder (its config.json is read, nothing
    is downloaded); None for a Hub id we do not know (its family shows once the job has downloaded it).

    >>> family_of("florence-2-base"), family_of("someone/some-model")
    ('florence2', None)
    """
    model = (model or "").strip()
    if model in CAPTIONERS:
        return CAPTIONERS[model].family
    path = Path(model).expanduser()
    if path.is_dir() and (path / "config.json").is_file():
        try:
            return model_family(path)
        except TaggerError:
            return None
    return None


def model_family(folder: Path) -> str:
    """``florence2`` or ``joycaption`` (any LLaVA model) from ``config.json``; a clear error otherwise."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise TaggerError(f"{folder / 'config.json'} could not be read ({e}).", fix="Download the model again.") from None
    kind = config.get("model_type")
    if kind == "florence2":
        if config.get("auto_map") or (config.get("vision_config") or {}).get("model_type") == "davit":
            raise TaggerError(f"{folder.name} is Florence-2 in its original remote-code format, which transformers' native "
                              "Florence-2 cannot load.",
                              fix="Use the converted repository florence-community/Florence-2-large (or -base): the same weights.")
        return "florence2"
    if kind == "llava":
        return "joycaption"
    raise TaggerError(f"The model in {folder} is a '{kind}' model; the captioners here are Florence-2 and LLaVA (JoyCaption).",
                      fix=f"Use one of: {', '.join(CAPTIONERS)}.")
