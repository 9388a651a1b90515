"""Repository-wide pytest set-up for the notebooks run by nbval (``pytest`` collects notebooks/ too).

- Notebook kernels get a private workspace: LORA_NB_HOME points at a temporary folder for the session,
  so running the suite never touches ~/lora-nb.
- Cells tagged ``gpu`` run only where a CUDA GPU is usable (or LORA_NB_NOTEBOOK_GPU=1); cells tagged
  ``internet`` only with LORA_NB_NOTEBOOK_INTERNET=1. Everywhere else they are reported as skipped
  with the reason, and the notebooks are written so that the cells after them do not depend on them.
"""
from __future__ import annotations

import os
import shutil
import tempfile

import pytest


def _gpu_available() -> bool:
    if os.environ.get("LORA_NB_NOTEBOOK_GPU") == "1":
        return True
    return shutil.which("nvidia-smi") is not None and os.path.exists("/dev/nvidia0")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    cells = [item for item in items if hasattr(item, "cell") and item.__class__.__name__ == "IPyNbCell"]
    if not cells:
        return
    if not os.environ.get("LORA_NB_NOTEBOOK_HOME_SET"):
        home = tempfile.mkdtemp(prefix="lora-nb-notebooks-")
        os.environ["LORA_NB_HOME"] = home
        os.environ["LORA_NB_NOTEBOOK_HOME_SET"] = home
    gpu, internet = _gpu_available(), os.environ.get("LORA_NB_NOTEBOOK_INTERNET") == "1"
    for item in cells:
        tags = set(item.cell.get("metadata", {}).get("tags", []))
        if "gpu" in tags and not gpu:
            item.add_marker(pytest.mark.skip(reason="needs a CUDA GPU and an installed engine (tag: gpu)"))
        elif "internet" in tags and not internet:
            item.add_marker(pytest.mark.skip(reason="needs the internet (tag: internet; set LORA_NB_NOTEBOOK_INTERNET=1)"))
