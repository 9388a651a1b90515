"""Task: download a model into the workspace (``ws.models.download``).

Hugging Face files go through huggingface_hub (its cache, HF_TOKEN, resumable) and are linked or
copied into ``models/``; Civitai and plain links are fetched with HTTP Range resume and the published
SHA256 is checked. Progress in bytes; the token is only in the environment.
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from .progress_reporter import Reporter, StopFlag, load_params



def main(argv: list[str] | None = None) -> int:
    from ..errors import LoraNbError, NetworkError
    from ..models.fetch import fetch
    from ..models.sources import Source, civitai_file

    stop = StopFlag()
    p = load_params(argv)
    rep = Reporter(unit="B")
    dest_dir = Path(p["dest_dir"])
    dest_dir.mkdir(parents=True, exist_ok=True)
    progress = rep.throttled("downloading")
    try:
        if p["kind"] == "hf":
            from huggingface_hub import hf_hub_download
            from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

            rep.progress(0, phase=f"downloading {p['repo_id']}/{p['filename']}")
            try:
                cached = Path(hf_hub_download(p["repo_id"], p["filename"]))
            except LocalEntryNotFoundError:
                raise NetworkError(f"{p['repo_id']}/{p['filename']} is not cached and the Hub cannot be reached.",
                                   fix="Connect to the internet (or unset HF_HUB_OFFLINE) and try again.") from None
            except HfHubHTTPError as e:
                code = getattr(getattr(e, "response", None), "status_code", "?")
                raise NetworkError(f"The Hub refused {p['repo_id']}/{p['filename']} (HTTP {code}).",
                                   fix="Check the name; gated models need their licence accepted and HF_TOKEN set.") from None
            dest = dest_dir / Path(p["filename"]).name
            if not dest.exists():
                try:
                    os.link(cached.resolve(), dest)        # no second copy on the same disk
                except OSError:
                    tmp = dest.with_name(dest.name + ".part")
                    shutil.copyfile(cached, tmp)
                    os.replace(tmp, dest)
        else:
            headers = {}
            sha = p.get("sha256")
            if p["kind"] == "civitai":
                token = os.environ.get("CIVITAI_TOKEN")
                url, name, published, _ = civitai_file(Source("civitai", version_id=p.get("version_id"), model_id=p.get("model_id")), token)
                sha = sha or published
                if token:
                    headers["Authorization"] = f"Bearer {token}"
            else:
                url = p["url"]
                from ..datasets.download import filename_from

                name = p.get("filename") or filename_from(url, None)
            from ..paths import safe_name

            dest = dest_dir / safe_name(name, "file name")
            rep.message(f"downloading {name}" + (" (SHA256 will be checked)" if sha else ""))
            fetch(url, dest, sha256=sha, headers=headers, progress=progress, should_stop=stop)
    except LoraNbError as e:
        rep.message(str(e), "error")
        return 143 if stop else 1
    rep.message(f"saved {dest} ({dest.stat().st_size:,} bytes)")
    rep.artifact(str(dest), "model")
    return 0


if __name__ == "__main__":
    sys.exit(main())
