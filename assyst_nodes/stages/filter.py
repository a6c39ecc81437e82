"""Filters: predicates that decide which structures to keep.

A filter is a frozen dataclass called on one :class:`ase.Atoms`; ``True`` means *keep*. Filters
combine with ``&`` (:class:`AndFilter`), ``|`` (:class:`OrFilter`) and ``~`` (:class:`NotFilter`);
a plain function ``Atoms -> bool`` may stand on either side of ``&``/``|`` (it is wrapped in a
:class:`PredicateFilter`). Every filter is hashable, picklable, equal by value and has a short
``str`` (e.g. ``(distance(Ag=1.44, Cu=1.28) & aspect(6.0))``) that names the stage in reports.

:func:`filter` applies filters to many structures and records in a
:class:`~assyst_nodes.reports.StageReport` which filter rejected what. Being plain predicates,
the filters also work with the builtin: ``builtins.filter(DistanceFilter(1.0), structures)``.

Filters never compute anything expensive: energies and forces are read from the results a
calculator already holds (see :class:`EnergyFilter`), never calculated.
"""

from __future__ import annotations

import functools
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import reduce
from typing import Any, Final, Literal

import numpy as np
from ase import Atoms
from ase.cell import Cell
from ase.data import chemical_symbols
from ase.geometry import minkowski_reduce
from ase.neighborlist import neighbor_list as _ase_neighbor_list
from matscipy.neighbours import neighbour_list as _matscipy_neighbour_list

from ..lineage import UUID
from ..reports import StageReport
from ..validation import refuse_keywords, structure_list

__all__ = [
    "ASPECT_MEASURES",
    "AndFilter",
    "AspectFilter",
    "DistanceFilter",
    "EnergyFilter",
    "FilterBase",
    "FilterLike",
    "ForceFilter",
    "MissingPolicy",
    "MissingResultError",
    "NotFilter",
    "OrFilter",
    "Predicate",
    "PredicateFilter",
    "VolumeFilter",
    "apply_filters",
    "as_filter",
    "distance_filter_of",
]
# ``filter`` itself is public (``from assyst_nodes.stages.filter import filter``) but left out of
# ``__all__`` so that a star import does not shadow the builtin by surprise.

Predicate = Callable[[Atoms], bool]
"""Any callable ``Atoms -> bool``; ``True`` means keep."""

MissingPolicy = Literal["keep", "reject", "raise"]
"""What a calculator-result filter does with a structure that carries no such result."""

_MISSING_POLICIES: tuple[str, ...] = ("keep", "reject", "raise")


class MissingResultError(ValueError):
    """A filter with ``if_missing="raise"`` met a structure without the result it needs."""


# --------------------------------------------------------------------------------------------
# base and combinators
# --------------------------------------------------------------------------------------------


class FilterBase(ABC):
    """A predicate on one structure: ``filter(structure)`` is ``True`` to keep it.

    The abstract base of all filters; it takes no parameters itself. Subclasses are frozen
    dataclasses that implement ``__call__`` (and ``__str__`` for a readable name; overriding
    :meth:`explain` is optional).

    Notes
    -----
    ``a & b`` (:class:`AndFilter`) keeps what both keep, ``a | b`` (:class:`OrFilter`) what
    either keeps, ``~a`` (:class:`NotFilter`) what ``a`` rejects. A plain callable
    ``Atoms -> bool`` may stand on either side of ``&`` and ``|``; it is wrapped in a
    :class:`PredicateFilter`.
    """

    @abstractmethod
    def __call__(self, structure: Atoms) -> bool:
        """``True`` to keep ``structure``, ``False`` to drop it.

        Parameters
        ----------
        structure : ase.Atoms
            The structure to judge; it is not modified.

        Returns
        -------
        bool
            ``True`` to keep ``structure``, ``False`` to drop it.
        """

    def first_rejecting_leaf(self, structure: Atoms) -> FilterBase | None:
        """The filter to blame if ``structure`` is rejected, ``None`` if it is kept.

        Parameters
        ----------
        structure : ase.Atoms
            The structure to judge.

        Returns
        -------
        FilterBase or None
            ``None`` if this filter keeps ``structure``, else the filter to blame: a leaf
            blames itself; :class:`AndFilter` blames the first operand that rejects;
            :class:`OrFilter` and :class:`NotFilter` blame themselves as a whole.
        """
        return None if self(structure) else self

    def explain(self, structure: Atoms) -> str:
        """A one-line reason why this filter rejects ``structure`` (measured value vs bound).

        Parameters
        ----------
        structure : ase.Atoms
            The structure this filter rejects.

        Returns
        -------
        str
            The measured value against the bound, with units, e.g.
            ``1 pair(s) too close, worst Cu0-Ag1 at 1.62 Å < 1.9 Å``; the base class says
            ``rejected by <str of the filter>``. :func:`filter` records it as the detail of a
            rejection in its report.
        """
        return f"rejected by {self}"

    def __and__(self, other: FilterLike) -> AndFilter:
        if not callable(other):
            return NotImplemented
        return AndFilter(self, as_filter(other))

    def __rand__(self, other: FilterLike) -> AndFilter:
        if not callable(other):
            return NotImplemented
        return AndFilter(as_filter(other), self)

    def __or__(self, other: FilterLike) -> OrFilter:
        if not callable(other):
            return NotImplemented
        return OrFilter(self, as_filter(other))

    def __ror__(self, other: FilterLike) -> OrFilter:
        if not callable(other):
            return NotImplemented
        return OrFilter(as_filter(other), self)

    def __invert__(self) -> NotFilter:
        return NotFilter(self)


