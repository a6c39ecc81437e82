"""Every public function and class (``__all__`` of each module, defined there) documents its
parameters the numpydoc way, matching its signature: a ``Parameters`` section naming each
parameter once (``name : type``; ``a, b : type`` for several), none that it does not take, and
``optional`` or ``default ...`` in the type of each parameter that has a default."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import assyst_nodes

MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(assyst_nodes.__path__, "assyst_nodes.")
    if not info.name.endswith("__main__")
)
_SECTION = re.compile(r"^(\w[\w ]*)\n-{3,}$", re.M)
_ENTRY = re.compile(r"^(\*{0,2}\w+(?:\s*,\s*\*{0,2}\w+)*)\s*(?::\s*(.*))?$")


def public(module_name: str) -> Iterator[tuple[str, Any]]:
    """The functions and classes of ``__all__`` that ``module_name`` defines itself."""
    module = importlib.import_module(module_name)
    for name in getattr(module, "__all__", []):
        value = getattr(module, name, None)
        if (inspect.isfunction(value) or inspect.isclass(value)) and getattr(
            value, "__module__", None
        ) == module_name:
            yield name, value


def parameters(value: Callable[..., Any]) -> dict[str, inspect.Parameter]:
    """What a caller passes: a function's parameters, a dataclass's init fields, a class's own
    ``__init__`` parameters (none if it has no ``__init__`` of its own)."""
    if inspect.isclass(value):
        if getattr(value, "_is_protocol", False):
            return {}  # a typing.Protocol is never called: its __init__ is typing's
        if dataclasses.is_dataclass(value):
            fields = {f.name for f in dataclasses.fields(value) if f.init}
            signature = inspect.signature(value)
            return {k: p for k, p in signature.parameters.items() if k in fields}
        if "__init__" not in value.__dict__:
            return {}
        value = value.__init__
    signature = inspect.signature(value)
    found = {}
    for name, parameter in signature.parameters.items():
        if name in {"self", "cls"}:
            continue
        prefix = {inspect.Parameter.VAR_POSITIONAL: "*", inspect.Parameter.VAR_KEYWORD: "**"}
        found[prefix.get(parameter.kind, "") + name] = parameter
    return found


def documented(doc: str) -> dict[str, str] | None:
    """The ``Parameters`` section of ``doc``: name -> its type text (``None``: no section)."""
    sections = list(_SECTION.finditer(doc))
    for index, section in enumerate(sections):
        if section.group(1).strip() != "Parameters":
            continue
        end = sections[index + 1].start() if index + 1 < len(sections) else len(doc)
        entries: dict[str, str] = {}
        for line in doc[section.end():end].splitlines():
            if not line.strip() or line.startswith((" ", "\t")):
                continue
            match = _ENTRY.match(line.strip())
            assert match, f"not a numpydoc parameter line: {line!r}"
            for name in re.split(r"\s*,\s*", match.group(1)):
                assert name not in entries, f"{name} documented twice"
                entries[name] = match.group(2) or ""
        return entries
    return None


def problems(value: Any) -> list[str]:
    """What is wrong with the parameter section of ``value``'s docstring."""
    wanted = parameters(value)
    doc = inspect.getdoc(value) or ""
    if inspect.isclass(value) and not dataclasses.is_dataclass(value) and not documented(doc):
        doc = inspect.getdoc(value.__init__) or doc  # numpydoc allows either place
    found = documented(doc)
    if not wanted:
        return []
    if found is None:
        return [f"no Parameters section (takes {', '.join(wanted)})"]
    out = []
    missing = [name for name in wanted if name not in found]
    extra = [name for name in found if name not in wanted]
    if missing:
        out.append(f"undocumented: {', '.join(missing)}")
    if extra:
        out.append(f"documented but not taken: {', '.join(extra)}")
    for name, parameter in wanted.items():
        has_default = parameter.default is not inspect.Parameter.empty
        kind = found.get(name, "")
        if has_default and name in found and not re.search(r"\boptional\b|\bdefault\b", kind):
            out.append(f"{name} has a default: say 'optional' or 'default ...' in its type")
    return out


@pytest.mark.parametrize("module_name", MODULES)
def test_public_callables_document_their_parameters(module_name: str) -> None:
    wrong = {
        name: found for name, value in public(module_name) if (found := problems(value))
    }
    assert wrong == {}, f"{module_name}: {wrong}"


def test_the_check_finds_what_is_wrong() -> None:
    def good(a: int, b: float = 1.0, *rest: int, **extra: Any) -> None:
        """Do it.

        Parameters
        ----------
        a : int
            Atoms.
        b : float, default 1.0
            Length (Å).
        *rest : int
            More.
        **extra
            Options.

        Returns
        -------
        None
        """

    def bad(a: int, b: float = 1.0) -> None:
        """Do it.

        Parameters
        ----------
        a : int
            Atoms.
        b : float
            Length (Å).
        c : str
            Not taken.
        """

    def none(a: int) -> None:
        """Do it, with ``a``."""

    assert problems(good) == []
    assert problems(bad) == [
        "documented but not taken: c",
        "b has a default: say 'optional' or 'default ...' in its type",
    ]
    assert problems(none) == ["no Parameters section (takes a)"]
