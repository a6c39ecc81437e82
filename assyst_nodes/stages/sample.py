"""Sampling stage: random symmetric crystals from pyxtal for requested formulas and space groups.

``sample(formulas, spacegroups, ...)`` walks the grid of stoichiometries x symmetry groups and
yields one :class:`ase.Atoms` per grid point that pyxtal can fill. Each grid point draws from its
own random stream, derived from the base seed and (formula, group), so a structure does not
depend on which other grid points were drawn, in which order, or by how many workers.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal, Protocol, Self, overload

import numpy as np
import spglib
from ase import Atoms
from ase.data import atomic_numbers

from ..lineage import (
    REPEAT,
    REQUESTED_SPACEGROUP,
    RNG_SEED,
    SPACEGROUP,
    SYMMETRY,
    geometry_digest,
    update_uuid,
)
from ..random import RngLike, derive_seed, resolve_seed, stream
from ..reports import WORKER_LOST, Drop, StageReport
from ..runtime.deadline import TimeLimit, TimeLimitExceeded
from ..runtime.fanout import Execution, check_resubmit, check_workers, in_order, process_pool, where
from ..runtime.futures_internals import executor_workers
from ..runtime.progress import progress_bar
from . import pyxtal_speedup

__all__ = [
    "MAX_GROUP",
    "TOLERANCE_PROTOTYPES",
    "Formulas",
    "PointCache",
    "detect_spacegroup",
    "pyxtal",
    "sample",
]

log = logging.getLogger(__name__)

MAX_GROUP = {0: 56, 1: 75, 2: 80, 3: 230}
"""Largest group number per dimension: point (0), rod (1), layer (2) and space (3) groups.

pyxtal names 58 point groups but accepts numbers only up to 56 (57, 58 are C*, C*h)."""

TOLERANCE_PROTOTYPES = ("metallic", "atomic", "molecular", "vdW")
"""Names of pyxtal's built-in distance tolerance tables."""

SYMPREC = 1e-3
"""Distance tolerance (Å) of the space-group detection."""

Formula = tuple[tuple[str, int], ...]


_COMPOSITION = "a composition such as {'Cu': 2, 'Ag': 1} or pairs [('Cu', 2), ('Ag', 1)]"


def _check_formula(formula: Mapping[str, int] | Iterable[tuple[str, int]]) -> Formula:
    """``formula`` as ``((element, count), ...)``; ``TypeError`` unless it is a mapping or
    (element, count) pairs, ``ValueError`` naming an unknown element or a bad count."""
    if isinstance(formula, str | bytes) or not isinstance(formula, Mapping | Iterable):
        raise TypeError(f"expected {_COMPOSITION}, got {formula!r}")
    items = tuple(formula.items()) if isinstance(formula, Mapping) else tuple(formula)
    for item in items:
        if isinstance(item, str | bytes) or not (isinstance(item, tuple | list) and len(item) == 2):
            raise TypeError(f"expected {_COMPOSITION}, got item {item!r} in {formula!r}")
    seen = set()
    for element, count in items:
        if not isinstance(element, str) or element not in atomic_numbers or element == "X":
            raise ValueError(
                f"unknown element symbol {element!r} in formula {list(items)}; valid: the "
                "chemical symbols H to Og, e.g. 'Cu', 'Ag'"
            )
        if element in seen:
            raise ValueError(f"element {element!r} occurs twice in formula {items}")
        seen.add(element)
        if isinstance(count, bool) or not isinstance(count, int | np.integer) or count < 0:
            raise ValueError(
                f"atom count of {element} must be an int >= 0, got {count!r} in {dict(items)}"
            )
    return tuple((str(e), int(n)) for e, n in items)


def _formula_string(formula: Formula) -> str:
    """``(("Cu", 2), ("Ag", 1))`` -> ``"Cu2Ag1"`` (element order kept)."""
    return "".join(f"{element}{count}" for element, count in formula)


