"""The package list in pyproject.toml (there is no setup.py) names every package folder, and maps widgets/ into lora_nb."""
from __future__ import annotations

from pathlib import Path

from lora_nb._compat import tomllib

REPO = Path(__file__).resolve().parents[2]


def _config() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]


def test_every_package_folder_is_listed_and_nothing_else():
    listed = set(_config()["packages"])
    on_disk = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "lora_nb").rglob("__init__.py")}
    on_disk |= {"lora_nb.widgets" + "".join("." + x for x in p.parent.relative_to(REPO / "widgets").parts)
                for p in (REPO / "widgets").rglob("__init__.py")}
    assert listed - {"lora_nb._notebooks", "lora_nb._voila_templates"} == on_disk


def test_widgets_notebooks_and_template_are_mapped_by_package_dir_alone():
    cfg = _config()
    assert cfg["package-dir"] == {"lora_nb.widgets": "widgets", "lora_nb._notebooks": "notebooks",
                                  "lora_nb._voila_templates": "voila_templates"}
    assert not (REPO / "setup.py").exists()
    assert "dashboard.ipynb" in cfg["package-data"]["lora_nb._notebooks"]
