"""Fixtures for engine tests: a workspace with a small captioned dataset and the stand-in sd-scripts checkout."""
from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

FAKE_SDSCRIPTS = Path(__file__).resolve().parent / "fake_sdscripts"


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


@pytest.fixture
def model_file(tmp_path):
    p = tmp_path / "models" / "sd15.safetensors"
    p.parent.mkdir()
    p.write_bytes(b"\x02\x00\x00\x00\x00\x00\x00\x00{}")
    return p


@pytest.fixture
def standin_kohya(ws):
    """Point the kohya engine at the stand-in checkout, launched without accelerate."""
    ws.settings.set("kohya_dir", str(FAKE_SDSCRIPTS))
    ws.settings.set("kohya_python", sys.executable)
    ws.settings.set("kohya_launcher", "python")
    return FAKE_SDSCRIPTS


FAKE_AITOOLKIT = Path(__file__).resolve().parent / "fake_aitoolkit"


@pytest.fixture
def standin_aitoolkit(ws):
    """Point the ai-toolkit engine at the stand-in checkout (tests/engines/fake_aitoolkit/run.py)."""
    ws.settings.set("aitoolkit_dir", str(FAKE_AITOOLKIT))
    ws.settings.set("aitoolkit_python", sys.executable)
    return FAKE_AITOOLKIT
