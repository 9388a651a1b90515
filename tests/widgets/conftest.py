"""Fixtures for the widget tests: panels are driven without a browser (set values, click, check state).

ipywidgets 8 needs no kernel or comm for this: widgets are plain traitlets objects here.
"""
from __future__ import annotations


import pytest


@pytest.fixture
def demo_ds(ws):
    """'demo': 30 small generated images in 10_lnbdemo/, each captioned 'lnbdemo, <colour> <shape>, <bg> background'."""
    from lora_nb.demo import make_dataset

    return make_dataset(ws, name="demo", n=30, size=(64, 64))
