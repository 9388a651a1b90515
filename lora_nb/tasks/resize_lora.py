"""Task: resize a LoRA (``lora_nb.lora.resize_job``), with progress per module and the per-layer report in the log."""
from __future__ import annotations

import sys

from .progress_reporter import Reporter, load_params


def main(argv: list[str] | None = None) -> int:
    from ..errors import LoraNbError
    from ..lora.rank_resize import resize

    p = load_params(argv)
    rep = Reporter(unit="module")
    last = [0]

    def progress(done: int, total: int) -> None:
        if done - last[0] >= 16 or done == total:
            last[0] = done
            rep.progress(done, total, phase="resizing")

    try:
        report = resize(p["src"], p["dst"], rank=p.get("rank"), method=p.get("method"), param=p.get("param"),
                        conv_rank=p.get("conv_rank"), save_precision=p.get("save_precision", "fp16"), progress=progress,
                        overwrite=bool(p.get("overwrite")))
    except LoraNbError as e:
        rep.message(str(e), "error")
        return 1
    for layer in report.layers:
        print(layer.line() + (f", dynamic | dim: {layer.new_rank}, alpha: {layer.new_alpha}" if report.method else ""))
    rep.message(report.summary())
    rep.artifact(str(report.dst), "lora")
    return 0


if __name__ == "__main__":
    sys.exit(main())
