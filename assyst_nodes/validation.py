"""Checks of stage inputs that run before any work starts and name what is wrong."""

from __future__ import annotations

import functools
import numbers
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import numpy as np
from ase import Atoms

from .lineage import UUID

__all__ = [
    "MIN_CELL_VOLUME",
    "check_real",
    "periodic_cells",
    "refuse_keywords",
    "structure_list",
    "with_cells",
]

_Class = TypeVar("_Class", bound=type)

MIN_CELL_VOLUME = 1e-6
"""Smallest cell volume (Å^3) that counts as a cell; below it a structure has no (3D) cell."""


def check_real(name: str, value: object, valid: str = "a number") -> None:
    """``TypeError`` naming ``name``, ``value`` and ``valid`` unless ``value`` is a real number.

    Parameters
    ----------
    name : str
        How the message names the value, e.g. ``"Morse.r0"``.
    value : object
        The value checked: any :class:`numbers.Real` (int, float, numpy scalar) passes, a bool
        does not.
    valid : str, default "a number"
        What the message says the value must be, e.g. ``"a number > 0 (eV)"``.

    Raises
    ------
    TypeError
        ``"<name> must be <valid>, got <value> (<type>)"`` unless ``value`` is a real number.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be {valid}, got {value!r} ({type(value).__name__})")


def refuse_keywords(**advice: Callable[[Any], str]) -> Callable[[_Class], _Class]:
    """Class decorator: refuse keywords of ``advice``, saying what to write instead.

    For keywords the reference implementation (``assyst``) spells or means differently, so that
    its code copied verbatim stops with a clear error instead of a generic one (or a silently
    different result). The signature seen by ``inspect`` stays the class's own.

    Parameters
    ----------
    **advice : callable
        Keyword name -> a function of the value given that returns the advice (a str).

    Returns
    -------
    callable
        The decorator: it wraps the class's ``__init__`` in place and returns the class.

    Raises
    ------
    TypeError
        From the decorated class: ``cls(name=value)`` with a ``name`` of ``advice`` raises
        ``TypeError`` whose message is ``advice[name](value)`` (after the class name and the
        keyword).
    """

    def decorate(cls: _Class) -> _Class:
        init = cls.__init__

        @functools.wraps(init)
        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            for name, value in kwargs.items():
                if name in advice:
                    raise TypeError(f"{cls.__name__}({name}={value!r}): {advice[name](value)}")
            init(self, *args, **kwargs)

        cls.__init__ = __init__  # type: ignore[misc]
        return cls

    return decorate


def _short(value: object, width: int = 60) -> str:
    """``repr(value)`` cut to ``width`` characters."""
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def structure_list(structures: Iterable[Atoms]) -> list[Atoms]:
    """``structures`` as a list, or ``TypeError`` naming what is not an iterable of ``Atoms``.

    Parameters
    ----------
    structures : iterable of ase.Atoms
        The structures (consumed once if an iterator).

    Returns
    -------
    list of ase.Atoms
        The same structures (not copied), in order.

    Raises
    ------
    TypeError
        For a single ``Atoms``, a string, bytes or a mapping, a non-iterable, or naming the
        position of the first item that is not ``Atoms``.
    """
    if isinstance(structures, Atoms):
        raise TypeError("expected an iterable of ase.Atoms, got a single Atoms; wrap it in a list")
    if isinstance(structures, str | bytes | Mapping) or not isinstance(structures, Iterable):
        raise TypeError(
            "expected an iterable of ase.Atoms (e.g. a list), got a "
            f"{type(structures).__name__} ({_short(structures)})"
        )
    items = list(structures)
    for position, item in enumerate(items):
        if not isinstance(item, Atoms):
            raise TypeError(
                f"structure {position} is a {type(item).__name__} ({_short(item)}), expected "
                "ase.Atoms"
            )
    return items


def _name(structure: Atoms, position: int) -> str:
    """``structure 3 (Cu2, uuid ...)``: how messages name a structure of a list."""
    uid = structure.info.get(UUID)
    label = structure.get_chemical_formula() + (f", uuid {uid}" if uid is not None else "")
    return f"structure {position} ({label})"


def with_cells(structures: list[Atoms], stage: str) -> list[Atoms]:
    """``structures`` unchanged, or ``ValueError`` naming the first one without a 3D cell.

    For stages that change or scale the cell, which is meaningless without one.

    Parameters
    ----------
    structures : list of ase.Atoms
        The structures checked.
    stage : str
        Names the stage in the message.

    Returns
    -------
    list of ase.Atoms
        ``structures``, unchanged.

    Raises
    ------
    ValueError
        Naming the first structure whose cell volume is below :data:`MIN_CELL_VOLUME` Å^3
        (e.g. a molecule or cluster without a cell).
    """
    for position, structure in enumerate(structures):
        volume = abs(float(structure.cell.volume))
        if not volume >= MIN_CELL_VOLUME:
            raise ValueError(
                f"{_name(structure, position)} has no cell (volume {volume:.3g} Å^3, cell "
                f"lengths {np.round(structure.cell.lengths(), 6).tolist()} Å): {stage} changes "
                f"the cell, which needs three cell vectors spanning a volume >= {MIN_CELL_VOLUME} "
                "Å^3; give such a cell, or relax the positions only (Relax())"
            )
    return structures


def periodic_cells(structures: list[Atoms]) -> list[Atoms]:
    """``structures`` unchanged, or ``ValueError`` naming the first with an impossible lattice.

    Parameters
    ----------
    structures : list of ase.Atoms
        The structures checked.

    Returns
    -------
    list of ase.Atoms
        ``structures``, unchanged.

    Raises
    ------
    ValueError
        Naming the first structure that is periodic along an axis whose cell vectors are zero
        or linearly dependent (no periodic lattice exists).
    """
    for position, structure in enumerate(structures):
        pbc = np.asarray(structure.pbc, dtype=bool)
        cell = structure.cell.array
        if not pbc.any() or abs(np.linalg.det(cell)) >= MIN_CELL_VOLUME:
            continue  # nothing periodic, or a full 3D cell (the common case, checked fast)
        vectors = cell[pbc]
        scale = float(np.linalg.norm(vectors))
        if scale == 0.0 or np.linalg.matrix_rank(vectors, tol=1e-10 * scale) < len(vectors):
            raise ValueError(
                f"{_name(structure, position)} is periodic along pbc={pbc.tolist()} but its "
                f"cell vectors there, {np.round(vectors, 6).tolist()} Å, are zero or linearly "
                "dependent; give one independent, non-zero cell vector per periodic axis or "
                "set pbc=False for that axis"
            )
    return structures
