"""Shared fixtures: a fresh workspace per test, in a temporary folder."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))  # `import support`
SHARED = REPO.parent / "shared"
FIXTURES = SHARED / "fixtures"


@pytest.fixture
def ws(tmp_path, monkeypatch):
    """A new, empty Workspace under tmp_path (LORA_NB_HOME points at it, for child processes too)."""
    import lora_nb

    root = tmp_path / "ws"
    monkeypatch.setenv("LORA_NB_HOME", str(root))
    return lora_nb.Workspace(root)


@pytest.fixture
def fixtures_dir() -> Path:
    """../shared/fixtures (recorded real engine output). Tests that need it skip when it is absent."""
    if not FIXTURES.is_dir():
        pytest.skip("../shared/fixtures is not beside this checkout")
    return FIXTURES
