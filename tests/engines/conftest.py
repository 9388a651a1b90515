"""Fixtures for engine tests: a workspace with a small captioned dataset and the stand-in sd-scripts checkout."""
from __future__ import annotations

import io

import pytest


def _png(w: int, h: int, colour=(200, 30, 30)) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (w, h), colour).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def dataset(ws):
    """'alice': 4 captioned images in 5_alice (kohya repeats 5), like the fixture runs."""
    ds = ws.datasets.create("alice")
    ds.add_images([(f"img{i}.png", _png(64, 64, (40 * i, 80, 120))) for i in range(4)], subset="5_alice")
    for item in ds.images():
        ds.captions.set(item, f"alice, portrait, style {item.path.stem}")
    return ds
