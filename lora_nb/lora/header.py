"""Reading a safetensors header without loading any tensor, and refusing hostile files.

A safetensors file is an 8-byte little-endian header length, a JSON header (tensor names with dtype,
shape and byte offsets, plus ``__metadata__``), then the data. Everything here reads only the header.

>>> import tempfile, numpy as np
>>> from safetensors.numpy import save_file
>>> p = tempfile.mktemp(suffix=".safetensors")
>>> save_file({"a.lora_down.weight": np.zeros((4, 8), np.float16)}, p, metadata={"ss_network_dim": "4"})
>>> h = read_header(p)
>>> h.metadata, h.tensors["a.lora_down.weight"].shape, h.tensors["a.lora_down.weight"].dtype
({'ss_network_dim': '4'}, (4, 8), 'F16')
"""
from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import LoraFileError

__all__ = ["TensorInfo", "Header", "read_header", "DTYPE_SIZES", "MAX_HEADER"]

DTYPE_SIZES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1,
               "F8_E4M3": 1, "F8_E5M2": 1, "U16": 2, "U32": 4, "U64": 8}
MAX_HEADER = 100 * 1024 * 1024        # safetensors itself refuses headers above 100 MB


@dataclass(frozen=True)
class TensorInfo:
    dtype: str
    shape: tuple[int, ...]
    start: int
    end: int

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


@dataclass
class Header:
    path: Path
    size: int
    metadata: dict[str, str] = field(default_factory=dict)
    tensors: dict[str, TensorInfo] = field(default_factory=dict)


def read_header(path: str | os.PathLike[str]) -> Header:
    """Parse and validate the header of ``path``; :class:`LoraFileError` says what is wrong with a bad file."""
    p = Path(path)
    name = p.name
    try:
        size = p.stat().st_size
        with open(p, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise LoraFileError(f"{name} is too short to be a safetensors file ({size} bytes).", fix="The file is truncated: download or copy it again.")
            (n,) = struct.unpack("<Q", head)
            if n > MAX_HEADER or n > size - 8:
                raise LoraFileError(f"{name} declares a {n:,}-byte header in a {size:,}-byte file.",
                                    fix="It is truncated or not a safetensors file: download or copy it again.")
            raw = f.read(n)
    except OSError as e:
        raise LoraFileError(f"{name} cannot be read ({e.strerror or e}).", fix="Check the path and permissions.") from None
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise LoraFileError(f"{name} has a header that is not valid JSON.", fix="It is not a safetensors file, or it is damaged.") from None
    if not isinstance(data, dict):
        raise LoraFileError(f"{name} has a header that is not a JSON object.", fix="It is not a safetensors file.")
    meta = data.pop("__metadata__", None) or {}
    if not isinstance(meta, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        raise LoraFileError(f"{name} has metadata that is not a map of strings.", fix="It is damaged or was written by a broken tool.")
    data_size = size - 8 - n
    tensors: dict[str, TensorInfo] = {}
    for key, info in data.items():
        try:
            dtype, shape, (start, end) = info["dtype"], tuple(int(d) for d in info["shape"]), info["data_offsets"]
        except (TypeError, KeyError, ValueError):
            raise LoraFileError(f"{name}: the entry for tensor '{key}' is malformed.", fix="The file is damaged.") from None
        if dtype not in DTYPE_SIZES:
            raise LoraFileError(f"{name}: tensor '{key}' has the unknown dtype {dtype!r}.", fix="The file is damaged or from an unsupported tool.")
        t = TensorInfo(dtype, shape, int(start), int(end))
        if any(d < 0 for d in shape) or not (0 <= t.start <= t.end <= data_size) or t.end - t.start != t.numel * DTYPE_SIZES[dtype]:
            raise LoraFileError(f"{name}: tensor '{key}' points outside the file or has the wrong byte length.",
                                fix="The file is truncated or damaged: download or copy it again.")
        tensors[key] = t
    return Header(p, size, meta, tensors)
