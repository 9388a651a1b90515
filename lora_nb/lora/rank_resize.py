"""Reduce a LoRA's rank with SVD: the same result as kohya's ``networks/resize_lora.py``, without its cost.

kohya multiplies ``up @ down`` into the full weight (e.g. 1280 x 10240) and runs a full SVD of it.
That matrix has rank r (the old rank), so its SVD follows exactly from the small factors: with
``up = Qa Ra`` and ``down^T = Qb Rb`` (from the r x r Gram matrices and Cholesky, or thin QR), the
r x r SVD ``Ra Rb^T = Um S Vm^T`` gives ``U = Qa Um``, ``Vh = Vm^T Qb^T`` and the same singular
values. Work is O((out + in) r^2) per module instead of O(out * in * min(out, in)).

The rank decisions (fixed, ``sv_ratio``, ``sv_fro``, ``sv_cumulative``), the alpha rescaling
(``new_alpha = alpha / old_rank * new_rank``), the folding of S into ``up``, the output dtypes and
the metadata updates follow ENGINES.md A9.1, so files match kohya's within float tolerance (tested
against kohya's own outputs in ../shared/fixtures/kohya/loras). Singular vectors are unique only up
to sign, so compare ``up @ down``, not the factors.

>>> import tempfile, numpy as np
>>> from safetensors.numpy import save_file
>>> rng = np.random.default_rng(0); src = tempfile.mktemp(suffix=".safetensors")
>>> save_file({"lora_unet_a.lora_down.weight": rng.normal(size=(8, 64)).astype(np.float32),
...            "lora_unet_a.lora_up.weight": rng.normal(size=(32, 8)).astype(np.float32),
...            "lora_unet_a.alpha": np.array(8.0, np.float32)}, src)
>>> r = resize(src, src.replace(".safetensors", "-r4.safetensors"), rank=4)
>>> r.layers[0].new_rank, r.layers[0].new_alpha, round(r.layers[0].fro_retained, 3) < 1
(4, 4.0, True)
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..errors import ConfigError, LoraFileError

__all__ = ["resize", "ResizeReport", "LayerReport", "svd_of_product", "choose_rank", "MIN_SV"]

MIN_SV = 1e-6
METHODS = ("sv_ratio", "sv_fro", "sv_cumulative")
PRECISIONS = {"float": "float32", "fp16": "float16", "bf16": "bfloat16", None: "float32"}


@dataclass
class LayerReport:
    name: str
    old_rank: int
    new_rank: int
    new_alpha: float
    sum_retained: float       # share of sum(S) kept
    fro_retained: float       # share of the Frobenius norm kept (sqrt of the energy)
    max_ratio: float          # S[0] / S[new_rank - 1]

    def line(self) -> str:
        return (f"{self.name:75} | sum(S) retained: {self.sum_retained:.1%}, fro retained: {self.fro_retained:.1%}, "
                f"max(S) ratio: {self.max_ratio:0.1f}")


@dataclass
class ResizeReport:
    src: Path
    dst: Path
    old_rank: int
    method: str | None
    param: float | None
    rank: int
    conv_rank: int
    seconds: float
    device: str
    layers: list[LayerReport] = field(default_factory=list)

    @property
    def mean_fro_retained(self) -> float:
        vals = [x.fro_retained for x in self.layers]
        return sum(vals) / len(vals) if vals else 0.0

    def summary(self) -> str:
        ranks = sorted({x.new_rank for x in self.layers})
        what = f"rank {self.rank}" if not self.method else f"{self.method} {self.param} (max rank {self.rank}; ranks {ranks[0]}-{ranks[-1]})"
        return (f"{self.src.name} -> {self.dst.name}: {len(self.layers)} modules, {what}, "
                f"mean Frobenius retention {self.mean_fro_retained:.2%}, {self.seconds:.2f} s on {self.device}")

    def __str__(self) -> str:
        return self.summary()


def svd_of_product(up: Any, down: Any, xp: Any, keep: int | Callable[[Any], int] | None = None) -> tuple[Any, Any, Any]:
    """(U, S, Vh) of ``up @ down`` (out x r, r x n) from r x r work; ``xp`` is numpy or torch.

    Fast path: the r x r Gram matrices of the factors (two BLAS-3 products), their Cholesky factors
    ``Ra``, ``Rb``, and the SVD of ``Ra Rb^T``; then ``U = up Ra^-1 Um`` and ``Vh = Vm^T Rb^-T down``.
    When a factor is rank-deficient or badly conditioned (Cholesky fails, or its diagonal spans more
    than 1e6), thin QR of both factors is used instead: slower, equally exact. ``keep`` (a count, or a
    function of the singular values giving one) forms only the first ``keep`` singular vectors: all
    r singular values are returned, U and Vh are cut to ``keep``.

    >>> import numpy as np
    >>> rng = np.random.default_rng(1); up, down = rng.normal(size=(50, 6)), rng.normal(size=(6, 40))
    >>> U, S, Vh = svd_of_product(up, down, np, keep=2)
    >>> U.shape, S.shape, Vh.shape, bool(np.allclose(S, np.linalg.svd(up @ down, compute_uv=False)[:6]))
    ((50, 2), (6,), (2, 40), True)
    """
    linalg = xp.linalg

    def count(s: Any) -> int:
        k = keep(s) if callable(keep) else (s.shape[0] if keep is None else keep)
        return max(0, min(int(k), s.shape[0]))

    try:
        ra = linalg.cholesky(up.T @ up).T            # upper: Ga = Ra^T Ra
        rb = linalg.cholesky(down @ down.T).T
        da, db = abs(xp.diagonal(ra)), abs(xp.diagonal(rb))
        if float(da.min()) <= float(da.max()) * 1e-6 or float(db.min()) <= float(db.max()) * 1e-6:
            raise ValueError("ill-conditioned")
        um, s, vmh = linalg.svd(ra @ rb.T)
        k = count(s)
        u = up @ linalg.solve(ra, um[:, :k])          # up Ra^-1 Um
        vh = linalg.solve(rb, vmh[:k].T).T @ down     # Vm^T Rb^-T down
        return u, s, vh
    except Exception:                                 # LinAlgError (numpy/torch) or the conditioning check
        qu, ru = linalg.qr(up)
        qd, rd = linalg.qr(down.T)
        um, s, vmh = linalg.svd(ru @ rd.T)
        k = count(s)
        return qu @ um[:, :k], s, vmh[:k] @ qd.T


def _searchsorted(values: list[float], target: float) -> int:
    lo, hi = 0, len(values)
    while lo < hi:
        mid = (lo + hi) // 2
        if values[mid] < target:
            lo = mid + 1
        else:
            hi = mid
    return lo


def choose_rank(s: list[float], full_len: int, max_rank: int, method: str | None, param: float | None) -> int:
    """kohya's rank choice for singular values ``s`` (descending), as if the SVD had ``full_len`` of them.

    >>> choose_rank([4.0, 2.0, 1.0, 0.5], 320, 8, "sv_ratio", 3.0)
    3
    >>> choose_rank([4.0, 2.0, 1.0, 0.5], 320, 2, None, None)
    2
    """
    padded = list(s) + [0.0] * (full_len - len(s))        # the rest of kohya's full SVD: zeros up to rounding
    if method == "sv_ratio":
        index = sum(1 for v in padded if v > padded[0] / param)
        new = max(1, min(index, len(padded) - 1)) + 1
    elif method in ("sv_cumulative", "sv_fro"):
        vals = [v * v for v in padded] if method == "sv_fro" else padded
        total = sum(vals)
        acc, cum = 0.0, []
        for v in vals:
            acc += v
            cum.append(acc / total if total else 0.0)
        index = _searchsorted(cum, param * param if method == "sv_fro" else param) + 1
        new = max(1, min(index, len(padded) - 1)) + 1
    else:
        new = max_rank
    if padded[0] <= MIN_SV:
        return 1
    return min(new, max_rank)


def _gpu_present() -> bool:
    """Whether a GPU device node exists (NVIDIA, ROCm, WSL2): without one, importing torch (seconds) is pointless.

    ``LORA_NB_PROBE_CUDA=1`` asks torch regardless (a container that hides the device nodes).
    """
    import glob

    return bool(glob.glob("/dev/nvidia[0-9]*") or any(os.path.exists(d) for d in ("/dev/kfd", "/dev/dxg"))
                or os.environ.get("LORA_NB_PROBE_CUDA"))


def _device() -> tuple[Any, str]:
    """torch on CUDA when there is one, else numpy (float64 Cholesky/SVD of r x r matrices is fast on a CPU)."""
    if _gpu_present():
        try:
            import torch

            if torch.cuda.is_available():
                return torch, "cuda"
        except ImportError:
            pass
    import numpy

    return numpy, "cpu"


def resize(src: str | os.PathLike[str], dst: str | os.PathLike[str], rank: int | None = None, method: str | None = None,
           param: float | None = None, conv_rank: int | None = None, save_precision: str | None = "fp16",
           device: str | None = None, progress: Callable[[int, int], None] | None = None, overwrite: bool = False) -> ResizeReport:
    """Write ``dst``: ``src`` with every LoRA module's rank reduced; returns the per-layer report.

    ``rank``: the new rank (with a dynamic ``method``, the maximum; default 4 like kohya). ``method``:
    None (fixed), ``"sv_ratio"``, ``"sv_fro"`` or ``"sv_cumulative"`` with ``param``. ``conv_rank``: for
    every 4-D weight (default: ``rank``). ``save_precision``: ``"fp16"``, ``"bf16"`` or ``"float"``.
    ``device``: ``"cuda"`` or ``"cpu"`` (default: CUDA when available).
    """
    import numpy as np
    from safetensors import safe_open

    from .header import read_header
    from .info import module_pairs

    t0 = time.perf_counter()
    src, dst = Path(src), Path(dst)
    rank = 4 if rank is None else rank
    if not isinstance(rank, int) or rank < 1:
        raise ConfigError(f"rank must be a whole number of at least 1, not {rank!r}.", fix="For example rank=8.")
    conv_rank = rank if conv_rank is None else conv_rank
    if method is not None and method not in METHODS:
        raise ConfigError(f"'{method}' is not a resize method.", fix="Use sv_ratio, sv_fro, sv_cumulative, or none for a fixed rank.")
    if method is not None and not param:
        raise ConfigError(f"The {method} method needs a param.", fix="e.g. method='sv_fro', param=0.9 (keep 90% of the Frobenius norm).")
    if method in ("sv_fro", "sv_cumulative") and not (0 < param <= 1):
        raise ConfigError(f"{method} takes a param between 0 and 1, not {param}.", fix="e.g. 0.9.")
    if save_precision not in PRECISIONS:
        raise ConfigError(f"'{save_precision}' is not a precision.", fix="Use fp16, bf16 or float.")
    if dst.suffix != ".safetensors":
        raise ConfigError(f"{dst.name} must end in .safetensors.", fix="Choose a .safetensors file name.")
    if dst.exists() and not overwrite:
        raise ConfigError(f"{dst} already exists.", fix="Choose another name, or pass overwrite=True.")
    if dst.resolve() == src.resolve():
        raise ConfigError("The resized LoRA cannot replace its source.", fix="Write it to a new file.")
    header = read_header(src)
    pairs = module_pairs(list(header.tensors))
    if not pairs:
        raise LoraFileError(f"{src.name} has no LoRA modules (no lora_down/lora_up or lora_A/lora_B pairs).",
                            fix="Resize works on LoRA files, not on checkpoints or LyCORIS LoHa/LoKr.")
    odd = next((k for k in header.tensors if any(m in k for m in (".lora_mid.", ".hada_", ".lokr_", ".dora_scale"))), None)
    if odd is not None:
        raise LoraFileError(f"{src.name} holds LyCORIS/DoRA weights ({odd}) that a down/up rank resize would get wrong.",
                            fix="Resize plain LoRA/LoCon files only; retrain this one at the rank you want.")
    xp, dev = (np, "cpu") if device == "cpu" else _device()
    if device == "cuda" and dev != "cuda":
        raise ConfigError("device='cuda' was asked for, but no CUDA GPU is usable here.", fix="Leave device unset to use the CPU.")
    save_dtype = PRECISIONS[save_precision]
    bf16_keys: set[str] = set()        # numpy has no bfloat16: these hold raw bits, declared BF16 on writing

    def cast(a: Any) -> Any:
        return _bf16_bits(a) if save_dtype == "bfloat16" else a.astype(save_dtype)

    out: dict[str, Any] = {}
    layers: list[LayerReport] = []
    paired = {k for trip in pairs.values() for k in trip if k}
    with safe_open(str(src), "np") as f:
        get = _reader(f, header)
        for key in header.tensors:          # non-LoRA tensors pass through (as float32, like kohya's loader)
            if key not in paired:
                t = get(key)
                out[key] = t.astype(np.float32) if t.dtype.kind == "f" else t
        for n, (block, (down_key, up_key, alpha_key)) in enumerate(pairs.items()):
            down = get(down_key).astype(np.float32)
            up = get(up_key).astype(np.float32)
            old = down.shape[0]
            alpha = float(get(alpha_key).astype(np.float32)) if alpha_key else None
            scale = 1.0 if alpha is None else np.float32(alpha) / np.float32(old)
            conv = down.ndim == 4
            d2 = down.reshape(old, -1).astype(np.float64)
            u2 = up.reshape(up.shape[0], -1).astype(np.float64)
            if u2.shape[1] != old:
                raise LoraFileError(f"{src.name}: module {block} has up {up.shape} and down {down.shape}, which do not multiply.",
                                    fix="The file is damaged.")
            full_len = min(u2.shape[0], d2.shape[1])
            max_rank = conv_rank if conv else rank

            chosen = [0]

            def decide(sv: Any, full_len: int = full_len, max_rank: int = max_rank, chosen: list[int] = chosen) -> int:
                chosen[0] = choose_rank([float(x) for x in sv], full_len, max_rank, method, param)
                return chosen[0]

            if xp.__name__ == "torch":
                U, S, Vh = svd_of_product(xp.from_numpy(u2).to(dev), xp.from_numpy(d2).to(dev), xp, keep=decide)
                U, S, Vh = U.cpu().numpy(), S.cpu().numpy(), Vh.cpu().numpy()
            else:
                U, S, Vh = svd_of_product(u2, d2, np, keep=decide)
            s_list = [float(x) for x in S]
            new = chosen[0]
            keep = min(new, len(s_list))
            up_new = np.zeros((u2.shape[0], new), np.float64)
            down_new = np.zeros((new, d2.shape[1]), np.float64)
            up_new[:, :keep] = U[:, :keep] * S[:keep]
            down_new[:keep] = Vh[:keep]
            new_alpha = float(np.float32(scale) * np.float32(new))
            total, energy = sum(s_list), sum(v * v for v in s_list)
            kept = s_list[:keep]
            layers.append(LayerReport(block, old, new, new_alpha, sum(kept) / total if total else float("nan"),
                                      (sum(v * v for v in kept) / energy) ** 0.5 if energy else float("nan"),
                                      (s_list[0] / s_list[new - 1]) if new - 1 < len(s_list) and s_list[new - 1] else float("inf")))
            if conv:
                down_new, up_new = down_new.reshape(new, *down.shape[1:]), up_new.reshape(up.shape[0], new, 1, 1)
            out[down_key], out[up_key] = cast(down_new), cast(up_new)
            out[f"{block}.alpha"] = cast(np.array(new_alpha))
            if save_dtype == "bfloat16":
                bf16_keys.update((down_key, up_key, f"{block}.alpha"))
            if progress is not None:
                progress(n + 1, len(pairs))
    old_rank = max(x.old_rank for x in layers)
    meta = dict(header.metadata)
    comment = meta.get("ss_training_comment", "")
    if method is None:
        conv_desc = "" if rank == conv_rank else f" (conv: {conv_rank})"
        meta["ss_training_comment"] = f"dimension is resized from {old_rank} to {rank}{conv_desc}; {comment}"
        meta["ss_network_dim"] = str(rank)
        meta["ss_network_alpha"] = str(layers[-1].new_alpha)
    else:
        meta["ss_training_comment"] = f"Dynamic resize with {method}: {param} from {old_rank}; {comment}"
        meta["ss_network_dim"] = "Dynamic"
        meta["ss_network_alpha"] = "Dynamic"
    meta["sshs_model_hash"], meta["sshs_legacy_hash"] = _hashes(out, meta, bf16_keys)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(_serialize(out, meta, bf16_keys))
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)
    return ResizeReport(src, dst, old_rank, method, param, rank, conv_rank, time.perf_counter() - t0, dev, layers)


def _reader(f: Any, header: Any) -> Callable[[str], Any]:
    """key -> numpy array from an open safe_open(..., "np"); bf16 (which numpy lacks) is widened to float32
    from its raw bits, exactly."""
    import numpy as np

    with open(header.path, "rb") as raw:
        data_start = 8 + int.from_bytes(raw.read(8), "little")

    def get(key: str) -> Any:
        t = header.tensors[key]
        if t.dtype != "BF16":
            return f.get_tensor(key)
        bits = np.fromfile(header.path, dtype="<u2", count=t.numel, offset=data_start + t.start).astype(np.uint32) << 16
        return bits.view(np.float32).reshape(t.shape)

    return get


def _bf16_bits(a: Any) -> Any:
    """float -> bfloat16 bit patterns (uint16), rounding to nearest even like torch; NaN stays NaN."""
    import numpy as np

    u = np.asarray(a, np.float32).view(np.uint32).astype(np.uint64)
    bits = np.asarray((u + 0x7FFF + ((u >> 16) & 1)) >> 16, dtype=np.uint16)
    nan = np.isnan(np.asarray(a, np.float32))
    if nan.any():
        bits[nan] = 0x7FC0
    return bits


def _serialize(tensors: dict[str, Any], metadata: dict[str, str], bf16_keys: set[str] = frozenset()) -> bytes:
    """safetensors bytes; ``bf16_keys`` hold uint16 bit patterns and are declared BF16 in the header."""
    import json

    from safetensors.numpy import save

    data = save(tensors, metadata)
    if not bf16_keys:
        return data
    n = int.from_bytes(data[:8], "little")
    head = json.loads(data[8:8 + n])
    for key in bf16_keys:
        head[key]["dtype"] = "BF16"
    raw = json.dumps(head, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-len(raw) % 8)
    return len(raw).to_bytes(8, "little") + raw + data[8 + n:]


def _hashes(tensors: dict[str, Any], metadata: dict[str, str], bf16_keys: set[str] = frozenset()) -> tuple[str, str]:
    """sd-webui-additional-networks' model hashes over the tensors and the ss_* metadata (as kohya computes them)."""
    import hashlib

    data = _serialize(tensors, {k: v for k, v in metadata.items() if k.startswith("ss_")}, bf16_keys)
    n = int.from_bytes(data[:8], "little")
    return hashlib.sha256(data[8 + n:]).hexdigest(), hashlib.sha256(data[0x100000:0x110000]).hexdigest()[:8]
