"""Publishing a LoRA to the Hugging Face Hub, as a job: create or reuse the repo, upload the LoRA (and
chosen epochs and sample images) with a model card written from its metadata, in one commit.

The token comes from ``HF_TOKEN`` or the login cache (``huggingface-cli login``); it is handed to the
job through its environment, so it never reaches the logs, the database or a saved file.

>>> card = model_card("me/alice-lora", {"ss_base_model_version": "sdxl_base_v1-0", "ss_network_dim": "16",
...                   "ss_network_alpha": "8", "ss_tag_frequency": '{"5_alice": {"alice": 4, "smile": 2}}'}, ["alice.safetensors"], [])
>>> "base_model: stabilityai/stable-diffusion-xl-base-1.0" in card, "`alice`" in card
(True, True)
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from ..errors import ConfigError, NotFound, SecretError

if TYPE_CHECKING:  # pragma: no cover
    from ..ports import HasJobs, JobHandle

__all__ = ["publish", "model_card", "find_token", "BASE_MODELS"]

BASE_MODELS = {  # ss_base_model_version / family -> the Hub id used as base_model in the card
    "sd_v1": "stable-diffusion-v1-5/stable-diffusion-v1-5", "sd15": "stable-diffusion-v1-5/stable-diffusion-v1-5",
    "sd_v2": "stabilityai/stable-diffusion-2-1", "sd2": "stabilityai/stable-diffusion-2-1",
    "sdxl_base_v1-0": "stabilityai/stable-diffusion-xl-base-1.0", "sdxl": "stabilityai/stable-diffusion-xl-base-1.0",
    "flux1": "black-forest-labs/FLUX.1-dev", "flux.1": "black-forest-labs/FLUX.1-dev", "flux": "black-forest-labs/FLUX.1-dev",
    "sd3": "stabilityai/stable-diffusion-3.5-medium",
}


def find_token() -> str | None:
    """HF_TOKEN, else the token saved by ``huggingface-cli login``; None when there is neither."""
    token = os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN")
    if token:
        return token
    try:
        from huggingface_hub import get_token

        return get_token()
    except Exception:
        return None


def _triggers(meta: dict[str, str]) -> list[str]:
    try:
        freq = json.loads(meta.get("ss_tag_frequency", "{}"))
    except ValueError:
        return []
    words: list[str] = []
    for tags in freq.values() if isinstance(freq, dict) else []:
        if isinstance(tags, dict):
            for tag, _ in sorted(tags.items(), key=lambda kv: -kv[1])[:1]:
                if tag.strip() and tag.strip() not in words:
                    words.append(tag.strip())
    return words


def model_card(repo_id: str, meta: dict[str, str], files: Sequence[str], samples: Sequence[str], family: str | None = None,
               trigger_words: Sequence[str] | None = None) -> str:
    """README.md for the repo: YAML front matter the Hub understands, then what the metadata says."""
    base_key = meta.get("ss_base_model_version") or family or ""
    base = BASE_MODELS.get(base_key) or BASE_MODELS.get(family or "", "")
    triggers = list(trigger_words) if trigger_words else _triggers(meta)
    name = repo_id.split("/")[-1]
    lines = ["---", "tags:", "- lora", "- text-to-image", "- lora-nb"]
    if base:
        lines.insert(1, f"base_model: {base}")
    if triggers:
        lines.append(f"instance_prompt: {json.dumps(', '.join(triggers))}")
    lines += ["---", "", f"# {name}", "", "A LoRA trained with kohya sd-scripts / ai-toolkit and published with lora-nb.", ""]
    if triggers:
        lines += ["## Trigger words", "", "Use " + ", ".join(f"`{t}`" for t in triggers) + " in the prompt.", ""]
    lines += ["## Files", ""] + [f"- `{f}`" for f in files] + [""]
    settings = [("Base model", base or base_key), ("Network", meta.get("ss_network_module")), ("Rank (dim)", meta.get("ss_network_dim")),
                ("Alpha", meta.get("ss_network_alpha")), ("Resolution", meta.get("ss_resolution")), ("Epochs", meta.get("ss_num_epochs")),
                ("Steps", meta.get("ss_max_train_steps") or meta.get("ss_steps")), ("Images", meta.get("ss_num_train_images")),
                ("Learning rate", meta.get("ss_learning_rate")), ("Optimizer", meta.get("ss_optimizer")), ("Comment", meta.get("ss_training_comment"))]
    rows = [(k, v) for k, v in settings if v not in (None, "", "None")]
    if rows:
        lines += ["## Training settings", "", "| | |", "|---|---|"] + [f"| {k} | {str(v).replace('|', '/')} |" for k, v in rows] + [""]
    if samples:
        lines += ["## Samples", ""] + [f"![{Path(s).name}]({s})" for s in samples] + [""]
    return "\n".join(lines)


def publish(path: str | os.PathLike[str], repo_id: str, ws: "HasJobs", private: bool = True,
            extra_files: Sequence[str | os.PathLike[str]] = (), samples: Sequence[str | os.PathLike[str]] = (),
            trigger_words: Sequence[str] | None = None, token: str | None = None) -> "JobHandle":
    """Queue the upload of LoRA ``path`` (plus ``extra_files`` such as other epochs, and sample images) to ``repo_id``."""
    import re


    from .checks import verify

    p = Path(path)
    if not p.is_file():
        raise NotFound(f"{p} does not exist.", fix="Pick a LoRA from ws.jobs artifacts or lora_nb.lora.list_loras(ws).")
    if not re.fullmatch(r"[A-Za-z0-9][\w.-]{0,95}/[A-Za-z0-9][\w.-]{0,95}", repo_id) or ".." in repo_id:
        raise ConfigError(f"'{repo_id}' is not a Hub repository id.", fix="Write it as your-name/model-name.")
    others = [Path(x) for x in [*extra_files, *samples]]
    missing = [str(x) for x in others if not x.is_file()]
    if missing:
        raise NotFound(f"{missing[0]} does not exist.", fix="Choose existing files to upload with the LoRA.")
    report = verify(p)
    if not report.ok:
        raise ConfigError(f"{p.name} is not publishable: {report.problems[0]}", fix="Fix or re-export the LoRA first.")
    token = token or find_token()
    if not token:
        raise SecretError("No Hugging Face token was found.",
                          fix="Set HF_TOKEN in the environment or run `huggingface-cli login`; lora-nb never stores it.")
    env = {"HF_TOKEN": token}
    if os.environ.get("HF_ENDPOINT"):
        env["HF_ENDPOINT"] = os.environ["HF_ENDPOINT"]
    params = {"path": str(p.resolve()), "repo_id": repo_id, "private": bool(private), "extra_files": [str(x.resolve()) for x in extra_files],
              "samples": [str(Path(x).resolve()) for x in samples], "trigger_words": list(trigger_words or []), "family": report.family}
    return ws.jobs.submit_task("publish_lora", params, name=f"publish {p.name} to {repo_id}", env=env, meta={"repo_id": repo_id})
