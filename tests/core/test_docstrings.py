"""Every docstring example in lora_nb runs and prints what it says (docstrings with a runnable example
are part of the style; this keeps them true). Examples that build workspaces use temp folders."""
from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import lora_nb

MODULES = sorted(m.name for m in pkgutil.walk_packages(lora_nb.__path__, "lora_nb.")
                 if not m.name.startswith("lora_nb.widgets") and not m.name.endswith("__main__"))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, tmp_path, monkeypatch):
    monkeypatch.setenv("LORA_NB_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) in {name} failed (run: python -m doctest -v on it)"
