"""Task: build a dataset report in a subprocess, so that decoding thousands of images
never blocks a kernel. Run by ``ds.report_job(...)``.

The report's findings are cached on disk (``<dataset>/.lora-nb/meta.json``), so after
this job ``ds.report(...)`` in the kernel is fast. The report itself is written to
``<run_dir>/report.json`` and announced as an artifact. Parameters: ``workspace``,
``dataset``, and any keyword of :meth:`lora_nb.datasets.Dataset.report`.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from .progress_reporter import Reporter, load_params


def main(argv: list[str] | None = None) -> int:
    from ..errors import LoraNbError
    from ..workspace import Workspace

    args = sys.argv[1:] if argv is None else argv
    params = load_params(args)
    ws = Workspace(params.pop("workspace"))
    name = params.pop("dataset")
    if isinstance(params.get("resolution"), list):
        params["resolution"] = tuple(params["resolution"])
    rep = Reporter(unit="img")
    last = [0.0]

    def progress(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] >= 0.5 or done >= total:
            last[0] = now
            rep.progress(done, total, phase="checking images")

    try:
        report = ws.datasets.get(name).report(progress=progress, **params)
    except LoraNbError as e:
        rep.message(str(e), level="error")
        return 1
    out = Path(args[0]).parent / "report.json"
    out.write_text(json.dumps(report.to_dict(), indent=1), encoding="utf-8")
    for p in report.issues:
        rep.message(p.message, level={"error": "error", "warning": "warning"}.get(p.severity, "info"))
    rep.artifact(str(out), kind="file")
    return 0


if __name__ == "__main__":
    sys.exit(main())