@dataclass(frozen=True)
class Formulas(Sequence[dict[str, int]]):
    """An immutable, hashable sequence of compositions ``{element: count}``.

    Element order inside a composition is kept (it is the species order handed to pyxtal) and
    counts may be 0 (ignored by :func:`sample`, removed by :meth:`trim`).

    - ``Formulas.range("Cu", 1, 4)`` -> Cu1, Cu2, Cu3 (arguments of the builtin ``range``;
      several elements give all combinations);
    - ``a + b`` concatenates; ``a | b`` pairs item by item (shortest length), ``a * b`` takes all
      combinations; ``|`` and ``*`` need disjoint elements.

    Indexing gives a composition as a new ``dict`` (a slice gives ``Formulas``); ``str()``
    lists the compositions as ``Cu2Ag1, Cu1`` (element order kept).

    Parameters
    ----------
    atoms : iterable of mapping or iterable of (str, int) pairs, default ()
        The compositions, each a mapping ``{element: count}`` such as ``{"Cu": 2, "Ag": 1}``
        or ``(element, count)`` pairs such as ``[("Cu", 2), ("Ag", 1)]``; a single mapping is
        taken as one composition. Elements are chemical symbols (``"H"`` to ``"Og"``), each
        at most once per composition; counts are ints >= 0, atoms in pyxtal's conventional
        cell. Stored as the attribute ``atoms``, a tuple of ``((element, count), ...)``.

    Raises
    ------
    TypeError
        ``atoms`` is a string or not iterable, or a composition is neither a mapping nor
        ``(element, count)`` pairs.
    ValueError
        An unknown element symbol, an element twice in one composition, or a count that is
        not an int >= 0.
    """

    atoms: tuple[Formula, ...] = ()

    def __init__(
        self, atoms: Iterable[Mapping[str, int] | Iterable[tuple[str, int]]] = ()
    ) -> None:
        if isinstance(atoms, Mapping):
            atoms = (atoms,)
        if isinstance(atoms, str | bytes) or not isinstance(atoms, Iterable):
            raise TypeError(
                f"Formulas takes a list of compositions such as [{{'Cu': 2, 'Ag': 1}}] (or use "
                f"Formulas.range('Cu', 1, 5)), got {atoms!r}"
            )
        object.__setattr__(self, "atoms", tuple(_check_formula(f) for f in atoms))

    @classmethod
    def range(cls, elements: str | Iterable[str], *range_args: int) -> Self:
        """Compositions with counts ``range(*range_args)`` of each element (all combinations).

        Parameters
        ----------
        elements : str or iterable of str
            One element symbol, or several (at least one, each once); several give every
            combination of their counts, in the order of ``elements``.
        *range_args : int
            The arguments of the builtin ``range`` (``stop``, or ``start, stop[, step]``) for
            the count of each element; counts must be >= 0.

        Returns
        -------
        Formulas
            E.g. ``Formulas.range("Cu", 1, 4)`` -> Cu1, Cu2, Cu3, and
            ``Formulas.range(("Cu", "Ag"), 0, 3)`` -> every CuxAgy with x, y in 0..2.

        Raises
        ------
        ValueError
            ``elements`` is empty, or an element is unknown or given twice.
        """
        if isinstance(elements, str):
            return cls({elements: n} for n in range(*range_args))
        parts = [cls.range(element, *range_args) for element in elements]
        if not parts:
            raise ValueError("Formulas.range needs at least one element")
        result = parts[0]
        for part in parts[1:]:
            result = result * part
        return result

    @property
    def elements(self) -> frozenset[str]:
        """All elements that occur in any composition."""
        return frozenset(element for formula in self.atoms for element, _ in formula)

    def _check_disjoint(self, other: Formulas, operator: str) -> None:
        if not isinstance(other, Formulas):
            raise TypeError(f"Formulas {operator} needs Formulas, got {type(other).__name__}")
        shared = self.elements & other.elements
        if shared:
            raise ValueError(
                f"Formulas {operator} needs disjoint element sets; both contain {sorted(shared)}"
            )

    def __add__(self, other: Formulas) -> Formulas:
        if not isinstance(other, Formulas):
            return NotImplemented
        return type(self)(self.atoms + other.atoms)

    def __or__(self, other: Formulas) -> Formulas:
        self._check_disjoint(other, "|")
        return type(self)(a + b for a, b in zip(self.atoms, other.atoms, strict=False))

    def __mul__(self, other: Formulas) -> Formulas:
        self._check_disjoint(other, "*")
        return type(self)(a + b for a, b in itertools.product(self.atoms, other.atoms))

    @overload
    def __getitem__(self, index: int) -> dict[str, int]: ...
    @overload
    def __getitem__(self, index: slice) -> Formulas: ...
    def __getitem__(self, index: int | slice) -> dict[str, int] | Formulas:
        if isinstance(index, slice):
            return type(self)(self.atoms[index])
        return dict(self.atoms[index])

    def __len__(self) -> int:
        return len(self.atoms)

    def __repr__(self) -> str:
        return f"Formulas({[dict(f) for f in self.atoms]})"

    def __str__(self) -> str:
        return ", ".join(_formula_string(f) for f in self.atoms)

    def trim(self, min_atoms: int = 1, max_atoms: int | None = None) -> Formulas:
        """Only the compositions with ``min_atoms <= total atoms <= max_atoms``.

        Parameters
        ----------
        min_atoms : int, default 1
            Fewest atoms (the sum of the counts) a composition may have.
        max_atoms : int or None, optional
            Most atoms a composition may have. Default: none (no upper limit).

        Returns
        -------
        Formulas
            The compositions within the window, in their order.

        Raises
        ------
        ValueError
            ``min_atoms > max_atoms``.
        """
        if max_atoms is not None and min_atoms > max_atoms:
            raise ValueError(f"min_atoms ({min_atoms}) must be <= max_atoms ({max_atoms})")
        return type(self)(
            f
            for f in self.atoms
            if sum(n for _, n in f) >= min_atoms
            and (max_atoms is None or sum(n for _, n in f) <= max_atoms)
        )


