"""Plain Python values as constants of this package's nodes inside a ``pyiron_workflow.Workflow``.

``wf.a = pwf.node(nodes.assyst, elements=["Cu", "Ag"], volume_relax=VolumeRelax())`` is what a
notebook writes. pyiron_workflow 0.20 refuses both halves, and offers no hook to change that:

- a constant must be strict JSON (``Node._establish_sources``); anything else (a frozen config
  instance, a tuple, ``Formulas``, a list of perturbations, executor instructions, a recorder)
  raises "expected a Port, a Node, or a JSONable constant". There is no registry or protocol for
  other values, and a constant's recipe (``flowrep.schemas.ConstantRecipe``) holds JSON only;
- a constant's type hint is ``type(value)``, so ``["Cu", "Ag"]`` is just ``list``. That passes a
  ``list[str]`` input only by an exception for unparameterised containers (the value is not
  checked at all), and fails every input hinted as a union (``list[str] | tuple[str, ...]``,
  ``float | dict[str, float] | ...``), a ``Literal``, or ``float`` given an ``int``. Rewording
  our hints does not help (``Sequence[str]`` fails too) short of ``Any``
  (upstream: https://github.com/pyiron/pyiron_workflow/issues/912).

So :func:`install` (run when ``assyst_nodes.nodes`` is imported; idempotent) patches three
places of pyiron_workflow, for the inputs of this package's nodes (their recipe references a
function or class of ``assyst_nodes``) only; other nodes keep pyiron_workflow's rules:

1. ``Node._establish_sources``: a value that is not JSON is queued like a JSON constant, as a
   :func:`python_value_recipe` (its pickle is made here, so an unpicklable value fails at once);
2. ``Constant.from_value``: when the workflow realises the queued constants, such a recipe
   becomes a small macro: two string constants, ``text`` (the value's type and ``repr``, to
   read) and ``pickled`` (its base64 pickle, to run; the convention of the project layer's
   ``settings_pickle``), into :func:`python_value`, whose result is the macro's output
   ``constant``. The workflow recipe stays JSON;
3. ``validation._resolve_edge_hints``: the source of an edge from a constant (JSON or Python
   value) is checked by its value against the target's hint (``typeguard``, every item of a
   container). A value that fits counts as being of the target's hint, so the edge is made and
   ``validate()`` reports it valid and complete; one that does not is given the hint of its
   value (e.g. ``list[int | str]``) and refused with pyiron_workflow's usual message.

This is the one module that touches pyiron_workflow's (and flowrep's) internals:
:func:`check_internals` (run by :func:`install`) refuses, with one error naming the supported
versions, a pyiron_workflow or flowrep it does not know or that lacks what is patched here.
Remove this module once pyiron_workflow checks constants by value and takes non-JSON values.
"""

from __future__ import annotations

import base64
import functools
import pickle
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import flowrep as fr
from pyiron_workflow import constant, dag, datatypes, validation, workflow_node
from typeguard import CollectionCheckStrategy, TypeCheckError, check_type

__all__ = [
    "SUPPORTED_VERSIONS",
    "check_internals",
    "install",
    "python_value",
    "python_value_recipe",
]

PACKAGE = __name__.split(".")[0]
"""Nodes whose recipe references this package get the extended constants."""

_REPR_LENGTH = 300
"""Characters of a value's ``repr`` kept in its payload (for reading only)."""


@fr.atomic("value")
def python_value(pickled: str, text: str) -> object:
    """The Python object whose base64 pickle is ``pickled``.

    The decoding node of a Python value constant (see :func:`python_value_recipe`).
    Unpickling runs code: trust a workflow you load, as for every function its recipe imports.

    Parameters
    ----------
    pickled : str
        The base64-encoded pickle of the value.
    text : str
        The value's type and ``repr`` (``module.Type: repr``, shortened), for reading only;
        unused.

    Returns
    -------
    object
        A fresh copy of the value on every run.
    """
    return pickle.loads(base64.b64decode(pickled))  # a fresh copy on every run


@functools.lru_cache(maxsize=128)
def _unpickled(pickled: str) -> object:
    """:func:`python_value`, cached: for type checks only, which do not change the value."""
    return pickle.loads(base64.b64decode(pickled))


def _pickle(value: object) -> str:
    """Base64 pickle of ``value``; cloudpickle (if installed) for what pickle refuses, e.g. a
    lambda."""
    try:
        data = pickle.dumps(value)
    except Exception as error:
        try:
            import cloudpickle

            data = cloudpickle.dumps(value)
        except Exception:
            raise TypeError(
                f"{value!r} cannot be a constant of a workflow: it does not pickle ({error}). "
                "Make it with a node instead, or pass it to pwf.run(...) directly"
            ) from error
    return base64.b64encode(data).decode()


