"""The docstring examples of the panels run and print what they say (tests/core skips lora_nb.widgets)."""
from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

import lora_nb.widgets

MODULES = sorted(p.stem for p in Path(lora_nb.widgets.__file__).parent.glob("*.py") if p.stem != "__init__")


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, tmp_path, monkeypatch):
    monkeypatch.setenv("LORA_NB_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    module = importlib.import_module(f"lora_nb.widgets.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) in lora_nb.widgets.{name} failed"
