"""``lora-nb engines install kohya|ai-toolkit``: a pinned checkout with its own virtual environment, as a job.

The steps (clone, checkout of the pinned commit, venv, torch, requirements) run in a task job
(``lora_nb.tasks.install_engine``) so the kernel stays free and the git and pip output is shown
with progress. The checkout is built in ``<dest>.partial`` and renamed into place only when
every step succeeded, so a failed or stopped install never leaves a half-made engine behind;
then the workspace settings point at it.

>>> SOURCES["kohya"].commit
'48d368fa557731ad0488c07304dfeba8c07910eb'
>>> torch_argv("skip", "/venv/bin/python") is None
True
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import EngineError

if TYPE_CHECKING:  # pragma: no cover
    from ..ports import EngineHome, JobHandle

__all__ = ["EngineSource", "SOURCES", "install_engine", "torch_argv", "DEFAULT_TORCH_INDEX"]

# the commits ENGINES.md was checked against: what we render is known to be accepted by them
DEFAULT_TORCH_INDEX = "https://download.pytorch.org/whl/cu128"


@dataclass(frozen=True)
class EngineSource:
    name: str
    url: str
    commit: str
    folder: str            # default folder name under <workspace>/engines
    dir_setting: str
    python_setting: str
    requirements: str = "requirements.txt"


SOURCES = {
    "kohya": EngineSource("kohya", "https://github.com/kohya-ss/sd-scripts.git", "48d368fa557731ad0488c07304dfeba8c07910eb",
                          "sd-scripts", "kohya_dir", "kohya_python"),
    "ai-toolkit": EngineSource("ai-toolkit", "https://github.com/ostris/ai-toolkit.git", "27a03a91f23eb1b757d5ec2e80ee3e129cfcc350",
                               "ai-toolkit", "aitoolkit_dir", "aitoolkit_python"),
}


def torch_argv(torch: str, python: str) -> list[str] | None:
    """The pip command that installs torch into the engine's venv; None when torch is left alone.

    ``torch``: "cuda" (CUDA wheels from the PyTorch index), "system" or "skip" (nothing: the venv
    sees the host's torch, or the requirements bring it), or a pip requirement such as "torch==2.7.1".
    """
    if torch in ("skip", "system"):
        return None
    if torch == "cuda":
        return [python, "-m", "pip", "install", "--progress-bar", "off", "torch", "torchvision", "--index-url", DEFAULT_TORCH_INDEX]
    return [python, "-m", "pip", "install", "--progress-bar", "off", *torch.split()]


def install_engine(ws: "EngineHome", name: str, *, url: str | None = None, commit: str | None = None, dest: str | Path | None = None,
                   torch: str = "cuda", force: bool = False) -> "JobHandle":
    """Queue the install of engine ``name`` into ``dest`` (default ``<workspace>/engines/<folder>``).

    ``torch="system"`` makes the venv see the host's packages (a Vast.ai template's torch) instead of
    downloading another copy. ``url``/``commit`` override the pinned source (a fork, a local mirror).
    """
    from ..settings import looks_secret

    source = SOURCES.get(name)
    if source is None:
        raise EngineError(f"There is no engine called '{name}' to install.", fix=f"Use one of: {', '.join(sorted(SOURCES))}.")
    target = Path(dest).expanduser().resolve() if dest else ws.engines_dir / source.folder
    if target.exists() and any(target.iterdir()) and not force:
        raise EngineError(f"{target} already exists, so {name} is not installed over it.",
                          fix=f"Point lora-nb at it with ws.settings.set('{source.dir_setting}', '{target}'), or pass force=True to replace it.")
    if torch not in ("cuda", "system", "skip") and not torch.strip().startswith("torch"):
        raise EngineError(f"'{torch}' is not a torch choice.", fix="Use cuda, system, skip, or a pip requirement such as torch==2.7.1.")
    repo = url or source.url
    if looks_secret("url", repo) or "@" in repo.split("://", 1)[-1].split("/", 1)[0]:
        raise EngineError("The repository URL contains credentials, which would be saved with the job.",
                          fix="Use a public URL, or configure git credentials outside lora-nb.")
    params = {"engine": name, "url": repo, "commit": commit or source.commit, "dest": str(target), "torch": torch,
              "force": bool(force), "requirements": source.requirements, "dir_setting": source.dir_setting,
              "python_setting": source.python_setting}
    return ws.jobs.submit_task("install_engine", params, name=f"install {name}", uses_gpu=False)
