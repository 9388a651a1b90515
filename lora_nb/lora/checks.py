"""Check a LoRA file before using or publishing it: structure, shapes, values, dtype, base family.

>>> import tempfile, numpy as np
>>> from safetensors.numpy import save_file
>>> p = tempfile.mktemp(suffix=".safetensors")
>>> save_file({"lora_unet_a.lora_down.weight": np.ones((4, 8), np.float32), "lora_unet_a.lora_up.weight": np.full((16, 4), np.nan, np.float32)}, p)
>>> r = verify(p)
>>> r.ok, r.problems[0]
(False, 'lora_unet_a.lora_up.weight has 64 NaN values.')
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..families import FAMILY_NAMES

__all__ = ["VerifyReport", "verify"]

FLOAT_DTYPES = {"F32", "F16", "BF16", "F64"}


@dataclass
class VerifyReport:
    path: Path
    ok: bool
    family: str
    modules: int
    problems: list[str] = field(default_factory=list)      # each blocks use
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        head = f"{self.path.name}: {'OK' if self.ok else 'BROKEN'}, {self.modules} modules, fits {FAMILY_NAMES.get(self.family, self.family)}"
        return "\n".join([head] + [f"  problem: {p}" for p in self.problems] + [f"  warning: {w}" for w in self.warnings])

    def __str__(self) -> str:
        return self.summary()


def verify(path: str | os.PathLike[str], scan_values: bool = True) -> VerifyReport:
    """Keys paired, ranks consistent, shapes multiply, alpha scalars, no NaN/inf, float dtypes; the family it fits.

    A file that cannot be parsed at all raises :class:`~lora_nb.errors.LoraFileError` (one sentence, the fix).
    """
    import numpy as np
    from safetensors import safe_open

    from .header import read_header
    from .info import DOWN_UP, lora_info, module_pairs

    h = read_header(path)
    info = lora_info(path, h)
    names = list(h.tensors)
    pairs = module_pairs(names)
    problems: list[str] = []
    warnings: list[str] = []
    paired = {k for trip in pairs.values() for k in trip if k}
    downs = [n for n in names if any(n.split(".")[-2:-1] == [d] or n.endswith("." + d) for d, _ in DOWN_UP)]
    for n in downs:
        if n not in paired:
            problems.append(f"{n} has no matching up weight.")
    if not pairs and "hada_w1" not in "".join(names) and "lokr_w1" not in "".join(names):
        problems.append("The file has no LoRA modules (no lora_down/lora_up or lora_A/lora_B pairs).")
    for block, (d, u, a) in pairs.items():
        ds, us = h.tensors[d].shape, h.tensors[u].shape
        if len(ds) not in (2, 4) or len(us) not in (2, 4) or ds[0] != us[1]:
            problems.append(f"{block}: down {ds} and up {us} do not fit together (ranks {ds[0] if ds else '?'} vs {us[1] if len(us) > 1 else '?'}).")
        if a is not None and h.tensors[a].numel != 1:
            problems.append(f"{block}.alpha is not a single number (shape {h.tensors[a].shape}).")
    odd = sorted({t.dtype for t in h.tensors.values()} - FLOAT_DTYPES)
    if odd:
        problems.append(f"Tensors of dtype {', '.join(odd)}: a LoRA holds floating-point weights.")
    if len({t.dtype for k, t in h.tensors.items() if k in paired}) > 1:
        warnings.append("The weights mix several dtypes.")
    if info.family == "unknown" and pairs:
        warnings.append("The key names match no known base family (SD 1.x/2.x, SDXL, FLUX, SD3).")
    if scan_values and not odd:
        with open(h.path, "rb") as raw:
            data_start = 8 + int.from_bytes(raw.read(8), "little")
        with safe_open(str(h.path), "np") as f:
            for key in names:
                t = h.tensors[key]
                if t.numel == 0:
                    continue
                if t.dtype == "BF16":       # numpy has no bfloat16: test the raw bits (exponent all ones)
                    bits = np.fromfile(h.path, dtype="<u2", count=t.numel, offset=data_start + t.start) & 0x7FFF
                    nan, inf = int((bits > 0x7F80).sum()), int((bits == 0x7F80).sum())
                else:
                    arr = f.get_tensor(key)
                    nan, inf = int(np.isnan(arr).sum()), int(np.isinf(arr).sum())
                if nan:
                    problems.append(f"{key} has {nan} NaN values.")
                if inf:
                    problems.append(f"{key} has {inf} infinite values.")
                if len(problems) > 20:
                    break
    return VerifyReport(h.path, not problems, info.family, len(pairs), problems, warnings)
