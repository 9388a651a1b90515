"""An onnxruntime session for a WD14 tagger, with its input size and layout read from the model.

The CUDA provider is used when onnxruntime-gpu offers it (ROCm likewise), else the CPU.
``LORA_NB_TAGGER_PROVIDERS=CPUExecutionProvider`` forces a choice.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import TaggerError

__all__ = ["TaggerSession", "open_session", "pick_providers", "runs_on_gpu"]

_GPU_PROVIDERS = ("CUDAExecutionProvider", "ROCMExecutionProvider")


def runs_on_gpu() -> bool:
    """Whether a tagging job here would run on a GPU (and so must hold a GPU slot).

    True when NVML finds a GPU and onnxruntime can use it: the ``onnxruntime-gpu`` build is
    installed, or ``LORA_NB_TAGGER_PROVIDERS`` names a GPU provider. Cheap: onnxruntime is not imported.
    """
    import importlib.metadata

    from ..nvml import device_indices

    if not device_indices():
        return False
    forced = os.environ.get("LORA_NB_TAGGER_PROVIDERS")
    if forced:
        return any(p in forced for p in _GPU_PROVIDERS)
    try:
        importlib.metadata.distribution("onnxruntime-gpu")
        return True
    except importlib.metadata.PackageNotFoundError:
        return False


def pick_providers(available: list[str]) -> list[str]:
    """CUDA, then ROCm, then CPU (kohya's order without OpenVINO); an override from the environment wins.

    >>> pick_providers(["CUDAExecutionProvider", "CPUExecutionProvider"])
    ['CUDAExecutionProvider', 'CPUExecutionProvider']
    >>> pick_providers(["CPUExecutionProvider"])
    ['CPUExecutionProvider']
    """
    forced = os.environ.get("LORA_NB_TAGGER_PROVIDERS")
    if forced:
        return [p.strip() for p in forced.split(",") if p.strip()]
    for gpu in _GPU_PROVIDERS:
        if gpu in available:
            return [gpu, "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


@dataclass
class TaggerSession:
    session: Any
    input_name: str
    size: int
    layout: str                 # "NHWC" (WD14) or "NCHW"
    fixed_batch: int | None     # a model exported with a fixed batch dimension
    providers: list[str]

    def run(self, batch: Any) -> Any:
        """Scores for a batch of preprocessed images (N x size x size x 3, float32)."""
        import numpy as np

        n = len(batch)
        if self.fixed_batch and n < self.fixed_batch:
            batch = np.concatenate([batch, np.zeros((self.fixed_batch - n, *batch.shape[1:]), dtype=batch.dtype)])
        if self.layout == "NCHW":
            batch = batch.transpose(0, 3, 1, 2)
        return self.session.run(None, {self.input_name: np.ascontiguousarray(batch)})[0][:n]


def open_session(model_path: str | Path, providers: list[str] | None = None) -> TaggerSession:
    """Load ``model.onnx``; raises :class:`TaggerError` if it is not an image-to-scores model."""
    import onnxruntime as ort

    try:
        options = ort.SessionOptions()
        options.log_severity_level = 3
        chosen = providers or pick_providers(ort.get_available_providers())
        session = ort.InferenceSession(str(model_path), sess_options=options, providers=chosen)
    except Exception as e:  # onnxruntime raises its own Fail/InvalidGraph types
        raise TaggerError(f"{Path(model_path).name} could not be loaded by onnxruntime ({str(e).splitlines()[0][:200]}).",
                          fix="Download the tagger again (the file may be truncated).") from None
    inp = session.get_inputs()[0]
    shape = list(inp.shape)
    if len(shape) != 4:
        raise TaggerError(f"The tagger's input has shape {shape}; a WD14 tagger takes images (N, H, W, 3).",
                          fix="Use a SmilingWolf WD14 tagger.")
    if shape[3] == 3 and isinstance(shape[1], int):
        layout, size = "NHWC", shape[1]
    elif shape[1] == 3 and isinstance(shape[2], int):
        layout, size = "NCHW", shape[2]
    else:
        raise TaggerError(f"The tagger's input shape {shape} is neither NHWC nor NCHW with a fixed size.", fix="Use a SmilingWolf WD14 tagger.")
    fixed = shape[0] if isinstance(shape[0], int) and shape[0] > 0 else None
    return TaggerSession(session, inp.name, int(size), layout, fixed, session.get_providers())
