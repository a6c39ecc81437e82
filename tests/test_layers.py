"""The layering of docs/design.md holds in the code: the core imports no pyiron, module imports
form no circle, every third-party import is a declared dependency, and each adapter for
another package's internals refuses a version it does not know."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import subprocess
import sys
import tomllib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "assyst_nodes"
UPPER_LAYERS = ("assyst_nodes.nodes", "assyst_nodes.project", "assyst_nodes.cli")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
CORE = sorted(m for m in MODULES if not m.startswith(UPPER_LAYERS) and m != "assyst_nodes.__main__")


def _imports(module: str, top_level_only: bool) -> set[str]:
    """Absolute names ``module`` imports (at module level only, or anywhere)."""
    path = MODULES[module]
    tree = ast.parse(path.read_text())
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    if top_level_only:  # also imports under module-level try/if blocks
        nodes = [n for stmt in tree.body for n in ast.walk(stmt)
                 if not isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)]
    typing_only = {
        id(node)
        for stmt in ast.walk(tree)
        if isinstance(stmt, ast.If) and "TYPE_CHECKING" in ast.unparse(stmt.test)
        for node in ast.walk(stmt)
    }  # imports under ``if TYPE_CHECKING:`` never run
    found: set[str] = set()
    for node in nodes:
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                stem = f"{base}.{node.module}" if node.module else base
                found.add(stem)
                found.update(f"{stem}.{alias.name}" for alias in node.names
                             if f"{stem}.{alias.name}" in MODULES)
            elif node.module:
                found.add(node.module)
    return found


def test_the_core_imports_neither_pyiron_nor_flowrep() -> None:
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in CORE)
        + "bad = sorted(m for m in ('pyiron_base', 'pyiron_workflow', 'flowrep') "
        "if m in sys.modules)\n"
        "print(bad)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]", (CORE, done.stdout)


RUNTIME_EDGES = {
    ("assyst_nodes.project.jobs", "assyst_nodes.project.recorder"): (
        "a pipeline job (AssystPipeline.run_static) runs the canonical run through a "
        "ProjectRecorder, which is made of the job classes: imported when the job runs"
    ),
}
"""The one import inside a function that points up a layer, with why."""


def test_imports_form_no_circle() -> None:
    """No circle of imports, counting those inside functions too (only the documented
    :data:`RUNTIME_EDGES` are left out)."""
    graph = {
        m: {i for i in _imports(m, top_level_only=False) if i in MODULES and i != m}
        - {m.rpartition(".")[0]}  # a package's __init__ runs first anyway
        for m in MODULES
    }
    for module in graph:
        graph[module] -= {target for source, target in RUNTIME_EDGES if source == module}
    for source, target in RUNTIME_EDGES:
        assert target in _imports(source, top_level_only=False), (source, target)  # still there
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            circle = [*path[path.index(module):], module]
            raise AssertionError(f"import circle: {' -> '.join(circle)}")
        if module in done:
            return
        for target in sorted(graph[module]):
            visit(target, [*path, module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])


OPTIONAL_IMPORTS = {
    "cloudpickle": "tried for a workflow constant that pickle refuses (nodes/constants.py)",
    "pyarrow": "pandas' parquet engine, only for a .parquet export",
    "ipywidgets": "only inside Jupyter (progress bars)",
}
"""Third-party modules imported lazily where present, with why they need not be declared."""

EXTRA_MODULES = {"mace": "mace-torch", "pyace": "python-ace", "sevenn": "sevenn"}
"""Modules of optional extras by the distribution that brings them, for an environment
without that extra (``importlib.metadata`` cannot name the distribution of a module that is
not installed)."""


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_third_party_import_is_a_declared_dependency() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {
        _normal(re.split(r"[<>=!\[; ]", requirement, maxsplit=1)[0])
        for requirement in [
            *project["dependencies"],
            *(r for extra in project["optional-dependencies"].values() for r in extra),
        ]
    }
    distributions = importlib.metadata.packages_distributions()
    undeclared = {}
    for module in MODULES:
        for name in _imports(module, top_level_only=False):
            top = name.split(".")[0]
            if top in sys.stdlib_module_names or top == "assyst_nodes" or top in OPTIONAL_IMPORTS:
                continue
            providers = {
                _normal(d) for d in distributions.get(top, [EXTRA_MODULES.get(top, top)])
            }
            if not providers & declared:
                undeclared.setdefault(top, module)
    assert undeclared == {}, f"imported but not declared in pyproject.toml: {undeclared}"


def test_the_pyiron_workflow_adapter_refuses_unknown_versions() -> None:
    from assyst_nodes.nodes import constants

    constants.check_internals()  # the installed versions are known
    with pytest.raises(ImportError, match=r"pyiron_workflow 0\.20\.x.*pyiron_workflow 0\.21\.0"):
        constants.check_internals({"pyiron_workflow": "0.21.0", "flowrep": "0.6.7"})
    with pytest.raises(ImportError, match=r"flowrep 0\.7\.1 is installed"):
        constants.check_internals({"pyiron_workflow": "0.20.3", "flowrep": "0.7.1"})


def test_the_pyiron_workflow_adapter_refuses_missing_internals(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pyiron_workflow import validation

    from assyst_nodes.nodes import constants

    monkeypatch.delattr(validation, "_resolve_edge_hints")
    with pytest.raises(ImportError, match=r"lacks: .*_resolve_edge_hints"):
        constants.check_internals()


def test_the_concurrent_futures_adapter_refuses_a_python_without_the_attributes() -> None:
    from assyst_nodes.runtime import futures_internals

    futures_internals._check()
    with pytest.raises(ImportError, match=r"ProcessPoolExecutor\._gone.*supported: Python 3\.11"):
        futures_internals._check(((ProcessPoolExecutor, "_gone"),))


def test_the_pyiron_base_adapter_refuses_missing_internals(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from assyst_nodes.project import pyiron_internals

    pyiron_internals.check_internals()
    monkeypatch.setattr(
        pyiron_internals, "_RELIED_ON",
        (("pyiron_base.storage.hdfio:ProjectHDFio", "_gone"),),
    )
    lacks = r"0\.15\.x that this installation lacks: .*ProjectHDFio\._gone"
    with pytest.raises(RuntimeError, match=lacks):
        pyiron_internals.check_internals()
    with pytest.raises(RuntimeError, match=r"pyiron_base 0\.16\.0 is installed"):
        pyiron_internals.check_version("0.16.0")


def test_module_paths_of_earlier_versions_give_the_moved_modules() -> None:
    import importlib
    import pickle

    from assyst_nodes.moved import MOVED

    for old, new in MOVED.items():
        module = importlib.import_module(old)
        targets = [importlib.import_module(name) for name in new]
        if len(targets) == 1:
            assert module is targets[0], old
        for target in targets:
            for name in getattr(target, "__all__", []):
                assert getattr(module, name) is getattr(target, name), (old, name)
    # a pickle of an earlier version names the class by its old module
    from assyst_nodes.stages.label import SinglePoint
    from assyst_nodes.stages.relax import VolumeRelax

    old_pickle = pickle.dumps(VolumeRelax(max_steps=7), protocol=0).replace(  # no lengths
        b"assyst_nodes.stages.relax", b"assyst_nodes.relaxations"
    )
    assert b"assyst_nodes.relaxations" in old_pickle
    assert pickle.loads(old_pickle) == VolumeRelax(max_steps=7)
    from assyst_nodes.relaxations import SinglePoint as OldSinglePoint  # now in stages.label

    assert OldSinglePoint is SinglePoint
    with pytest.raises(AttributeError, match=r"relaxations.*no_such_name"):
        importlib.import_module("assyst_nodes.relaxations").no_such_name  # noqa: B018