def python_value_recipe(value: object) -> fr.schemas.WorkflowRecipe:
    """A workflow recipe with one output, ``constant``, giving ``value``.

    The recipe holds JSON only: the string constants ``pickled`` (base64 pickle) and ``text``
    (``module.Type: repr``, shortened), decoded by :func:`python_value`. The pickle is made
    here, so an unpicklable value fails at once.

    Parameters
    ----------
    value : object
        Any picklable value (cloudpickle, if installed, serves what pickle refuses, e.g. a
        lambda).

    Returns
    -------
    flowrep.schemas.WorkflowRecipe
        The recipe of the small macro that produces ``value``.

    Raises
    ------
    TypeError
        ``value`` does not pickle.
    """
    cls = type(value)
    shown = repr(value)
    if len(shown) > _REPR_LENGTH:
        shown = shown[: _REPR_LENGTH - 3] + "..."
    constants = {"pickled": _pickle(value), "text": f"{cls.__module__}.{cls.__qualname__}: {shown}"}
    return fr.schemas.WorkflowRecipe(
        inputs=[],
        outputs=[fr.schemas.ConstantRecipe.std_label],
        nodes={
            **{name: fr.schemas.ConstantRecipe(constant=v) for name, v in constants.items()},
            "decode": python_value.flowrep_recipe,
        },
        input_edges={},
        edges={
            fr.schemas.TargetHandle(node="decode", port=name): fr.schemas.SourceHandle(
                node=name, port=fr.schemas.ConstantRecipe.std_label
            )
            for name in constants
        },
        output_edges={
            fr.schemas.OutputTarget(port=fr.schemas.ConstantRecipe.std_label): (
                fr.schemas.SourceHandle(node="decode", port="value")
            )
        },
    )


@dataclass(frozen=True)
class _PendingValue:
    """A non-JSON value queued as a constant, until the workflow makes its node."""

    recipe: fr.schemas.WorkflowRecipe


def _is_ours(node: datatypes.Node) -> bool:
    """Whether ``node`` runs a function or class of this package."""
    if not isinstance(node, datatypes.StaticNode):
        return False  # a live Workflow: its recipe is rebuilt on every access
    name = getattr(node.recipe, "fully_qualified_name", None)
    return isinstance(name, str) and name.startswith(f"{PACKAGE}.")


def _is_python_value(node: datatypes.Node) -> bool:
    if not isinstance(node, dag.Macro):
        return False
    decode = node.recipe.nodes.get("decode")
    return (
        isinstance(decode, fr.schemas.AtomicRecipe)
        and decode.fully_qualified_name == python_value.flowrep_recipe.fully_qualified_name
        and isinstance(node.recipe.nodes.get("pickled"), fr.schemas.ConstantRecipe)
    )


def _constant_value(node: datatypes.Node) -> tuple[bool, object]:
    """``(True, value)`` for a constant or Python value node, else ``(False, None)``."""
    if isinstance(node, constant.Constant):
        return True, node.recipe.constant
    if _is_python_value(node):
        return True, _unpickled(node.recipe.nodes["pickled"].constant)
    return False, None


def _fits(value: object, hint: Any) -> bool | None:
    """Whether ``value`` is of ``hint`` (every item of a container checked; an ``int`` fits
    ``float``); ``None`` if the hint cannot be checked."""
    try:
        if isinstance(value, hint):
            return True
    except TypeError:
        pass  # a parameterised hint: typeguard checks it
    try:
        check_type(value, hint, collection_check_strategy=CollectionCheckStrategy.ALL_ITEMS)
    except TypeCheckError:
        return False
    except Exception:
        return None
    return True


def _hint_of(value: object) -> Any:
    """The type hint of ``value``, parameterised for lists, sets, tuples and dicts (e.g.
    ``list[int | str]``): what a refused constant is shown as."""
    kind = type(value)
    if kind in (list, set, frozenset) and value:
        return kind[_union(_hint_of(item) for item in value)]
    if kind is tuple and value:
        return tuple[*(_hint_of(item) for item in value)]
    if kind is dict and value:
        return dict[_union(map(_hint_of, value)), _union(map(_hint_of, value.values()))]
    return kind


def _union(hints: Iterable[Any]) -> Any:
    unique = list(dict.fromkeys(hints))
    return functools.reduce(lambda a, b: a | b, unique)


_ORIGINAL: dict[str, Any] = {}

SUPPORTED_VERSIONS: dict[str, tuple[str, ...]] = {
    "pyiron_workflow": ("0.20.",),
    "flowrep": ("0.6.",),
}
"""Version prefixes of the packages whose internals this module knows."""

_RELIED_ON: tuple[tuple[Any, str], ...] = (
    (datatypes.Node, "_establish_sources"),
    (datatypes.Node, "_reject_unknown_targets"),
    (datatypes.Node, "_pending_state_restored_on_error"),
    (datatypes, "StaticNode"),
    (constant.Constant, "from_value"),
    (validation, "_resolve_edge_hints"),
    (dag, "Macro"),
    (fr.tools, "is_jsonable"),
    (fr.schemas.ConstantRecipe, "std_label"),
)
"""The internals the patches use (object, attribute)."""


