"""Sphinx configuration of the assyst_nodes documentation (Markdown pages through MyST).

Build: ``python -m sphinx -W --keep-going -b html docs docs/_build/html``. Nothing is fetched
from the network (no intersphinx) and no file is written into ``docs/`` except ``_build``.

The API pages name no modules themselves: a line ``% api-modules: GROUP`` is replaced, when the
page is read, by one section per module of that group found in the package folder (see
:func:`api_modules`), so a new module appears in the reference without editing the docs.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parent.parent
for folder in (ROOT, Path(__file__).resolve().parent):  # the package and _cli_reference.py
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from sphinx.util import logging  # noqa: E402

import assyst_nodes  # noqa: E402

logger = logging.getLogger(__name__)

project = "assyst_nodes"
author = "the assyst_nodes developers"
copyright = "the assyst_nodes developers"
release = version = assyst_nodes.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",  # numpydoc sections (Parameters, Returns, ...) in the docstrings
    "sphinxarg.ext",
]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

autodoc_default_options = {
    "members": True,
    "member-order": "bysource",
    "show-inheritance": True,
    "ignore-module-all": True,
}
autodoc_typehints = "signature"
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
autodoc_preserve_defaults = True
autodoc_class_signature = "mixed"

# "--option" must not become an en dash, nor 'quotes' curly: the pages are full of commands
smartquotes = False
sphinxarg_full_subcommand_name = True

html_theme = "alabaster"
html_title = f"assyst_nodes {release}"
html_theme_options = {
    "description": "ASSYST training sets for machine-learning interatomic potentials",
    "fixed_sidebar": True,
    "page_width": "1280px",
    "sidebar_width": "230px",
    "body_max_width": "none",
}
html_sidebars = {"**": ["about.html", "navigation.html", "searchbox.html"]}

# -- the API pages: every module of a group, found in the package --------------------------------

API_GROUPS = {
    # group: [(package, modules first in this order; any other module of the package follows)]
    "core": [
        ("assyst_nodes.stages", ["sample", "relax"]),
        ("assyst_nodes.stages.perturb", ["base", "rattle", "stretch", "apply"]),
        ("assyst_nodes.stages.filter", ["base", "geometry", "results", "apply"]),
        ("assyst_nodes.stages", ["label", "combine", "pyxtal_speedup"]),
        ("assyst_nodes.stages.fit", ["base", "data", "ace", "mace"]),
        ("assyst_nodes.stages.validate", ["suite", "compute", "reference", "result"]),
        ("assyst_nodes.calculators", []),
        (
            "assyst_nodes",
            ["defaults", "pipeline", "lineage", "random", "reports", "provenance"],
        ),
        ("assyst_nodes.plot", ["features", "figures", "drawing", "validation"]),
        ("assyst_nodes.io", ["extxyz", "fitting"]),
        ("assyst_nodes.runtime", ["fanout", "executors", "deadline", "progress"]),
    ],
    "nodes": [
        (
            "assyst_nodes.nodes",
            ["stages", "fitting", "configs", "macro", "executors", "recording"],
        )
    ],
    "project": [
        (
            "assyst_nodes.project",
            [
                "recorder", "operations", "binding", "database", "jobs", "job_input",
                "queries", "export", "rerun", "index", "layout",
            ],
        ),
        ("assyst_nodes.project.store", ["columns", "write", "read", "table"]),
    ],
    "cli": [("assyst_nodes.cli", ["parser", "settings", "commands"])],
}
NOT_DOCUMENTED = {"__main__"}
"""Modules documented on no API page."""
PACKAGE_PAGES = {
    "assyst_nodes.calculators",
    "assyst_nodes.cli",
    "assyst_nodes.stages.filter",
    "assyst_nodes.stages.fit",
    "assyst_nodes.stages.perturb",
    "assyst_nodes.plot",
    "assyst_nodes.project.store",
}
"""Packages whose ``__init__`` holds code of its own: documented before their modules."""


def api_modules(group: str) -> list[str]:
    """Full names of the modules documented on the API page of ``group``: each package's
    modules (subpackages are groups of their own), named ones first."""
    names: list[str] = []
    for package_name, first in API_GROUPS[group]:
        package = importlib.import_module(package_name)
        found = [
            info.name
            for info in pkgutil.iter_modules(package.__path__)
            if not info.ispkg and not info.name.startswith("_") and info.name not in NOT_DOCUMENTED
        ]
        unknown = [name for name in first if name not in found]
        if unknown:
            raise ValueError(
                f"docs/conf.py API_GROUPS[{group!r}] names missing modules {unknown} of "
                f"{package_name}"
            )
        if package_name in PACKAGE_PAGES:
            names.append(package_name)
        ordered = first + sorted(name for name in found if name not in first)
        names.extend(
            f"{package_name}.{name}" for name in ordered if f"{package_name}.{name}" not in names
        )
    return names


def _module_sections(group: str) -> str:
    """MyST text: a heading and an ``automodule`` block per module of ``group``."""
    parts = []
    for name in api_modules(group):
        # autodoc writes reStructuredText, so its directive must sit in an eval-rst block
        parts.append(f"## `{name}`\n\n```{{eval-rst}}\n.. automodule:: {name}\n```\n")
    return "\n".join(parts)


def _fill_api_pages(app: Any, docname: str, source: list[str]) -> None:
    """``source-read`` hook: replace ``% api-modules: GROUP`` lines by the module sections."""
    lines = source[0].split("\n")
    for position, line in enumerate(lines):
        if line.startswith("% api-modules:"):
            lines[position] = _module_sections(line.partition(":")[2].strip())
    source[0] = "\n".join(lines)


def _import_target(target: str) -> object | None:
    """The object a dotted ``assyst_nodes...`` name names, ``None`` if it names nothing."""
    parts = target.split(".")
    for split in range(len(parts), 0, -1):
        try:
            value: object = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        try:
            for name in parts[split:]:
                value = getattr(value, name)
        except AttributeError:
            return None
        return value
    return None


def _missing_reference(app: Any, env: Any, node: Any, contnode: Any) -> Any:
    """``missing-reference`` hook for Python references to ``assyst_nodes.*``.

    A re-exported name (``assyst_nodes.nodes.sample``, ``assyst_nodes.project.history``) links
    to where the object is defined and documented; a name that is documented nowhere is a
    warning, so that ``-W`` fails after a rename. Type variables are left as plain text, and so
    are other packages' names (ase, numpy, ...): no intersphinx, nothing is fetched.
    """
    target = str(node.get("reftarget", ""))
    if node.get("refdomain") != "py" or not target.startswith("assyst_nodes."):
        return None
    value = _import_target(target)
    if isinstance(value, TypeVar):
        return None
    module = getattr(value, "__module__", None)
    qualname = getattr(value, "__qualname__", None)
    if isinstance(module, str) and isinstance(qualname, str):
        canonical = f"{module}.{qualname}"
        if canonical != target:
            alias = node.deepcopy()
            alias["reftarget"] = canonical
            found = env.get_domain("py").resolve_xref(
                env, node["refdoc"], app.builder, node["reftype"], canonical, alias, contnode
            )
            if found is not None:
                return found
    logger.warning("reference to %s, which is not documented", target, location=node, type="ref")
    return None


def setup(app: Any) -> dict[str, object]:
    app.connect("source-read", _fill_api_pages)
    app.connect("missing-reference", _missing_reference)
    return {"parallel_read_safe": True}
