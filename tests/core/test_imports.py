"""`import lora_nb` is fast, and the core never imports the UI stack."""
import ast
import subprocess
import sys
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "lora_nb"
FORBIDDEN = ("ipywidgets", "IPython", "voila", "anywidget", "traitlets", "ipykernel")


def test_core_sources_never_import_the_ui_stack():
    offenders = []
    for path in CORE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for n in names:
                if n.split(".")[0] in FORBIDDEN:
                    offenders.append(f"{path.relative_to(CORE.parent)}:{node.lineno} imports {n}")
    assert offenders == []


def _run(code: str) -> str:
    return subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True, check=True).stdout


def test_importing_everything_in_the_core_pulls_no_ui_module():
    code = (
        "import sys, pkgutil, importlib, lora_nb\n"
        "for m in pkgutil.walk_packages(lora_nb.__path__, 'lora_nb.'):\n"
        "    if m.name.startswith('lora_nb.widgets') or m.name.endswith('__main__'): continue\n"
        "    importlib.import_module(m.name)\n"
        f"print(sorted(k for k in sys.modules if k.split('.')[0] in {FORBIDDEN!r}))\n"
    )
    assert _run(code).strip() == "[]"


def test_import_is_fast_and_lazy():
    code = (
        "import time, sys; t = time.perf_counter(); import lora_nb; ws = lora_nb.Workspace.__name__\n"
        "print(time.perf_counter() - t)\n"
        "print(sorted(m for m in ('torch', 'onnxruntime', 'numpy', 'PIL', 'huggingface_hub', 'pydantic', 'safetensors') if m in sys.modules))\n"
    )
    best = min(float(_run(code).splitlines()[0]) for _ in range(3))
    heavy = _run(code).splitlines()[1]
    assert heavy == "[]", f"heavy modules imported eagerly: {heavy}"
    assert best < 0.3, f"import lora_nb took {best:.3f} s"
