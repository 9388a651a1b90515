"""Fixtures for the widget tests: panels are driven without a browser (set values, click, check state).

ipywidgets 8 needs no kernel or comm for this: widgets are plain traitlets objects here.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

FAKE_SDSCRIPTS = Path(__file__).resolve().parent.parent / "engines" / "fake_sdscripts"


@pytest.fixture
def demo_ds(ws):
    """'demo': 30 small generated images in 10_lnbdemo/, each captioned 'lnbdemo, <colour> <shape>, <bg> background'."""
    from lora_nb.demo import make_dataset

    return make_dataset(ws, name="demo", n=30, size=(64, 64))


@pytest.fixture
def standin_kohya(ws):
    """The kohya engine pointed at the STAND-IN sd-scripts checkout of tests/engines (replays recorded real output)."""
    ws.settings.set("kohya_dir", str(FAKE_SDSCRIPTS))
    ws.settings.set("kohya_python", sys.executable)
    ws.settings.set("kohya_launcher", "python")
    return FAKE_SDSCRIPTS


@pytest.fixture
def model_file(tmp_path):
    p = tmp_path / "models" / "sd15.safetensors"
    p.parent.mkdir()
    p.write_bytes(b"\x02\x00\x00\x00\x00\x00\x00\x00{}")
    return p
