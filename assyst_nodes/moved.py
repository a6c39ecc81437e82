"""Module paths of earlier versions, kept working.

The stages, the runtime, the file formats and the command moved into packages
(:data:`MOVED`). Code, notebooks and pickles written before (a project's stored settings
name their classes by module, e.g. ``assyst_nodes.relaxations.VolumeRelax``) still import the
old paths: :func:`install` (run when ``assyst_nodes`` is imported) lets ``import`` find each old
name as the module it moved to, the very same module object (or, for a module whose contents
went to two modules, one that reads names from both). Nothing is defined twice.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
from collections.abc import Sequence
from typing import Any, Final

__all__ = ["MOVED", "install"]

MOVED: Final[dict[str, tuple[str, ...]]] = {
    "assyst_nodes.crystals": ("assyst_nodes.stages.sample",),
    "assyst_nodes.relaxations": ("assyst_nodes.stages.relax", "assyst_nodes.stages.label"),
    "assyst_nodes.perturbations": ("assyst_nodes.stages.perturb",),
    "assyst_nodes.filters": ("assyst_nodes.stages.filter",),
    "assyst_nodes.pyxtal_speedup": ("assyst_nodes.stages.pyxtal_speedup",),
    "assyst_nodes.mlip": ("assyst_nodes.calculators.mlip",),
    "assyst_nodes.dft": ("assyst_nodes.calculators.dft",),
    "assyst_nodes.fanout": ("assyst_nodes.runtime.fanout",),
    "assyst_nodes.deadline": ("assyst_nodes.runtime.deadline",),
    "assyst_nodes.executors": ("assyst_nodes.runtime.executors",),
    "assyst_nodes.progress": ("assyst_nodes.runtime.progress",),
    "assyst_nodes.extxyz": ("assyst_nodes.io.extxyz",),
    "assyst_nodes.fitting": ("assyst_nodes.io.fitting",),
    "assyst_nodes.run_settings": ("assyst_nodes.cli.settings",),
}
"""Old module name -> the module(s) its contents are in now."""


class _Merged(types.ModuleType):
    """An old module whose names now live in several modules: each read goes to the first
    of them that has the name."""

    def __init__(self, name: str, targets: Sequence[types.ModuleType]) -> None:
        super().__init__(name, f"moved to {', '.join(t.__name__ for t in targets)}")
        self.__dict__["_targets"] = tuple(targets)

    def __getattr__(self, name: str) -> Any:
        for target in self.__dict__["_targets"]:
            if hasattr(target, name):
                return getattr(target, name)
        raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")

    def __dir__(self) -> list[str]:
        return sorted({n for t in self.__dict__["_targets"] for n in dir(t)})


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds an old module name of :data:`MOVED` and loads it as the module(s) it moved to."""

    def find_spec(
        self, fullname: str, path: Any = None, target: Any = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        targets = [importlib.import_module(name) for name in MOVED[spec.name]]
        return targets[0] if len(targets) == 1 else _Merged(spec.name, targets)

    def exec_module(self, module: types.ModuleType) -> None:
        return None  # the module it moved to ran already


def install() -> None:
    """Let ``import`` find the old names (idempotent)."""
    if not any(isinstance(finder, _Finder) for finder in sys.meta_path):
        sys.meta_path.append(_Finder())
