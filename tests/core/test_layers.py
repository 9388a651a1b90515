"""lora_nb's imports point one way, and have no cycles (read from the source with ``ast``, nothing imported).

The layers, lowest first (docs/architecture.md explains them):

    low      errors, files, paths, store, settings, ports, progress, ...  (no lora-nb imports above them)
    domain   captions, datasets, config, engines, tagging, lora, models   (take a small Protocol from ports,
                                                                           never the Workspace)
    jobs     the job system
    root     workspace.py: the composition root that wires them
    top      cli, tasks (job bodies run in subprocesses), demo, the package's __init__

Every import counts, also one inside a function and one under ``if TYPE_CHECKING``: a type-only
import is still an arrow between parts. Inside the domain layer only the arrows in DOMAIN_USES are
allowed. The one exception, for the cycle check only: a type-only import of a module of the SAME
package (``datasets/report.py`` naming ``Dataset`` for its hints) is not a dependency between parts.
"""
from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest

import lora_nb

PACKAGE_DIR = Path(lora_nb.__file__).parent

LAYERS: dict[str, set[str]] = {
    "low": {"errors", "_compat", "files", "paths", "store", "settings", "gc_pause", "families", "system", "ports", "progress", "nvml"},
    "domain": {"captions", "datasets", "config", "engines", "tagging", "lora", "models", "cloud"},
    "jobs": {"jobs"},
    "root": {"workspace"},
    "top": {"cli", "tasks", "demo", "__init__", "__main__"},
}
ORDER = ["low", "domain", "jobs", "root", "top"]
# Arrows allowed between domain packages (importer -> imported). Add one only on purpose, and in docs/architecture.md.
DOMAIN_USES: dict[str, set[str]] = {
    "datasets": {"captions", "config", "tagging"},   # ds.captions, bucket maths for the report, ds.tag()
    "engines": {"config"},                           # a TrainingConfig in, an engine's files out
    "models": {"lora"},                              # a model file's header and family
}


def _module_name(package_dir: Path, path: Path) -> str:
    parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def import_graph(package_dir: Path) -> dict[str, dict[str, bool]]:
    """{module: {imported module: type_only}} for the imports between modules of the package."""
    pkg = package_dir.name
    files = {_module_name(package_dir, p): p for p in package_dir.rglob("*.py")}
    graph: dict[str, dict[str, bool]] = {}
    for mod, path in files.items():
        is_pkg = path.name == "__init__.py"
        found: dict[str, bool] = {}

        def add(target: str, type_only: bool) -> None:
            while target not in files and "." in target:
                target = target.rsplit(".", 1)[0]
            if target in files and target != mod:
                found[target] = found.get(target, True) and type_only

        def visit(node: ast.AST, type_only: bool) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.If) and _is_type_checking(child):
                    for n in child.body:
                        visit_one(n, True)
                    for n in child.orelse:
                        visit_one(n, type_only)
                else:
                    visit_one(child, type_only)

        def visit_one(node: ast.AST, type_only: bool) -> None:
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.name == pkg or a.name.startswith(pkg + "."):
                        add(a.name, type_only)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = mod.split(".") if is_pkg else mod.split(".")[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                if target == pkg or target.startswith(pkg + "."):
                    for a in node.names:
                        sub = f"{target}.{a.name}"
                        add(sub if sub in files else target, type_only)
            visit(node, type_only)

        visit(ast.parse(path.read_text(encoding="utf-8"), str(path)), False)
        graph[mod] = found
    return graph


def unit(module: str) -> str:
    """The part a module belongs to: its top-level package or module under lora_nb (``__init__`` for the package itself)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def cycles(graph: dict[str, dict[str, bool]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), ignoring same-package type-only imports."""
    def counts(a: str, b: str, type_only: bool) -> bool:
        return not (type_only and a.rsplit(".", 1)[0] == b.rsplit(".", 1)[0])

    edges = {m: [t for t, to in ts.items() if counts(m, t, to)] for m, ts in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            strong(v)
    return out


def violations(graph: dict[str, dict[str, bool]], layers: dict[str, set[str]] = LAYERS,
               domain_uses: dict[str, set[str]] = DOMAIN_USES) -> list[str]:
    """One sentence per import against the layer order (and per module in no layer)."""
    layer_of = {u: name for name, units in layers.items() for u in units}
    out = []
    for mod in sorted(graph):
        a = unit(mod)
        if a not in layer_of:
            out.append(f"{mod} is in no layer: add '{a}' to LAYERS here and to docs/architecture.md.")
            continue
        for target, type_only in sorted(graph[mod].items()):
            b = unit(target)
            if a == b or b not in layer_of:
                continue
            la, lb = ORDER.index(layer_of[a]), ORDER.index(layer_of[b])
            kind = "a type-only import" if type_only else "an import"
            if lb > la:
                out.append(f"{mod} ({layer_of[a]}) has {kind} of {target} ({layer_of[b]}), a higher layer.")
            elif lb == la and layer_of[a] == "domain" and b not in domain_uses.get(a, set()):
                out.append(f"{mod} has {kind} of {target}: domain package '{a}' may not use '{b}' (DOMAIN_USES).")
            elif lb == la and layer_of[a] == "low" and lb == 0 and not _low_order_ok(a, b):
                out.append(f"{mod} has {kind} of {target}: inside the low layer '{a}' may not use '{b}'.")
    return out


# Inside the low layer: these are the foundations everything else there may use.
_LOW_BASE = {"errors", "_compat"}
_LOW_USES = {"paths": set(), "files": set(), "store": set(), "settings": {"store"}, "ports": {"store", "settings"},
             "progress": set(), "families": set(), "system": set(), "gc_pause": set()}


def _low_order_ok(a: str, b: str) -> bool:
    return b in _LOW_BASE or b in _LOW_USES.get(a, set())


# -- the project itself ----------------------------------------------------------------------------
def test_lora_nb_has_no_import_cycle():
    found = cycles(import_graph(PACKAGE_DIR))
    assert found == [], "import cycles in lora_nb (break them; see docs/architecture.md):\n" + "\n".join(" <-> ".join(c) for c in found)


def test_lora_nb_imports_follow_the_layer_order():
    found = violations(import_graph(PACKAGE_DIR))
    assert found == [], "imports against the layer order:\n" + "\n".join(found)


def test_no_domain_package_or_the_job_system_names_the_workspace():
    below_root = LAYERS["low"] | LAYERS["domain"] | LAYERS["jobs"]
    offenders = [m for m, ts in import_graph(PACKAGE_DIR).items() if "lora_nb.workspace" in ts and unit(m) in below_root]
    assert offenders == []


def test_the_core_never_imports_the_widgets_or_ipywidgets():
    bad = []
    for path in PACKAGE_DIR.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            bad += [f"{path.relative_to(PACKAGE_DIR)}: {n}" for n in names if n.split(".")[0] in ("ipywidgets", "anywidget", "voila") or n.startswith("lora_nb.widgets")]
    assert bad == []


# -- the checks themselves can fail ----------------------------------------------------------------
def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "lora_nb"
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text))
    return root