@lru_cache(maxsize=1024)
def _group(number: int, dim: int) -> Any:
    from pyxtal.symmetry import Group

    return Group(number, dim=dim)


def _is_int(value: object) -> bool:
    """Whether ``value`` is an integer (Python or numpy) and not a bool."""
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _check_dim(dim: object) -> None:
    if not _is_int(dim) or dim not in MAX_GROUP:
        raise ValueError(
            f"dim must be one of 0, 1, 2, 3 (cluster, rod, layer, crystal), got {dim!r}"
        )


def _check_group(group: int, dim: int) -> int:
    _check_dim(dim)
    if not _is_int(group):
        raise TypeError(f"symmetry group must be an int, got {group!r}")
    if not 1 <= group <= MAX_GROUP[dim]:
        raise ValueError(
            f"symmetry group {group} out of range: dim={dim} allows 1..{MAX_GROUP[dim]}"
        )
    return int(group)


def detect_spacegroup(structure: Atoms, symprec: float = SYMPREC) -> int:
    """The space group number of ``structure``'s periodic arrangement (spglib, ``symprec`` Å).

    Parameters
    ----------
    structure : ase.Atoms
        The structure; its cell, atomic numbers and scaled positions (wrapped into the cell)
        are handed to spglib. Not modified.
    symprec : float, default SYMPREC
        The distance tolerance of the detection (Å), spglib's ``symprec``; ``SYMPREC`` is
        1e-3 Å.

    Returns
    -------
    int
        The space group number (1 to 230); 0 when ``structure`` has no 3D cell (volume below
        1e-9 Å^3) or spglib finds none.
    """
    if abs(structure.cell.volume) < 1e-9:
        return 0
    with warnings.catch_warnings():  # spglib >= 2.5 warns about its legacy error handling
        warnings.simplefilter("ignore", DeprecationWarning)
        dataset = spglib.get_symmetry_dataset(
            (structure.cell.array, structure.get_scaled_positions(wrap=True), structure.numbers),
            symprec=symprec,
        )
    return 0 if dataset is None else int(dataset.number)


def _tolerance_matrix(
    tolerance: str | float | Mapping[str, float] | Any, elements: Iterable[str]
) -> Any:
    """A pyxtal ``Tol_matrix`` from a prototype name or element radii (Å; pair r_i + r_j)."""
    from pyxtal.tolerance import Tol_matrix

    if isinstance(tolerance, str):
        if tolerance not in TOLERANCE_PROTOTYPES:
            raise ValueError(
                f"unknown tolerance prototype {tolerance!r}; valid: {list(TOLERANCE_PROTOTYPES)} "
                "or element radii (a number, a dict or a DistanceFilter)"
            )
        return Tol_matrix(prototype=tolerance)
    from .filter import DistanceFilter

    if not isinstance(tolerance, DistanceFilter):
        if not isinstance(tolerance, int | float | Mapping):
            raise TypeError(
                f"tolerance must be one of {list(TOLERANCE_PROTOTYPES)}, a number, a dict of "
                f"element radii or a DistanceFilter, got {tolerance!r}"
            )
        tolerance = DistanceFilter(tolerance)
    elements = sorted(set(elements))
    pairs = [
        (a, b, tolerance.radius(a) + tolerance.radius(b))
        for a, b in itertools.combinations_with_replacement(elements, 2)
    ]
    return Tol_matrix(*pairs, prototype="atomic")