def check_internals(versions: dict[str, str] | None = None) -> None:
    """Raise ``ImportError`` if pyiron_workflow or flowrep is a version this module does not know.

    That is, a version not in :data:`SUPPORTED_VERSIONS`, or one that lacks an internal the
    patches rely on. Run by :func:`install`, so that there is never a patch on internals that
    changed.

    Parameters
    ----------
    versions : dict of str to str, optional
        Package name -> version of ``pyiron_workflow`` and ``flowrep``. Default: ``None``
        (the installed versions).

    Raises
    ------
    ImportError
        A version does not start with a prefix of :data:`SUPPORTED_VERSIONS` (or the package
        is missing from ``versions``), or an internal the patches rely on is missing; the
        message names the supported versions.
    """
    import importlib.metadata

    if versions is None:
        versions = {name: importlib.metadata.version(name) for name in SUPPORTED_VERSIONS}
    supported = "; ".join(
        f"{name} {' or '.join(p + 'x' for p in prefixes)}"
        for name, prefixes in SUPPORTED_VERSIONS.items()
    )
    for name, prefixes in SUPPORTED_VERSIONS.items():
        if not str(versions.get(name, "")).startswith(prefixes):
            raise ImportError(
                f"assyst_nodes.nodes patches internals of {supported}, but {name} "
                f"{versions.get(name)} is installed: install a supported version (pip install "
                "'pyiron_workflow>=0.20,<0.21' 'flowrep>=0.6,<0.7') or update "
                "assyst_nodes/nodes/constants.py for it"
            )
    missing = [
        f"{getattr(owner, '__name__', owner)}.{name}"
        for owner, name in _RELIED_ON
        if not hasattr(owner, name)
    ]
    if missing:
        raise ImportError(
            f"assyst_nodes.nodes relies on internals of {supported} that this installation "
            f"lacks: {', '.join(missing)}; install a supported version"
        )


def _establish_sources(self: datatypes.Node, **kwargs: Any) -> None:
    """``Node._establish_sources``, taking any picklable value for this package's nodes. It is
    queued with the JSON constants; the workflow makes its node when it takes this node in."""
    original = _ORIGINAL["establish_sources"]
    values = {
        label: value
        for label, value in kwargs.items()
        if not isinstance(value, datatypes.Port | datatypes.Node)
        and not fr.tools.is_jsonable(value)
    }
    if not values or not _is_ours(self):
        return original(self, **kwargs)
    self._reject_unknown_targets(values)
    pending = {label: _PendingValue(python_value_recipe(v)) for label, v in values.items()}
    with self._pending_state_restored_on_error():
        self._pending_constants.update(pending)
        original(self, **{k: v for k, v in kwargs.items() if k not in values})


def _from_value(
    cls: type[constant.Constant], value: Any, label: fr.schemas.Label | None = None
) -> datatypes.Node:
    """``Constant.from_value``, making a queued Python value into its value node."""
    if isinstance(value, _PendingValue):
        return dag.Macro(value.recipe, "constant" if label is None else label)
    return _ORIGINAL["from_value"](value, label)


def _resolve_edge_hints(
    edge: datatypes.EdgeTuple,
    owner: datatypes.StaticGraph | workflow_node.Workflow,
) -> tuple[Any, Any]:
    """``validation._resolve_edge_hints``, with a constant source checked by its value."""
    source_hint, target_hint = _ORIGINAL["resolve_edge_hints"](edge, owner)
    if target_hint is None or edge.source.node is None or edge.target.node is None:
        return source_hint, target_hint
    source = owner.get_node(edge.source.node)
    is_constant, value = _constant_value(source)
    python = is_constant and not isinstance(source, constant.Constant)
    if not is_constant or not (python or _is_ours(owner.get_node(edge.target.node))):
        return source_hint, target_hint
    fits = _fits(value, target_hint)
    if fits:
        return target_hint, target_hint
    if fits is False:
        return _hint_of(value), target_hint
    return (type(value) if python else source_hint), target_hint


def install() -> None:
    """Put the three patches in place (see the module docstring); calling it again does nothing.

    Run when ``assyst_nodes.nodes`` is imported.

    Raises
    ------
    ImportError
        From :func:`check_internals`: an unsupported pyiron_workflow or flowrep is installed.
    """
    if _ORIGINAL:
        return
    check_internals()
    _ORIGINAL["establish_sources"] = datatypes.Node._establish_sources
    _ORIGINAL["from_value"] = constant.Constant.from_value
    _ORIGINAL["resolve_edge_hints"] = validation._resolve_edge_hints
    datatypes.Node._establish_sources = _establish_sources  # type: ignore[method-assign]
    constant.Constant.from_value = classmethod(_from_value)  # type: ignore[method-assign,assignment]
    validation._resolve_edge_hints = _resolve_edge_hints
