"""Fixtures for the dataset tests (builders live in corpus.py)."""
from __future__ import annotations

import pytest


@pytest.fixture
def nothing_left(ws):
    """Asserts after the test body that no import left staging files behind."""
    yield
    assert [p.name for p in ws.tmp_dir.iterdir()] == []