def test_a_cycle_through_a_lazy_import_is_found(tmp_path):
    root = _package(tmp_path, {
        "__init__.py": "",
        "workspace.py": "def jobs():\n    from .jobs.manager import JobManager\n",
        "jobs/__init__.py": "",
        "jobs/manager.py": "from ..workspace import jobs\n",
    })
    assert cycles(import_graph(root)) == [["lora_nb.jobs.manager", "lora_nb.workspace"]]


def test_a_type_only_import_of_the_workspace_from_a_domain_package_is_refused(tmp_path):
    root = _package(tmp_path, {
        "__init__.py": "",
        "workspace.py": "",
        "lora/__init__.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..workspace import Workspace\n",
    })
    assert violations(import_graph(root)) == [
        "lora_nb.lora (domain) has a type-only import of lora_nb.workspace (root), a higher layer."]
    assert cycles(import_graph(root)) == []


def test_an_unlisted_domain_arrow_and_a_module_in_no_layer_are_refused(tmp_path):
    root = _package(tmp_path, {
        "__init__.py": "",
        "tagging/__init__.py": "from lora_nb.datasets import Dataset\n",
        "datasets/__init__.py": "Dataset = object\n",
        "scheduler2.py": "",
    })
    found = violations(import_graph(root))
    assert "lora_nb.tagging has an import of lora_nb.datasets: domain package 'tagging' may not use 'datasets' (DOMAIN_USES)." in found
    assert "lora_nb.scheduler2 is in no layer: add 'scheduler2' to LAYERS here and to docs/architecture.md." in found


def test_a_same_package_type_only_back_reference_is_not_a_cycle_but_a_runtime_one_is(tmp_path):
    files = {"__init__.py": "", "datasets/__init__.py": "",
             "datasets/dataset.py": "def report():\n    from .report import build\n",
             "datasets/report.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .dataset import Dataset\n"}
    assert cycles(import_graph(_package(tmp_path / "a", files))) == []
    files["datasets/report.py"] = "from .dataset import report\n"
    assert cycles(import_graph(_package(tmp_path / "b", files))) == [["lora_nb.datasets.dataset", "lora_nb.datasets.report"]]


@pytest.mark.parametrize("line, expected", [("from .. import store", "lora_nb.store"),
                                            ("from ..captions.text import split_tags", "lora_nb.captions.text"),
                                            ("from ..captions import text", "lora_nb.captions.text"),
                                            ("import lora_nb.files as f", "lora_nb.files")])
def test_relative_and_absolute_imports_resolve_to_modules(tmp_path, line, expected):
    files = {"__init__.py": "", "store.py": "", "files.py": "", "captions/__init__.py": "", "captions/text.py": "",
             "datasets/__init__.py": "", "datasets/x.py": "def f():\n    " + line + "\n"}
    assert list(import_graph(_package(tmp_path, files))["lora_nb.datasets.x"]) == [expected]