FilterLike = FilterBase | Predicate
"""What the functions of this module accept as a filter."""


def as_filter(predicate: FilterLike) -> FilterBase:
    """``predicate`` itself if it is a :class:`FilterBase`, else wrapped in a PredicateFilter.

    Parameters
    ----------
    predicate : FilterBase or callable
        A filter, or a plain callable ``Atoms -> bool`` (``True`` keeps).

    Returns
    -------
    FilterBase
        ``predicate`` itself if it is a :class:`FilterBase`, else
        ``PredicateFilter(predicate)`` (:class:`PredicateFilter`).

    Raises
    ------
    TypeError
        If ``predicate`` is neither a :class:`FilterBase` nor callable.
    """
    if isinstance(predicate, FilterBase):
        return predicate
    if callable(predicate):
        return PredicateFilter(predicate)
    raise TypeError(
        f"a filter must be a FilterBase or a callable Atoms -> bool, not {predicate!r} "
        f"({type(predicate).__name__})"
    )


@dataclass(frozen=True)
class PredicateFilter(FilterBase):
    """Wraps a plain callable ``Atoms -> bool`` (``True`` keeps); ``str`` is its name.

    Equal when the callable is the same object; picklable when the callable is (a module-level
    function, not a lambda). Made automatically when a plain function meets ``&`` or ``|``
    (see :func:`as_filter`).

    Parameters
    ----------
    predicate : callable
        ``Atoms -> bool``; a true result keeps the structure. Its ``__qualname__`` (else its
        ``__name__``, else its ``repr``) is the filter's ``str``.

    Raises
    ------
    TypeError
        If ``predicate`` is not callable or is already a :class:`FilterBase` (use it as it is).
    """

    predicate: Predicate

    def __post_init__(self) -> None:
        if not callable(self.predicate) or isinstance(self.predicate, FilterBase):
            raise TypeError(
                f"PredicateFilter needs a plain callable Atoms -> bool, not {self.predicate!r}"
            )

    def __call__(self, structure: Atoms) -> bool:
        return bool(self.predicate(structure))

    def __str__(self) -> str:
        name = getattr(self.predicate, "__qualname__", None) or getattr(
            self.predicate, "__name__", None
        )
        return str(name) if name else repr(self.predicate)


@dataclass(frozen=True)
class AndFilter(FilterBase):
    """Keeps a structure iff both ``left`` and ``right`` keep it; ``str``: ``(left & right)``.

    Usually built by ``left & right``. ``right`` is skipped if ``left`` rejects. A rejection is
    blamed on the first rejecting operand (see :meth:`FilterBase.first_rejecting_leaf`).

    Parameters
    ----------
    left, right : FilterBase or callable
        The two operands, ``left`` applied first; a plain callable ``Atoms -> bool`` is
        wrapped by :func:`as_filter`.
    """

    left: FilterBase
    right: FilterBase

    def __post_init__(self) -> None:
        object.__setattr__(self, "left", as_filter(self.left))
        object.__setattr__(self, "right", as_filter(self.right))

    def __call__(self, structure: Atoms) -> bool:
        return bool(self.left(structure) and self.right(structure))

    def first_rejecting_leaf(self, structure: Atoms) -> FilterBase | None:
        leaf = self.left.first_rejecting_leaf(structure)
        return leaf if leaf is not None else self.right.first_rejecting_leaf(structure)

    def __str__(self) -> str:
        return f"({self.left} & {self.right})"


@dataclass(frozen=True)
class OrFilter(FilterBase):
    """Keeps a structure iff ``left`` or ``right`` keeps it; ``str``: ``(left | right)``.

    Usually built by ``left | right``. ``right`` is skipped if ``left`` keeps. A rejection is
    blamed on the whole filter, and its :meth:`~FilterBase.explain` gives both operands'
    reasons.

    Parameters
    ----------
    left, right : FilterBase or callable
        The two operands, ``left`` applied first; a plain callable ``Atoms -> bool`` is
        wrapped by :func:`as_filter`.
    """

    left: FilterBase
    right: FilterBase

    def __post_init__(self) -> None:
        object.__setattr__(self, "left", as_filter(self.left))
        object.__setattr__(self, "right", as_filter(self.right))

    def __call__(self, structure: Atoms) -> bool:
        return bool(self.left(structure) or self.right(structure))

    def explain(self, structure: Atoms) -> str:
        return f"{self.left.explain(structure)}; and {self.right.explain(structure)}"

    def __str__(self) -> str:
        return f"({self.left} | {self.right})"


