"""What a LoRA file is: rank, alpha, network type, base family, size and its training metadata.

Reads only the safetensors header (kohya's ``ss_*`` keys, ai-toolkit's ``training_info``), so it is
instant even for a 1 GB file.

>>> import tempfile, numpy as np
>>> from safetensors.numpy import save_file
>>> p = tempfile.mktemp(suffix=".safetensors")
>>> save_file({"lora_unet_a.lora_down.weight": np.zeros((8, 32), np.float16), "lora_unet_a.lora_up.weight": np.zeros((32, 8), np.float16),
...            "lora_unet_a.alpha": np.array(4.0, np.float16)}, p, metadata={"ss_num_epochs": "10"})
>>> i = lora_info(p)
>>> (i.rank, i.alpha, i.network, i.family, i.training["ss_num_epochs"])
(8, 4.0, 'lora', 'sd15', 10)
"""
from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..families import detect_lora_family
from .header import Header, read_header

__all__ = ["LoraInfo", "lora_info", "read_metadata", "module_pairs", "DOWN_UP"]

DOWN_UP = (("lora_down", "lora_up"), ("lora_A", "lora_B"), ("down", "up"))


def read_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    """The file's ``__metadata__`` (kohya ``ss_*`` keys, modelspec ...), without loading tensors."""
    return dict(read_header(path).metadata)


def module_pairs(names: list[str]) -> dict[str, tuple[str, str, str | None]]:
    """{module: (down key, up key, alpha key or None)} for every LoRA module (kohya, PEFT, ControlLoRA names)."""
    present = set(names)
    out: dict[str, tuple[str, str, str | None]] = {}
    for key in names:
        parts = key.split(".")
        for down, up in DOWN_UP:
            if len(parts) >= 2 and parts[-2] == down:
                block, suffix = ".".join(parts[:-2]), "." + parts[-1]
            elif parts[-1] == down:
                block, suffix = ".".join(parts[:-1]), ""
            else:
                continue
            up_key = f"{block}.{up}{suffix}"
            if up_key in present:
                alpha = f"{block}.alpha"
                out[block] = (key, up_key, alpha if alpha in present else None)
            break
    return out


def _decode(value: str) -> Any:
    if value[:1] in "{[" or value in ("true", "false", "null") or value.lstrip("-").replace(".", "", 1).isdigit():
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


@dataclass
class LoraInfo:
    path: Path
    size: int
    modules: int
    rank: int | None                 # the most common rank (None: not a LoRA)
    ranks: dict[int, int]            # rank -> modules
    alpha: float | None              # ss_network_alpha, else the first module's .alpha scalar (a few bytes read)
    network: str                     # lora | locon (3x3 conv) | lycoris | peft | unknown
    family: str
    conv: bool
    dtype: str | None
    metadata: dict[str, str] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)     # ss_* and training_info, JSON decoded

    @property
    def trigger_words(self) -> list[str]:
        """Most frequent tags per dataset folder (kohya ``ss_tag_frequency``): the usual trigger words first."""
        freq = self.training.get("ss_tag_frequency")
        if not isinstance(freq, dict):
            return []
        out: list[str] = []
        for tags in freq.values():
            if isinstance(tags, dict):
                for tag, _ in sorted(tags.items(), key=lambda kv: -kv[1])[:3]:
                    if tag not in out:
                        out.append(tag.strip())
        return out


def _first_alpha(h: Header, pairs: dict[str, tuple[str, str, str | None]]) -> float | None:
    import struct

    for _, _, alpha_key in pairs.values():
        if alpha_key is None:
            continue
        t = h.tensors[alpha_key]
        fmt = {"F32": "<f", "F16": "<e", "F64": "<d"}.get(t.dtype)
        if t.numel != 1 or (fmt is None and t.dtype != "BF16"):
            return None
        offset = 8 + _header_len(h.path) + t.start
        with open(h.path, "rb") as f:
            f.seek(offset)
            raw = f.read(t.end - t.start)
        if t.dtype == "BF16":
            return struct.unpack("<f", b"\x00\x00" + raw)[0]
        return float(struct.unpack(fmt, raw)[0])
    return None


def _header_len(path: Path) -> int:
    import struct

    with open(path, "rb") as f:
        return struct.unpack("<Q", f.read(8))[0]


def lora_info(path: str | os.PathLike[str], header: Header | None = None) -> LoraInfo:
    """Everything the header says about the LoRA at ``path``."""
    h = header or read_header(path)
    names = list(h.tensors)
    pairs = module_pairs(names)
    ranks: Counter = Counter()
    conv = False
    for down, _, _ in pairs.values():
        shape = h.tensors[down].shape
        ranks[shape[0]] += 1
        conv |= len(shape) == 4 and shape[2:] != (1, 1)
    joined = "\n".join(names)
    if "hada_w1" in joined or "lokr_w1" in joined or ".lora_mid." in joined:      # LoHa, LoKr, LoCon with Tucker
        network = "lycoris"
    elif any(".lora_A" in n for n in names):
        network = "peft"
    elif pairs:
        network = "locon" if conv else "lora"
    else:
        network = "unknown"
    meta = h.metadata
    alpha = None
    for key in ("ss_network_alpha",):
        try:
            alpha = float(meta[key])
        except (KeyError, ValueError):
            pass
    if alpha is None:
        alpha = _first_alpha(h, pairs)
    if network == "peft" and alpha is None and ranks:
        alpha = float(ranks.most_common(1)[0][0])          # PEFT files without .alpha: alpha equals the rank
    dtypes = Counter(t.dtype for t in h.tensors.values())
    training = {k: _decode(v) for k, v in meta.items() if k.startswith("ss_") or k in ("training_info", "modelspec.title")}
    return LoraInfo(h.path, h.size, len(pairs), ranks.most_common(1)[0][0] if ranks else None, dict(ranks), alpha, network,
                    detect_lora_family(names, {k: t.shape for k, t in h.tensors.items()}), conv,
                    dtypes.most_common(1)[0][0] if dtypes else None, dict(meta), training)