def _draw(
    group: int,
    species: Sequence[str],
    num_ions: Sequence[int],
    dim: int,
    seed: int,
    pyxtal_kwargs: Mapping[str, Any],
) -> Atoms:
    from pyxtal import pyxtal as PyXtal
    from pyxtal.msg import Comp_CompatibilityError

    pyxtal_speedup.install()  # same crystals, about 3x faster (see the module)
    crystal = PyXtal()
    try:
        crystal.from_random(
            dim=dim,
            group=group,
            species=list(species),
            numIons=list(num_ions),
            random_state=np.random.default_rng(seed),
            **pyxtal_kwargs,
        )
    except Comp_CompatibilityError as error:
        composition = dict(zip(species, num_ions, strict=True))
        raise ValueError(
            f"group {group} (dim={dim}) is incompatible with {composition}: {error}"
        ) from None
    structure = _tidy(crystal.to_ase())
    formula = _formula_string(tuple(zip(species, num_ions, strict=True)))
    structure.info.update(
        {
            SYMMETRY: group,
            REQUESTED_SPACEGROUP: group,
            SPACEGROUP: detect_spacegroup(structure),
            REPEAT: 0,
            RNG_SEED: seed,
        }
    )
    # the geometry is part of the key: settings that do not enter the seed (tolerance, pyxtal
    # keywords) change the structure, and distinct structures must not share a uuid
    key = (f"{formula}@{group}/{dim}#{seed}", geometry_digest(structure))
    return update_uuid(structure, step="pyxtal", key=key)



def _tidy(structure: Atoms) -> Atoms:
    """``structure`` with cell components below 1e-12 of the largest set to exactly zero
    (pyxtal leaves ~1e-16 Å from cos(90°) in orthogonal cells), the fractional positions kept,
    and the atoms wrapped into the cell, so a cubic cell's positions are exactly in [0, 1)."""
    cell = structure.cell.array.copy()
    cell[np.abs(cell) < 1e-12 * np.abs(cell).max()] = 0.0
    scaled = structure.get_scaled_positions(wrap=True)
    structure.set_cell(cell, scale_atoms=False)
    structure.set_scaled_positions(scaled)
    structure.wrap()
    return structure

def pyxtal(
    group: int,
    species: Sequence[str],
    num_ions: Sequence[int],
    dim: int = 3,
    rng: RngLike = None,
    **pyxtal_kwargs: Any,
) -> Atoms:
    """One random crystal of symmetry ``group`` with ``num_ions[i]`` atoms of ``species[i]``.

    The structure has ``step="pyxtal"``, a fresh lineage and ``info["rng_seed"]``: the same
    call with ``rng=info["rng_seed"]`` gives the same structure bit for bit.

    Parameters
    ----------
    group : int
        The symmetry group number, 1 to ``MAX_GROUP[dim]`` (a space group for ``dim=3``).
    species : sequence of str
        Element symbols, each once, in the order handed to pyxtal.
    num_ions : sequence of int
        Atoms of each element of ``species`` (ints >= 0), counted in pyxtal's conventional
        cell: e.g. one Cu atom is incompatible with the face-centred group 225.
    dim : {3, 2, 1, 0}, default 3
        Periodic dimensions: 3 space groups (1-230), 2 layer groups (1-80), 1 rod groups
        (1-75), 0 point groups (1-56); see :data:`MAX_GROUP`.
    rng : int or numpy.random.Generator or None, optional
        The seed of the crystal's random stream: an int in [0, 2**63 - 1], a generator (one
        number is drawn from it, so it advances) or ``None`` (fresh entropy). Default: none.
        The seed used is stored in ``info["rng_seed"]``.
    **pyxtal_kwargs
        Passed to ``pyxtal.pyxtal.from_random`` (e.g. ``tm``, the tolerance matrix of
        minimum distances, or ``factor``, the volume factor of the random cell).

    Returns
    -------
    ase.Atoms
        The crystal (for ``dim=3``: periodic cell, positions wrapped into the cell), without
        a calculator. Its ``info`` holds ``symmetry`` and ``requested spacegroup``
        (``group``), ``spacegroup`` (detected by :func:`detect_spacegroup`), ``repeat = 0``,
        ``rng_seed`` and a new uuid.

    Raises
    ------
    ValueError
        ``group`` and the composition are incompatible, ``group`` or ``dim`` is out of range,
        ``species`` and ``num_ions`` differ in length, or an element is unknown or given
        twice or a count is not an int >= 0.
    TypeError
        ``group`` is not an int, or ``rng`` is not an int, a generator or ``None``.
    RuntimeError
        pyxtal gives up.

    Notes
    -----
    A crystal of :func:`sample` is regenerated on its own, bit for bit and with the same uuid,
    by this function with its group, species and counts, ``dim``,
    ``rng=info["rng_seed"]``, the pyxtal keywords of the sampling and the tolerance matrix
    ``tm`` it used (``pyxtal.tolerance.Tol_matrix(prototype="metallic")`` for the default
    ``tolerance``).
    """
    group = _check_group(group, dim)
    if len(species) != len(num_ions):
        raise ValueError(f"species {list(species)} and num_ions {list(num_ions)} differ in length")
    _check_formula(zip(species, num_ions, strict=True))
    return _draw(group, species, num_ions, dim, resolve_seed(rng), pyxtal_kwargs)


