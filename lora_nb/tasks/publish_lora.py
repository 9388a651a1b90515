"""Task: publish a LoRA to the Hugging Face Hub (``lora_nb.lora.publish``).

The token arrives in the environment (HF_TOKEN), never in the parameters; huggingface_hub reads it.
One commit: the LoRA, extra epochs, sample images under ``samples/`` and a README.md model card.
"""
from __future__ import annotations

import sys
from pathlib import Path

from .progress_reporter import Reporter, load_params


def main(argv: list[str] | None = None) -> int:
    import os

    from huggingface_hub import CommitOperationAdd, HfApi
    from huggingface_hub.errors import HfHubHTTPError

    from ..lora.header import read_header
    from ..lora.hub import model_card

    p = load_params(argv)
    rep = Reporter(total=3, unit="step")
    api = HfApi(endpoint=os.environ.get("HF_ENDPOINT") or None)
    lora = Path(p["path"])
    try:
        rep.progress(0, phase="creating the repository")
        url = api.create_repo(p["repo_id"], private=p["private"], exist_ok=True, repo_type="model")
        rep.message(f"repository {url}")
        files = [lora.name] + [Path(x).name for x in p["extra_files"]]
        samples = [f"samples/{Path(x).name}" for x in p["samples"]]
        card = model_card(p["repo_id"], read_header(lora).metadata, files, samples, p.get("family"), p.get("trigger_words"))
        ops = [CommitOperationAdd(path_in_repo=lora.name, path_or_fileobj=str(lora))]
        ops += [CommitOperationAdd(path_in_repo=Path(x).name, path_or_fileobj=x) for x in p["extra_files"]]
        ops += [CommitOperationAdd(path_in_repo=s, path_or_fileobj=x) for s, x in zip(samples, p["samples"])]
        ops.append(CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=card.encode("utf-8")))
        rep.progress(1, phase=f"uploading {len(ops)} files")
        info = api.create_commit(p["repo_id"], ops, commit_message=f"Upload {lora.name} with lora-nb", repo_type="model")
        rep.progress(3, phase="done")
        rep.message(f"published {len(ops)} files: {info.commit_url}")
        rep.artifact(str(info.commit_url), "url")
        return 0
    except HfHubHTTPError as e:
        status = getattr(getattr(e, "response", None), "status_code", None)
        fix = {401: "The token was refused: create a write token at huggingface.co/settings/tokens.",
               403: "The token may not write to this repository (a read token, or someone else's namespace)."}.get(status, "Check the repository name and the network.")
        rep.message(f"The Hub refused the upload ({status}): {str(e).splitlines()[0][:200]}", "error")
        rep.hint(fix, "hub_http")
        return 1
    except OSError as e:
        rep.message(f"The Hub could not be reached ({e}).", "error")
        rep.hint("Check the network (or HF_ENDPOINT) and try again.", "hub_network")
        return 1


if __name__ == "__main__":
    sys.exit(main())
