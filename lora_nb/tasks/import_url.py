"""Task: download a ZIP or an image over plain HTTP(S) and import it as a dataset.

Run by ``ws.datasets.import_url_job(url, name)`` as
``python -m lora_nb.tasks.import_url <run_dir>/task.json``; parameters: ``workspace``,
``url``, ``name``, ``max_bytes``, ``merge``. Progress is reported in bytes while
downloading, then in images while importing.
"""
from __future__ import annotations

import sys

from .progress_reporter import Reporter, load_params


def main(argv: list[str] | None = None) -> int:
    from ..errors import LoraNbError
    from ..workspace import Workspace

    params = load_params(argv)
    ws = Workspace(params["workspace"])
    download = Reporter(unit="B")
    progress = download.throttled("downloading")

    try:
        result = ws.datasets.import_url(params["url"], params["name"], max_bytes=int(params.get("max_bytes") or 8 * 1024**3),
                                        merge=bool(params.get("merge")),
                                        progress=progress)
    except LoraNbError as e:
        download.message(str(e), level="error")
        return 1
    download.message(result.summary())
    for name, why in result.skipped[:50]:
        download.message(f"skipped {name}: {why}", level="warning")
    download.artifact(str(result.dataset.path), kind="dataset")
    return 0


if __name__ == "__main__":
    sys.exit(main())