@dataclass(frozen=True)
class NotFilter(FilterBase):
    """Keeps a structure iff ``operand`` rejects it; ``str``: ``~operand``.

    Usually built by ``~operand``. A rejection is blamed on the whole filter.

    Parameters
    ----------
    operand : FilterBase or callable
        The filter to negate; a plain callable ``Atoms -> bool`` is wrapped by
        :func:`as_filter`.
    """

    operand: FilterBase

    def __post_init__(self) -> None:
        object.__setattr__(self, "operand", as_filter(self.operand))

    def __call__(self, structure: Atoms) -> bool:
        return not self.operand(structure)

    def explain(self, structure: Atoms) -> str:
        return f"{self.operand} keeps it"

    def __str__(self) -> str:
        return f"~{self.operand}"


# --------------------------------------------------------------------------------------------
# geometric filters
# --------------------------------------------------------------------------------------------


def _check_number(name: str, value: object, *, allow_none: bool = False) -> float | None:
    """``value`` as a float; ValueError unless it is a real, non-NaN number (or None if allowed)."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        valid = "a number or None" if allow_none else "a number"
        raise ValueError(f"{name} must be {valid}, got {value!r} ({type(value).__name__})")
    number = float(value)
    if math.isnan(number):
        raise ValueError(f"{name} must be a number, got NaN")
    return number


def _label(structure: Atoms) -> str:
    """The uuid of ``structure``, or its chemical formula if it has none."""
    uid = structure.info.get(UUID)
    return str(uid) if uid is not None else structure.get_chemical_formula()


_SINGULAR = 1e-10
"""Cells whose volume is below this fraction of the product of their vector lengths are
singular (zero volume)."""


ROUND_OFF = 1e-12
"""Relative slack of the bound comparisons of :class:`VolumeFilter` and :class:`AspectFilter`:
a value within it of a bound counts as on the bound (kept), so a bound set to a value that
another formula rounds differently (a triple product instead of ASE's determinant) is kept."""


_MIN_SEARCH_CUTOFF = 1.0
"""Smallest neighbour-search radius (Å); a larger search than needed costs little."""


def _volume(cell: np.ndarray) -> float:
    """Volume (Å^3) of the 3x3 ``cell``: ASE's ``Cell.volume`` (``|det|``), bit for bit, so a
    bound set to ``atoms.get_volume() / len(atoms)`` keeps that structure."""
    return float(Cell(cell).volume)


def _is_singular(cell: np.ndarray) -> bool:
    """Whether the 3x3 ``cell`` (Å) has (numerically) zero volume."""
    scale = math.prod(math.hypot(*row) for row in cell.tolist())
    return scale == 0.0 or _volume(cell) <= _SINGULAR * scale


def _pairs_within(structure: Atoms, cutoff: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices ``i``, ``j`` and distances ``d`` (Å) of all pairs closer than ``cutoff`` (Å),
    over periodic images, an atom with its own images included, ``i == j`` at zero shift not."""
    cell = structure.cell.array
    pbc = structure.pbc
    if not _is_singular(cell):
        # matscipy handles any full-rank cell, also with non-periodic directions
        i, j, d, shift = _matscipy_neighbour_list("ijdS", structure, cutoff)
    else:
        # e.g. a molecule without a cell, or a slab whose non-periodic vector is zero
        periodic = cell[pbc]
        tolerance = _SINGULAR * float(np.linalg.norm(periodic))
        if len(periodic) and np.linalg.matrix_rank(periodic, tol=tolerance) < len(periodic):
            raise ValueError(
                f"structure {_label(structure)} is periodic along {pbc.tolist()} but its "
                f"periodic cell vectors {periodic.tolist()} (Å) are linearly dependent"
            )
        i, j, d, shift = _ase_neighbor_list("ijdS", structure, cutoff, self_interaction=False)
    own = (i == j) & ~np.any(shift, axis=1)
    if own.any():
        keep = ~own
        i, j, d = i[keep], j[keep], d[keep]
    return i, j, d


@dataclass(frozen=True)
class DistanceFilter(FilterBase):
    """Keeps a structure iff every interatomic distance is at least the sum of the two radii.

    A pair ``i, j`` passes iff ``d_ij >= r_i + r_j`` (Å); periodic images count, including an
    atom's own images in a small cell. With a radius of 0 an element's pairs are bounded by the
    other atom's radius alone (all radii 0: everything passes).
    ``str``: ``distance(1.0)`` or ``distance(Ag=1.44, Cu=1.28)``.

    Parameters
    ----------
    radii : float or mapping of str to float
        One radius (Å) for every element, or a mapping element symbol -> radius (Å) (an
        iterable of ``(symbol, radius)`` pairs works too). Each radius must be finite and
        >= 0. Stored as a float, or as a tuple of ``(symbol, radius)`` pairs sorted by symbol.

    Raises
    ------
    ValueError
        On construction: a radius that is not a number, negative or not finite; a key that is
        not a chemical symbol; an element given twice; an empty mapping. When called: a
        structure with an element the mapping does not name, or one periodic along cell
        vectors that are linearly dependent.
    """

    radii: float | tuple[tuple[str, float], ...]

    def __post_init__(self) -> None:
        radii = self.radii
        if isinstance(radii, Mapping | list | tuple):
            items = radii.items() if isinstance(radii, Mapping) else radii
            pairs: dict[str, float] = {}
            for item in items:
                if not (isinstance(item, tuple | list) and len(item) == 2):
                    raise ValueError(
                        f"radii must map element symbols to radii (Å), got item {item!r}"
                    )
                symbol, radius = item
                if symbol not in chemical_symbols[1:]:
                    raise ValueError(
                        f"radii: {symbol!r} is not a chemical symbol (e.g. 'Cu', 'Ag')"
                    )
                if symbol in pairs:
                    raise ValueError(f"radii: element {symbol} is given twice")
                pairs[symbol] = self._check_radius(radius, symbol)
            if not pairs:
                raise ValueError("radii must name at least one element (or be a single number)")
            object.__setattr__(self, "radii", tuple(sorted(pairs.items())))
        else:
            object.__setattr__(self, "radii", self._check_radius(radii, None))

    @staticmethod
    def _check_radius(radius: object, symbol: str | None) -> float:
        name = "radius" if symbol is None else f"radius of {symbol}"
        value = _check_number(name, radius)
        assert value is not None
        if not (0.0 <= value < math.inf):
            raise ValueError(f"{name} must be finite and >= 0 (Å), got {value}")
        return value

    def radius(self, symbol: str) -> float:
        """The radius (Å) of element ``symbol``; ValueError if the mapping does not name it.

        Parameters
        ----------
        symbol : str
            A chemical symbol, e.g. ``"Cu"``.

        Returns
        -------
        float
            Its radius (Å); the one radius of all elements if ``radii`` is a single number.

        Raises
        ------
        ValueError
            If ``radii`` is a mapping that does not name ``symbol``.
        """
        if isinstance(self.radii, float):
            return self.radii
        try:
            return dict(self.radii)[symbol]
        except KeyError:
            raise self._missing([symbol]) from None

    def _missing(self, symbols: Iterable[str]) -> ValueError:
        known = ", ".join(symbol for symbol, _ in self.radii)
        return ValueError(
            f"{self} has no radius for element(s) {', '.join(sorted(symbols))}; it knows {known}"
        )

    def _atom_radii(self, structure: Atoms) -> np.ndarray:
        """The radius (Å) of each atom of ``structure``."""
        if isinstance(self.radii, float):
            return np.full(len(structure), self.radii)
        lookup = dict(self.radii)
        symbols = structure.get_chemical_symbols()
        missing = set(symbols) - lookup.keys()
        if missing:
            raise self._missing(missing)
        return np.array([lookup[s] for s in symbols], dtype=float)

    def _clashes(self, structure: Atoms) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``i``, ``j``, ``d`` (Å) and ``r_i + r_j`` (Å) of every pair closer than allowed."""
        radii = self._atom_radii(structure)
        empty = np.zeros(0, dtype=int)
        if len(structure) == 0 or radii.max() == 0.0:
            return empty, empty, np.zeros(0), np.zeros(0)
        # a hair wider than needed, so that rounding cannot hide a pair just below the bound,
        # and never tiny: the neighbour list's bin count grows as (cell size / cutoff)^3
        cutoff = max(2.0 * float(radii.max()) * (1 + 1e-9) + 1e-9, _MIN_SEARCH_CUTOFF)
        i, j, d = _pairs_within(structure, cutoff)
        bound = radii[i] + radii[j]
        bad = d < bound
        return i[bad], j[bad], d[bad], bound[bad]

    def __call__(self, structure: Atoms) -> bool:
        return bool(len(self._clashes(structure)[0]) == 0)

    def explain(self, structure: Atoms) -> str:
        i, j, d, bound = self._clashes(structure)
        if len(i) == 0:
            return f"{self} keeps it"
        worst = int(np.argmin(d / bound))
        symbols = structure.get_chemical_symbols()
        return (
            f"{len(i) // 2 or 1} pair(s) too close, worst {symbols[i[worst]]}{i[worst]}-"
            f"{symbols[j[worst]]}{j[worst]} at {d[worst]:.4g} Å < {bound[worst]:.4g} Å"
        )

    def __str__(self) -> str:
        if isinstance(self.radii, float):
            return f"distance({self.radii})"
        return "distance(" + ", ".join(f"{s}={r}" for s, r in self.radii) + ")"


def _aspect(cell: np.ndarray) -> float:
    """Longest cell vector (Å) divided by the smallest cell height (Å); inf if singular.

    A height is the distance between two opposite faces: volume / face area. Computed with
    ASE's own cell geometry, exactly ``c.lengths().max() / (c.volume / c.areas()).min()`` for
    ``c = atoms.cell``, so a bound set to that value keeps the structure.
    """
    if _is_singular(cell):
        return math.inf
    ase_cell = Cell(cell)
    return float(ase_cell.lengths().max() / (ase_cell.volume / ase_cell.areas()).min())


ASPECT_MEASURES: Final = ("lengths", "heights")
"""How :class:`AspectFilter` measures a cell: ``lengths``, the reference package's (longest /
shortest cell vector), or ``heights`` (longest vector / smallest height, basis-independent)."""


@dataclass(frozen=True)
class AspectFilter(FilterBase):
    """Keeps a structure iff its cell is not too elongated or flat.

    Both measures equal ``c/a`` for an orthorhombic cell. A structure with a zero-volume cell
    (e.g. a molecule without cell) is rejected. A ratio within :data:`ROUND_OFF` (relative) of
    the bound counts as on it (kept). ``str``: ``aspect(6.0)`` (lengths) or
    ``aspect(6.0, heights)``.

    Parameters
    ----------
    maximum_aspect_ratio : float, default 6.0
        The largest aspect ratio kept; dimensionless, >= 1.
    measure : {"lengths", "heights"}, default "lengths"
        How the aspect ratio is measured (see :data:`ASPECT_MEASURES`):

        - ``"lengths"`` (the default, as the reference package ``assyst`` measures): the
          longest cell vector divided by the shortest, both in Å. It depends on the choice of
          basis and misses flat cells (a cell with three equal vectors can be a sheet).
        - ``"heights"`` (what this package's pipeline, macro and command line use): the length
          of the longest cell vector divided by the smallest cell height (the distance between
          opposite faces, volume / face area), both in Å; it is 1 for a cube and ``c/a`` for
          any orthorhombic cell. If the cell as given exceeds ``maximum_aspect_ratio``, its
          Minkowski-reduced basis is tried too, so a skewed choice of basis of a compact
          lattice is kept.

    Raises
    ------
    ValueError
        If ``maximum_aspect_ratio`` is not a number or is below 1, or ``measure`` is not one of
        :data:`ASPECT_MEASURES`.
    """

    maximum_aspect_ratio: float = 6.0
    measure: str = "lengths"

    def __post_init__(self) -> None:
        value = _check_number("maximum_aspect_ratio", self.maximum_aspect_ratio)
        assert value is not None
        if value < 1.0:
            raise ValueError(f"maximum_aspect_ratio must be >= 1, got {value}")
        object.__setattr__(self, "maximum_aspect_ratio", value)
        if self.measure not in ASPECT_MEASURES:
            raise ValueError(
                f"AspectFilter.measure must be one of {', '.join(map(repr, ASPECT_MEASURES))}, "
                f"got {self.measure!r}"
            )

    def aspect_ratio(self, structure: Atoms) -> float:
        """The aspect ratio of ``structure``'s cell as this filter measures it (see class).

        Parameters
        ----------
        structure : ase.Atoms
            The structure whose cell is measured.

        Returns
        -------
        float
            The dimensionless ratio by ``measure``; ``inf`` for a zero-volume cell.
        """
        cell = structure.cell.array
        if self.measure == "lengths":
            if _is_singular(cell):
                return math.inf
            lengths = Cell(cell).lengths()
            return float(lengths.max() / lengths.min())
        ratio = _aspect(cell)
        if not self._within(ratio) and math.isfinite(ratio):
            reduced, _ = minkowski_reduce(cell, pbc=True)
            ratio = min(ratio, _aspect(np.asarray(reduced)))
        return ratio

    def _within(self, ratio: float) -> bool:
        return ratio <= self.maximum_aspect_ratio * (1 + ROUND_OFF)

    def __call__(self, structure: Atoms) -> bool:
        return bool(self._within(self.aspect_ratio(structure)))

    def explain(self, structure: Atoms) -> str:
        return f"aspect ratio {self.aspect_ratio(structure):.4g} > {self.maximum_aspect_ratio}"

    def __str__(self) -> str:
        if self.measure == "lengths":
            return f"aspect({self.maximum_aspect_ratio})"
        return f"aspect({self.maximum_aspect_ratio}, {self.measure})"


def _bounds_str(name: str, low: float | None, high: float | None, extra: str = "") -> str:
    parts = [f"{key}={value}" for key, value in (("min", low), ("max", high)) if value is not None]
    if extra:
        parts.append(extra)
    return f"{name}({', '.join(parts)})"


def _check_bounds(
    low_name: str, low: object, high_name: str, high: object, *, positive: bool
) -> tuple[float | None, float | None]:
    lo = _check_number(low_name, low, allow_none=True)
    hi = _check_number(high_name, high, allow_none=True)
    if positive:
        for name, value in ((low_name, lo), (high_name, hi)):
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be > 0 or None, got {value}")
    if lo is not None and hi is not None and lo > hi:
        raise ValueError(f"{low_name} must be <= {high_name}, got {low_name}={lo} > {hi}")
    return lo, hi


@dataclass(frozen=True)
class VolumeFilter(FilterBase):
    """Keeps a structure iff ``minimum <= volume per atom <= maximum`` (Å^3/atom).

    The volume is that of the cell as ASE gives it (``atoms.get_volume() / len(atoms)``, bit
    for bit), whatever the periodicity; a value within :data:`ROUND_OFF` (relative) of a bound
    counts as on it (kept). A structure without atoms is rejected.
    ``str``: ``volume(min=5.0, max=40.0)``.

    Give the bounds by keyword, ``VolumeFilter(minimum=5.0, maximum=40.0)``, or both
    positionally, ``VolumeFilter(5.0, 40.0)``.

    Parameters
    ----------
    minimum, maximum : float, optional
        The smallest and the largest volume per atom kept (Å^3/atom); given bounds must be
        > 0, and ``minimum <= maximum``. Default: ``None``, that bound is not checked.

    Raises
    ------
    TypeError
        For a single positional bound: the reference implementation reads
        ``VolumeFilter(300)`` as the *maximum*, range-style, older versions of this package as
        the minimum. Also for the reference's keywords
        ``minimum_volume_per_atom``/``maximum_volume_per_atom``; the message names the keyword
        to write.
    ValueError
        If a bound is neither a number nor ``None``, is NaN or <= 0, or
        ``minimum > maximum``.
    """

    minimum: float | None = None
    maximum: float | None = None

    def __post_init__(self) -> None:
        lo, hi = _check_bounds("minimum", self.minimum, "maximum", self.maximum, positive=True)
        object.__setattr__(self, "minimum", lo)
        object.__setattr__(self, "maximum", hi)

    @staticmethod
    def volume_per_atom(structure: Atoms) -> float:
        """Cell volume per atom (Å^3/atom); NaN for a structure without atoms.

        Parameters
        ----------
        structure : ase.Atoms
            The structure to measure.

        Returns
        -------
        float
            ``atoms.get_volume() / len(atoms)`` (Å^3/atom), bit for bit; NaN without atoms.
        """
        n = len(structure)
        return _volume(structure.cell.array) / n if n else math.nan

    def __call__(self, structure: Atoms) -> bool:
        volume = self.volume_per_atom(structure)
        if math.isnan(volume):
            return False
        slack = ROUND_OFF * volume
        return bool(
            (self.minimum is None or volume + slack >= self.minimum)
            and (self.maximum is None or volume - slack <= self.maximum)
        )

    def explain(self, structure: Atoms) -> str:
        return f"volume {self.volume_per_atom(structure):.4g} Å^3/atom outside {self}"

    def __str__(self) -> str:
        return _bounds_str("volume", self.minimum, self.maximum)


def _refuse_reference_bounds(init: Callable[..., None]) -> Callable[..., None]:
    """Wrap VolumeFilter's ``__init__`` (keeping its signature): a single positional bound and
    the reference implementation's keywords raise ``TypeError`` saying what to write."""
    ours = {"minimum_volume_per_atom": "minimum", "maximum_volume_per_atom": "maximum"}

    @functools.wraps(init)
    def __init__(self: VolumeFilter, *bounds: Any, **keywords: Any) -> None:
        for name, value in keywords.items():
            if name in ours:
                raise TypeError(
                    f"VolumeFilter({name}={value!r}) is the reference package's (assyst) "
                    f"spelling; write VolumeFilter({ours[name]}={value!r}) (Å^3/atom)"
                )
        if len(bounds) == 1 and not keywords:
            (bound,) = bounds
            raise TypeError(
                f"VolumeFilter({bound!r}) is ambiguous: the reference package (assyst) reads one "
                "positional bound as the maximum volume per atom, older versions of this "
                f"package as the minimum; write VolumeFilter(maximum={bound!r}) or "
                f"VolumeFilter(minimum={bound!r}) (Å^3/atom)"
            )
        init(self, *bounds, **keywords)

    return __init__


VolumeFilter.__init__ = _refuse_reference_bounds(VolumeFilter.__init__)  # type: ignore[method-assign]


# --------------------------------------------------------------------------------------------
# filters on calculator results
# --------------------------------------------------------------------------------------------


def _result(structure: Atoms, name: str) -> Any | None:
    """The calculator result ``name`` stored for ``structure`` now, without calculating.

    ``None`` if there is no calculator, it holds no such result, or the result belongs to other
    positions, cell, numbers or pbc than the structure has now (stale).
    """
    calc = structure.calc
    results = getattr(calc, "results", None)
    if not isinstance(results, Mapping) or results.get(name) is None:
        return None
    if getattr(calc, "atoms", None) is not None and calc.check_state(structure):
        return None
    return results[name]


def _check_policy(if_missing: object) -> None:
    if if_missing not in _MISSING_POLICIES:
        raise ValueError(
            f"if_missing must be one of {', '.join(map(repr, _MISSING_POLICIES))}, "
            f"got {if_missing!r}"
        )


def _on_missing(policy: str, structure: Atoms, what: str) -> bool:
    if policy == "raise":
        raise MissingResultError(
            f"structure {_label(structure)} has no {what} result (set if_missing='keep' or "
            f"'reject' to pass it through or drop it)"
        )
    return policy == "keep"


def _missing_advice(value: object) -> str:
    """What to write instead of the reference implementation's ``missing=``."""
    ours = {"error": "raise", "ignore": "keep"}.get(value) if isinstance(value, str) else None
    instead = f"if_missing={ours!r}" if ours else "if_missing='raise', 'keep' or 'reject'"
    return (
        f"the reference package's (assyst) missing= is if_missing= here "
        f"(missing='error' -> 'raise', the default; 'ignore' -> 'keep'): write {instead}"
    )


@refuse_keywords(missing=_missing_advice)
@dataclass(frozen=True)
class EnergyFilter(FilterBase):
    """Keeps a structure iff ``min_energy <= potential energy per atom <= max_energy`` (eV/atom).

    The energy is the ``"energy"`` result the structure's calculator already holds (typically a
    :class:`~ase.calculators.singlepoint.SinglePointCalculator`); nothing is ever calculated.
    A non-finite energy (NaN, inf) is rejected.
    ``str``: ``energy(min=-5.0, max=0.0)`` (plus ``if_missing=...`` unless ``"raise"``).

    Parameters
    ----------
    min_energy, max_energy : float, optional
        The lowest and the highest potential energy per atom kept (eV/atom), of any sign,
        ``min_energy <= max_energy``. Default: ``None``, that bound is not checked.
    if_missing : {"raise", "keep", "reject"}, default "raise"
        What to do with a structure without a result (no calculator, no energy in its
        results, or results for other positions/cell): ``"raise"`` (the default, as the
        reference implementation) raises :class:`MissingResultError`, ``"keep"`` keeps the
        structure (the reference's ``missing="ignore"``), ``"reject"`` drops it.

    Raises
    ------
    TypeError
        For the reference's keyword ``missing=``; the message names the ``if_missing`` to
        write.
    ValueError
        If a bound is neither a number nor ``None`` (or is NaN), ``min_energy > max_energy``,
        or ``if_missing`` is not one of the three policies.
    MissingResultError
        When called with ``if_missing="raise"`` on a structure without an energy result
        (a ``ValueError``).
    """

    min_energy: float | None = None
    max_energy: float | None = None
    if_missing: MissingPolicy = "raise"

    def __post_init__(self) -> None:
        lo, hi = _check_bounds(
            "min_energy", self.min_energy, "max_energy", self.max_energy, positive=False
        )
        object.__setattr__(self, "min_energy", lo)
        object.__setattr__(self, "max_energy", hi)
        _check_policy(self.if_missing)

    @staticmethod
    def energy_per_atom(structure: Atoms) -> float | None:
        """The stored potential energy per atom (eV/atom), ``None`` without a result.

        Parameters
        ----------
        structure : ase.Atoms
            The structure whose calculator results are read; nothing is calculated.

        Returns
        -------
        float or None
            The ``"energy"`` result divided by the number of atoms (eV/atom); NaN for a
            structure without atoms; ``None`` without a result (no calculator, no energy, or
            results for other positions/cell).
        """
        energy = _result(structure, "energy")
        if energy is None:
            return None
        return float(energy) / len(structure) if len(structure) else math.nan

    def __call__(self, structure: Atoms) -> bool:
        energy = self.energy_per_atom(structure)
        if energy is None:
            return _on_missing(self.if_missing, structure, "energy")
        if not math.isfinite(energy):
            return False
        return bool(
            (self.min_energy is None or energy >= self.min_energy)
            and (self.max_energy is None or energy <= self.max_energy)
        )

    def explain(self, structure: Atoms) -> str:
        energy = self.energy_per_atom(structure)
        if energy is None:
            return "no energy result"
        return f"energy {energy:.6g} eV/atom outside {self}"

    def __str__(self) -> str:
        extra = "" if self.if_missing == "raise" else f"if_missing={self.if_missing}"
        return _bounds_str("energy", self.min_energy, self.max_energy, extra)


@refuse_keywords(missing=_missing_advice)
@dataclass(frozen=True)
class ForceFilter(FilterBase):
    """Keeps a structure iff no atom's force is longer than ``max_force`` (eV/Å).

    Forces are the ``"forces"`` result the structure's calculator already holds; nothing is ever
    calculated. Any non-finite force component (NaN, inf) rejects. ``str``: ``force(max=5.0)``
    (plus ``if_missing=...`` unless ``"raise"``).

    Parameters
    ----------
    max_force : float
        The largest norm of an atomic force kept (eV/Å), >= 0.
    if_missing : {"raise", "keep", "reject"}, default "raise"
        What to do with a structure without a forces result; works as in
        :class:`EnergyFilter`.

    Raises
    ------
    TypeError
        For the reference's keyword ``missing=``; the message names the ``if_missing`` to
        write.
    ValueError
        If ``max_force`` is not a number, is NaN or negative, or ``if_missing`` is not one of
        the three policies.
    MissingResultError
        When called with ``if_missing="raise"`` on a structure without a forces result
        (a ``ValueError``).
    """

    max_force: float
    if_missing: MissingPolicy = "raise"

    def __post_init__(self) -> None:
        value = _check_number("max_force", self.max_force)
        assert value is not None
        if value < 0:
            raise ValueError(f"max_force must be >= 0 (eV/Å), got {value}")
        object.__setattr__(self, "max_force", value)
        _check_policy(self.if_missing)

    @staticmethod
    def largest_force(structure: Atoms) -> float | None:
        """The largest atomic force norm (eV/Å) stored, NaN if any is not finite.

        Parameters
        ----------
        structure : ase.Atoms
            The structure whose calculator results are read; nothing is calculated.

        Returns
        -------
        float or None
            The largest norm of the stored forces (eV/Å); 0 for a structure without atoms;
            NaN if any force component is not finite; ``None`` without a result (no
            calculator, no forces, results for other positions/cell, or forces for another
            number of atoms).
        """
        forces = _result(structure, "forces")
        if forces is None:
            return None
        forces = np.asarray(forces, dtype=float).reshape(-1, 3)
        if len(forces) != len(structure):
            return None
        if not np.isfinite(forces).all():
            return math.nan
        return float(np.linalg.norm(forces, axis=1).max(initial=0.0))

    def __call__(self, structure: Atoms) -> bool:
        force = self.largest_force(structure)
        if force is None:
            return _on_missing(self.if_missing, structure, "forces")
        return bool(force <= self.max_force)  # False for NaN

    def explain(self, structure: Atoms) -> str:
        force = self.largest_force(structure)
        if force is None:
            return "no forces result"
        return f"largest force {force:.4g} eV/Å > {self.max_force} eV/Å"

    def __str__(self) -> str:
        extra = "" if self.if_missing == "raise" else f"if_missing={self.if_missing}"
        return _bounds_str("force", None, self.max_force, extra)


# --------------------------------------------------------------------------------------------
# the stage function
# --------------------------------------------------------------------------------------------


def _combine(filters: FilterLike | Iterable[FilterLike]) -> FilterBase | None:
    """One filter from one or several (and-ed, in order); ``None`` for an empty collection."""
    if isinstance(filters, FilterBase) or callable(filters):
        return as_filter(filters)
    if isinstance(filters, str | bytes) or not isinstance(filters, Iterable):
        raise TypeError(
            f"filters must be a filter, a callable Atoms -> bool or an iterable of them, "
            f"not {filters!r} ({type(filters).__name__})"
        )
    parts = [as_filter(f) for f in filters]
    return reduce(AndFilter, parts) if parts else None


def filter(  # shadows the builtin inside this module, on purpose
    structures: Iterable[Atoms],
    filters: FilterLike | Iterable[FilterLike],
    report: StageReport | None = None,
) -> list[Atoms]:
    """The structures that every one of ``filters`` keeps, in input order.

    Parameters
    ----------
    structures : iterable of ase.Atoms
        The structures to judge; they are not modified.
    filters : FilterBase, callable or iterable of them
        One filter, a plain callable ``Atoms -> bool``, or an iterable of them (and-ed, in
        order; an empty one keeps everything).
    report : StageReport, optional
        Where to record the stage. Its ``stage`` becomes the ``str`` of the combined filter
        (``"no filter"`` for none), ``n_in``/``n_out``/``seconds`` (s) grow, and each
        rejection is recorded with the uuid (or formula and position, e.g. ``AgCu #0``) as
        label, the ``str`` of the filter to blame as reason (see
        :meth:`FilterBase.first_rejecting_leaf`) and its :meth:`FilterBase.explain` as detail,
        so ``report.dropped`` counts rejections per filter. Default: ``None`` (nothing is
        recorded).

    Returns
    -------
    list of ase.Atoms
        The kept structures in input order: the input objects themselves, so their uuids do
        not change.

    Raises
    ------
    TypeError
        If an item of ``structures`` is not an ``Atoms`` (or ``structures`` is not an
        iterable of them); if ``filters`` is not a filter, a callable or an iterable of them;
        if the first argument is a filter, i.e. the builtin order
        ``filter(predicate, structures)`` of ``builtins.filter``.

    Notes
    -----
    Errors raised by the filters themselves propagate, e.g. :class:`MissingResultError` from
    an :class:`EnergyFilter` with ``if_missing="raise"``.
    """
    if isinstance(structures, FilterBase) or (
        callable(structures) and not isinstance(structures, Iterable)
    ):
        raise TypeError(
            "filter(structures, filters): the first argument is a filter; the builtin order "
            "filter(predicate, structures) belongs to builtins.filter"
        )
    items = structure_list(structures)
    combined = _combine(filters)
    start = time.perf_counter()
    if report is not None:
        report.stage = "no filter" if combined is None else str(combined)
    kept: list[Atoms] = []
    for position, structure in enumerate(items):
        if report is not None:
            report.n_in += 1
        if combined is None:
            blame = None
        elif report is None:
            blame = None if combined(structure) else combined
        else:
            blame = combined.first_rejecting_leaf(structure)
        if blame is None:
            kept.append(structure)
            if report is not None:
                report.n_out += 1
        elif report is not None:
            uid = structure.info.get(UUID)
            formula = structure.get_chemical_formula()
            label = str(uid) if uid is not None else f"{formula} #{position}"
            report.drop(label, str(blame), blame.explain(structure))
    if report is not None:
        report.seconds += time.perf_counter() - start
    return kept


apply_filters = filter
"""Alias of :func:`filter` that does not shadow the builtin where it is imported."""


def distance_filter_of(filters: FilterBase | None) -> DistanceFilter | None:
    """The first :class:`DistanceFilter` of an and-chain of filters, or ``None``.

    A distance filter in an and-chain can reject a structure on its own, so its radii (Å) are
    what a sampling should respect to pass ``filters``.

    Parameters
    ----------
    filters : FilterBase or None
        A filter, typically an and-chain (:class:`AndFilter`) built with ``&``.

    Returns
    -------
    DistanceFilter or None
        ``filters`` itself if it is a :class:`DistanceFilter`, else the first one among the
        operands of its :class:`AndFilter` nesting (left before right); ``None`` if there is
        none (operands of ``|`` and ``~`` are not searched).
    """
    if isinstance(filters, DistanceFilter):
        return filters
    if isinstance(filters, AndFilter):
        return distance_filter_of(filters.left) or distance_filter_of(filters.right)
    return None