class PointCache(Protocol):
    """Grid points of :func:`sample` drawn before, e.g. stored in a project.

    Any object with a ``get`` method of this shape is one: ``get(points)`` gets each point as
    ``(label, seed)``: ``label`` is ``"<formula> @ <group>"`` (e.g. ``"Cu2Ag1 @ 164"``) and
    ``seed`` the seed of its stream (the structure's ``info["rng_seed"]``); it returns per
    point ``(structure, None)``, ``(None, drop)`` or ``None`` (draw it).

    What it returns must be what drawing the point with the same base seed, ``dim``,
    tolerance and pyxtal keywords gives; drops that say nothing about the point
    (``time_limit``, ``worker_lost``) must not be returned. The other arguments of
    :func:`sample` (formulas, groups, cap, order) do not change a point's crystal.
    """

    def get(
        self, points: Sequence[tuple[str, int]]
    ) -> list[tuple[Atoms | None, Drop | None] | None]: ...


def sample(
    formulas: Formulas | Iterable[Mapping[str, int]],
    spacegroups: Iterable[int] | None = None,
    min_atoms: int = 1,
    max_atoms: int | None = 10,
    max_structures: int | None = None,
    dim: Literal[0, 1, 2, 3] = 3,
    tolerance: str | float | Mapping[str, float] | Any = "metallic",
    shuffle: bool = False,
    rng: RngLike = None,
    report: StageReport | None = None,
    workers: int = 1,
    executor: Executor | None = None,
    chunksize: int = 4,
    progress: bool | None = None,
    time_limit: float | None = None,
    resubmit: int = 1,
    cache: PointCache | None = None,
    **pyxtal_kwargs: Any,
) -> Iterator[Atoms]:
    """Yield random symmetric crystals over the grid of compositions x symmetry groups.

    One crystal per grid point (composition, group) that pyxtal can fill, each from its own
    random stream (see :func:`pyxtal`). Grid points that are incompatible, where pyxtal gives
    up or raises, or that take longer than ``time_limit`` are skipped and recorded in
    ``report`` (reasons ``incompatible``, ``pyxtal_failed`` and ``time_limit``), never raised.

    Parameters
    ----------
    formulas : Formulas or iterable of mapping
        The compositions (see :class:`Formulas`; counts are atoms in pyxtal's conventional
        cell). Those outside ``min_atoms..max_atoms`` atoms are skipped and elements with
        count 0 are dropped from a composition. If none is left, nothing is yielded (as in the
        reference implementation): a ``UserWarning`` names the window and the compositions'
        sizes and ``report`` records each composition (reason ``atom_window``).
    spacegroups : iterable of int or None, optional
        The group numbers to draw, each in ``1..MAX_GROUP[dim]``. Default: none, all of
        ``1..MAX_GROUP[dim]`` (the 230 space groups for ``dim=3``).
    min_atoms : int, default 1
        Fewest atoms of a composition drawn (an int >= 1).
    max_atoms : int or None, default 10
        Most atoms of a composition drawn (an int >= ``min_atoms``, or ``None``: no limit).
    max_structures : int or None, optional
        Stop after this many structures (an int >= 0). Default: none (the whole grid).
    dim : {3, 2, 1, 0}, default 3
        Periodic dimensions: 3 space groups (1-230), 2 layer groups (1-80), 1 rod groups
        (1-75), 0 point groups (1-56); see :data:`MAX_GROUP`.
    tolerance : str or float or dict or DistanceFilter, default "metallic"
        The minimum interatomic distances pyxtal keeps: a pyxtal prototype
        (:data:`TOLERANCE_PROTOTYPES`) or element radii (Å: a number, a dict, or a
        :class:`~assyst_nodes.stages.filter.DistanceFilter`, so sampling and filtering use
        the same pair distances, no pair closer than r_i + r_j).
    shuffle : bool, default False
        Walk the grid in a random (seeded) order, so any prefix (e.g. under
        ``max_structures``) spreads over the grid; each grid point gives the same structure
        either way.
    rng : int or numpy.random.Generator or None, optional
        The base seed (or a generator, one number drawn from it; or ``None`` for fresh
        entropy). Default: none. The seed of each structure's stream, derived from the base
        seed and the grid point, is in its ``info["rng_seed"]``.
    report : StageReport or None, optional
        A :class:`~assyst_nodes.reports.StageReport` this run's counts are added to:
        ``n_in`` the grid points visited, ``n_out`` the crystals made, the drops, ``reused``
        in ``flags``, wall time (s) and ``execution``. Default: none (no report).
    workers : int, default 1
        Local processes to draw grid points on, in parallel (an int >= 1).
    executor : concurrent.futures.Executor or None, optional
        Any executor to draw grid points on instead of local processes. Default: none.
    chunksize : int, default 4
        Grid points per task when drawn in parallel (an int >= 1).
    progress : bool or None, optional
        Show a progress bar. Default: none, only in terminals and notebooks.
    time_limit : float or None, optional
        Wall time (s) pyxtal may take on one grid point; see
        :mod:`assyst_nodes.runtime.deadline`. Default: none (no limit).
    resubmit : int, default 1
        Times a chunk of grid points whose worker or scheduler job was lost is sent again (an
        int >= 0); then its points are skipped with reason ``worker_lost``.
    cache : PointCache or None, optional
        Grid points drawn before (e.g. stored in a project, see :class:`PointCache`) are taken
        from it instead of drawn again; the report counts them as ``reused``. Default: none.
    **pyxtal_kwargs
        Passed to pyxtal's ``from_random`` for every grid point (e.g. ``factor``); a ``tm``
        here replaces the tolerance matrix built from ``tolerance``.

    Returns
    -------
    iterator of ase.Atoms
        A generator: the crystals are drawn while it is consumed, in grid order (each
        composition with every group in turn; shuffled with ``shuffle``), each as
        :func:`pyxtal` gives it. The structures, their order and the report are the same with
        any ``workers``, ``executor`` and ``chunksize``.

    Raises
    ------
    TypeError
        When called, before any draw: ``spacegroups`` is not an iterable of ints,
        ``min_atoms``, ``max_atoms`` or ``max_structures`` is not an int (or ``None`` where
        allowed), a composition or ``tolerance`` has the wrong type, ``rng`` is not an int, a
        generator or ``None``, or ``time_limit`` is not a number.
    ValueError
        When called, before any draw: ``formulas`` or ``spacegroups`` is empty, a group or
        ``dim`` is out of range, ``min_atoms`` / ``max_atoms`` / ``max_structures`` /
        ``workers`` / ``chunksize`` / ``resubmit`` / ``time_limit`` / ``rng`` is out of
        range, an element is unknown or a count invalid, or ``tolerance`` names no pyxtal
        prototype or gives invalid radii.
    """
    check_workers(workers, chunksize)
    check_resubmit(resubmit)
    _check_dim(dim)
    if spacegroups is not None and (
        isinstance(spacegroups, str | bytes) or not isinstance(spacegroups, Iterable)
    ):
        raise TypeError(
            "spacegroups must be an iterable of group numbers (e.g. [225] or range(1, 231)) or "
            f"None for all, got {spacegroups!r}"
        )
    groups = list(range(1, MAX_GROUP[dim] + 1) if spacegroups is None else spacegroups)
    if not groups:
        raise ValueError("spacegroups is empty; give group numbers or None for all")
    groups = [_check_group(g, dim) for g in groups]
    for name, value, valid in (
        ("min_atoms", min_atoms, "an int >= 1"),
        ("max_atoms", max_atoms, "an int >= min_atoms or None"),
        ("max_structures", max_structures, "an int >= 0 or None"),
    ):
        if (value is None and name != "min_atoms") or _is_int(value):
            continue
        raise TypeError(f"{name} must be {valid}, got {value!r} ({type(value).__name__})")
    if min_atoms < 1 or (max_atoms is not None and min_atoms > max_atoms):
        raise ValueError(
            f"need 1 <= min_atoms <= max_atoms, got min_atoms={min_atoms}, max_atoms={max_atoms}"
        )
    if max_structures is not None and max_structures < 0:
        raise ValueError(f"max_structures must be >= 0 or None, got {max_structures}")
    formulas = formulas if isinstance(formulas, Formulas) else Formulas(formulas)
    if len(formulas) == 0:
        raise ValueError(
            "formulas is empty; give at least one composition, e.g. Formulas.range('Cu', 1, 5)"
        )
    compositions = [
        tuple((e, n) for e, n in f if n > 0) for f in formulas.trim(min_atoms, max_atoms).atoms
    ]
    compositions = [c for c in compositions if c]
    if not compositions:
        return _outside_window(formulas, min_atoms, max_atoms, report)
    # only the elements that are drawn need a radius (not those with count 0 or trimmed away)
    tm = _tolerance_matrix(tolerance, {e for c in compositions for e, _ in c})
    base = resolve_seed(rng)
    grid = list(itertools.product(compositions, groups))
    if shuffle:
        grid = [grid[i] for i in stream(base, "shuffle").permutation(len(grid))]
    if report is not None:
        report.stage = report.stage or "sample"
    limit = TimeLimit(time_limit)
    return _walk(
        grid, dim, tm, base, max_structures, report, dict(pyxtal_kwargs), workers, executor,
        chunksize, progress, limit, resubmit, cache,
    )


