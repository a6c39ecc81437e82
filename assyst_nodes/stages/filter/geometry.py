"""Filters on the geometry of a structure: pair distances (:class:`DistanceFilter`), cell
shape (:class:`AspectFilter`) and volume per atom (:class:`VolumeFilter`)."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from ase import Atoms
from ase.cell import Cell
from ase.data import chemical_symbols
from ase.geometry import minkowski_reduce
from ase.neighborlist import neighbor_list as _ase_neighbor_list
from matscipy.neighbours import neighbour_list as _matscipy_neighbour_list

from .base import AndFilter, FilterBase, _bounds_str, _check_bounds, _check_number, _label

__all__ = [
    "ASPECT_MEASURES",
    "AspectFilter",
    "DistanceFilter",
    "VolumeFilter",
    "distance_filter_of",
]


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
        If ``maximum_aspect_ratio`` is not a number or is below 1 (a value within
        :data:`ROUND_OFF` below 1, a cubic cell's ratio as computed, counts as 1), or
        ``measure`` is not one of :data:`ASPECT_MEASURES`.
    """

    maximum_aspect_ratio: float = 6.0
    measure: str = "lengths"

    def __post_init__(self) -> None:
        value = _check_number("maximum_aspect_ratio", self.maximum_aspect_ratio)
        assert value is not None
        if 1.0 - ROUND_OFF <= value < 1.0:  # a cube's ratio as floating point computes it
            value = 1.0
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
