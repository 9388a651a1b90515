"""Builders for the test corpus: real images (textured, so perceptual hashes mean something)
and ZIP archives, hostile ones included, all made here by the tests."""
from __future__ import annotations

import io
import zipfile


def image_bytes(w: int = 64, h: int = 48, fmt: str = "PNG", seed: int = 0, mode: str = "RGB", **save) -> bytes:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    # smooth random blobs: distinct seeds give clearly different images
    small = rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
    im = Image.fromarray(small, "RGB").resize((w, h), Image.BICUBIC)
    if mode != "RGB":
        im = im.convert(mode)
    buf = io.BytesIO()
    im.save(buf, fmt, **save)
    return buf.getvalue()


def zip_bytes(entries: dict[str, bytes], symlinks: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries.items():
            z.writestr(name, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o120777 << 16)
            z.writestr(info, target)
    return buf.getvalue()