def _outside_window(
    formulas: Formulas, min_atoms: int, max_atoms: int | None, report: StageReport | None
) -> Iterator[Atoms]:
    """Nothing to draw: no composition has ``min_atoms..max_atoms`` atoms. Warns naming the
    window and the compositions' sizes, records each composition in ``report`` (reason
    ``atom_window``) and yields nothing, as the reference implementation does."""
    sizes = sorted({sum(n for _, n in f) for f in formulas.atoms})
    window = f"min_atoms={min_atoms} to max_atoms={max_atoms}"
    warnings.warn(
        f"sample: no composition of the formulas has {window} atoms (they have {sizes} atoms), "
        "so nothing is sampled; widen the window or give other formulas",
        UserWarning,
        stacklevel=3,
    )
    if report is not None:
        report.stage = report.stage or "sample"
        for formula in formulas.atoms:
            atoms = sum(n for _, n in formula)
            report.drop(
                _formula_string(formula), "atom_window", f"{atoms} atoms, outside {window}"
            )
    return iter(())


def _visit(
    dim: int,
    tm: Any,
    base: int,
    pyxtal_kwargs: Mapping[str, Any],
    limit: TimeLimit,
    points: Sequence[tuple[Formula, int]],
) -> list[tuple[Atoms | None, Drop | None, float]]:
    """Draw the crystal of each grid point: (structure or None, why not, seconds) per point.

    Whatever pyxtal raises skips the point (``incompatible`` for a ``ValueError``, else
    ``pyxtal_failed``), and so does a draw longer than ``limit`` allows (``time_limit``)."""
    out: list[tuple[Atoms | None, Drop | None, float]] = []
    for composition, group in points:
        start = time.perf_counter()
        species = [e for e, _ in composition]
        num_ions = [n for _, n in composition]
        formula = _formula_string(composition)
        label = f"{formula} @ {group}"
        compatible, _ = _group(group, dim).check_compatible(num_ions)
        if not compatible:
            drop = Drop(label, "incompatible", f"group {group} cannot host {composition}")
            out.append((None, drop, time.perf_counter() - start))
            continue
        seed = derive_seed(base, "pyxtal", formula, group, dim)
        try:
            structure = limit(
                _draw, group, species, num_ions, dim, seed, {"tm": tm, **pyxtal_kwargs}
            )
        except (Exception, TimeLimitExceeded) as error:
            if isinstance(error, TimeLimitExceeded):
                reason, detail = "time_limit", str(error)
            elif isinstance(error, ValueError):
                reason, detail = "incompatible", str(error)
            else:
                reason, detail = "pyxtal_failed", str(error)
                if not isinstance(error, RuntimeError):
                    detail = f"{type(error).__name__}: {error}"
            log.debug("sample: %s skipped (%s: %s)", label, reason, detail)
            out.append((None, Drop(label, reason, detail), time.perf_counter() - start))
            continue
        out.append((structure, None, time.perf_counter() - start))
    return out


