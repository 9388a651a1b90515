"""A dataset of tiny real PNGs with given caption files (raw bytes, so encodings can be tested)."""
from __future__ import annotations

import io

import pytest

_PNG: bytes | None = None


def tiny_png() -> bytes:
    global _PNG
    if _PNG is None:
        from PIL import Image

        buf = io.BytesIO()
        Image.new("RGB", (8, 8), "gray").save(buf, "PNG")
        _PNG = buf.getvalue()
    return _PNG


@pytest.fixture
def make_ds(ws):
    """make_ds({"a": b"1girl, smile", "b": None}) -> Dataset with a.png (+a.txt), b.png (no caption).

    Caption bytes are written directly (not through the importer), exactly as given."""
    counter = iter(range(1000))

    def make(captions: dict[str, bytes | str | None], ext: str = ".txt"):
        ds = ws.datasets.create(f"d{next(counter)}")
        for stem, cap in captions.items():
            (ds.path / f"{stem}.png").write_bytes(tiny_png())
            if cap is not None:
                (ds.path / f"{stem}{ext}").write_bytes(cap.encode("utf-8") if isinstance(cap, str) else cap)
        return ds

    return make