def _lost_point(
    point: tuple[Formula, int], error: BaseException
) -> tuple[None, Drop, float]:
    """The outcome of a grid point whose chunk never came back (reason ``worker_lost``)."""
    composition, group = point
    label = f"{_formula_string(composition)} @ {group}"
    return None, Drop(label, WORKER_LOST, f"{type(error).__name__}: {error}"), 0.0


def _point_key(point: tuple[Formula, int], base: int, dim: int) -> tuple[str, int]:
    """(label, seed) of a grid point: what a :class:`PointCache` looks it up by."""
    composition, group = point
    formula = _formula_string(composition)
    return f"{formula} @ {group}", derive_seed(base, "pyxtal", formula, group, dim)


def _walk(
    grid: list[tuple[Formula, int]],
    dim: int,
    tm: Any,
    base: int,
    max_structures: int | None,
    report: StageReport | None,
    pyxtal_kwargs: Mapping[str, Any],
    workers: int,
    executor: Executor | None,
    chunksize: int,
    progress: bool | None,
    limit: TimeLimit,
    resubmit: int,
    cache: PointCache | None = None,
) -> Iterator[Atoms]:
    """Visit the grid in order until ``max_structures`` are made; fanned out, chunks of
    ``chunksize`` points run ahead (two per worker) and are taken in grid order. Points that
    ``cache`` knows are taken from it, in their place, and not drawn.

    Points drawn ahead past the cap are discarded unseen, so the output and the report equal
    the serial walk's.
    """
    total = len(grid) if max_structures is None else min(max_structures, len(grid))
    serial = executor is None and workers == 1
    fixed = (dim, tm, base, pyxtal_kwargs, limit)
    made = 0
    record = Execution(executor)
    known: dict[int, tuple[Atoms | None, Drop | None]] = {}
    if cache is not None and max_structures != 0:
        keys = [_point_key(point, base, dim) for point in grid]
        known = {i: o for i, o in enumerate(cache.get(keys)) if o is not None}
    todo = [point for i, point in enumerate(grid) if i not in known]
    with contextlib.ExitStack() as stack:
        if report is not None:
            stack.callback(lambda: report.execution.update(record.record()))
        stack.enter_context(limit)
        bar = stack.enter_context(progress_bar(total, "sample", progress))
        if serial or not todo:
            if todo:
                record.ran(where())
            batches: Iterator[list[tuple[Atoms | None, Drop | None, float]]] = (
                _visit(*fixed, [point]) for point in todo
            )
        else:
            if executor is None:
                record.executor = "local processes"
            pool = executor or stack.enter_context(process_pool(workers))
            chunks = [todo[i : i + chunksize] for i in range(0, len(todo), chunksize)]
            slots = max(workers, executor_workers(pool) or 0)
            batches = stack.enter_context(
                contextlib.closing(
                    in_order(
                        pool, _visit, fixed, chunks, depth=2 * slots, resubmit=resubmit,
                        lost=_lost_point, execution=record,
                    )
                )
            )
        if max_structures == 0:
            return

        def drawn() -> Iterator[tuple[Atoms | None, Drop | None, float]]:
            """The drawn points in order, each with its share of the wall time (s)."""
            last = time.perf_counter()
            for outcomes in batches:
                now = time.perf_counter()
                wall, last = now - last, now  # this chunk's share of the stage's wall time
                for structure, drop, seconds in outcomes:
                    yield structure, drop, seconds if serial else wall / len(outcomes)

        draws = drawn()
        for i in range(len(grid)):
            if i in known:
                structure, drop = known[i]
                seconds = 0.0
                if report is not None:
                    report.flags["reused"] = report.flags.get("reused", 0) + 1
            else:
                structure, drop, seconds = next(draws)
            if report is not None:
                report.n_in += 1
                report.seconds += seconds
                if drop is not None:
                    report.drops.append(drop)
            if structure is None:
                if max_structures is None:
                    bar.update(1)
                continue
            made += 1
            bar.update(1)
            if report is not None:
                report.n_out += 1
            yield structure
            if max_structures is not None and made >= max_structures:
                return  # before drawing the next point
