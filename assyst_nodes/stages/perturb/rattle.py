"""Rattles: every atom displaced by a normal random vector (:class:`Rattle`), or by one
scaled per element (:class:`ElementScaledRattle`); one-atom cells can be repeated first."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers, covalent_radii

from ...lineage import (
    SUPERCELL,
)
from .base import SUPERCELL_MIN_ATOMS, CannotApply, Perturbation, _check_seed, _number, _set

__all__ = [
    "ElementScaledRattle",
    "Rattle",
]


def _supercell_repeat(structure: Atoms, min_atoms: int = SUPERCELL_MIN_ATOMS) -> tuple[int, ...]:
    """Repeats along the periodic axes giving at least ``min_atoms`` atoms, as isotropic as can be.

    Greedy: repeat the periodic axis whose repeated height (distance between opposite faces,
    Å) is the shortest until the cell holds enough atoms; a cubic cell becomes 2x2x2.
    """
    periodic = [axis for axis in range(3) if structure.pbc[axis]]
    if not periodic:
        raise CannotApply("cannot build a supercell of a structure without periodic axes")
    volume = abs(structure.cell.volume)
    lengths = structure.cell.lengths()
    # face-to-face heights; a degenerate cell falls back to the vector lengths
    heights = volume / structure.cell.areas() if volume > 0 else lengths
    repeat = [1, 1, 1]
    while len(structure) * math.prod(repeat) < min_atoms:
        axis = min(periodic, key=lambda i: (heights[i] * repeat[i], i))
        repeat[axis] += 1
    return tuple(repeat)


def _prepare_rattle(structure: Atoms, create_supercells: bool, name: str) -> Atoms:
    """The structure to rattle: a one-atom cell becomes a supercell or cannot be rattled."""
    if len(structure) >= 2:
        return structure
    if not create_supercells or len(structure) == 0:
        raise CannotApply(
            f"{name} cannot rattle a structure of {len(structure)} atom(s): displacing a single "
            "atom in its periodic cell is a mere translation (use create_supercells=True)"
        )
    repeat = _supercell_repeat(structure)
    supercell = structure.repeat(repeat)
    supercell.info[SUPERCELL] = "x".join(str(n) for n in repeat)
    return supercell


def _displace(structure: Atoms, scale: float | np.ndarray, rng: np.random.Generator) -> Atoms:
    """Add Gaussian displacements of standard deviation ``scale`` (Å, per atom or one value)."""
    noise = rng.standard_normal((len(structure), 3))
    structure.set_positions(structure.positions + noise * scale)
    return structure


@dataclass(frozen=True)
class Rattle(Perturbation):
    """Displace every atom by Gaussian noise of standard deviation ``sigma`` (Å) per component.

    A one-atom cell cannot be rattled meaningfully (:class:`CannotApply`) unless
    ``create_supercells`` is set. Cells of two or more atoms are never enlarged.
    ``str()``: ``rattle(0.1)``.

    Parameters
    ----------
    sigma : float
        The standard deviation (Å) of each Cartesian component of the displacement, >= 0.
    create_supercells : bool, default False
        If true, a one-atom cell is first repeated along its periodic axes to at least
        :data:`SUPERCELL_MIN_ATOMS` (8) atoms, as isotropically as the cell allows (a cubic
        cell becomes 2x2x2; ``info["supercell"]`` records it, e.g. ``"2x2x2"``). A one-atom
        structure without periodic axes still cannot be rattled.
    rng : int, optional
        The config's own base seed, in ``[0, 2**63 - 1]``; it overrides :func:`perturb`'s.
        Default: ``None`` (:func:`perturb`'s seed; fresh entropy when the config is called
        directly).

    Raises
    ------
    TypeError
        If ``sigma`` is not a number, or ``rng`` is a ``numpy.random.Generator`` (configs hold
        plain seeds; pass a generator to ``perturb(rng=...)``) or another non-integer.
    ValueError
        If ``sigma`` is negative or not finite, or ``rng`` is a negative or too large seed.
    """

    sigma: float
    create_supercells: bool = False
    rng: int | None = None

    def __post_init__(self) -> None:
        sigma = _number("sigma", self.sigma, ">= 0 Å")
        if sigma < 0:
            raise ValueError(f"sigma must be >= 0 Å, got {self.sigma!r}")
        _set(self, "sigma", sigma)
        _set(self, "create_supercells", bool(self.create_supercells))
        _set(self, "rng", _check_seed(self, self.rng))

    def __str__(self) -> str:
        return f"rattle({self.sigma})"

    def apply(self, structure: Atoms, rng: np.random.Generator) -> Atoms:
        structure = _prepare_rattle(structure, self.create_supercells, str(self))
        return _displace(structure, self.sigma, rng)


@dataclass(frozen=True)
class ElementScaledRattle(Perturbation):
    """Rattle with a standard deviation per element: ``sigma * reference[element]`` (Å).

    An element missing from ``reference`` makes the structure :class:`CannotApply`.
    ``str()``: ``scaled_rattle(0.1)``.

    Parameters
    ----------
    sigma : float
        The relative standard deviation (dimensionless), >= 0: each Cartesian component of an
        atom's displacement has standard deviation ``sigma`` times its element's length.
    reference : mapping of str to float, optional
        Element symbol -> length (Å), each > 0 (an iterable of ``(symbol, length)`` pairs
        works too); stored as a sorted tuple of ``(symbol, length)`` pairs. Default: ``None``,
        ASE's covalent radii (``ase.data.covalent_radii``).
    create_supercells : bool, default False
        As for :class:`Rattle`: a one-atom cell is first repeated to at least
        :data:`SUPERCELL_MIN_ATOMS` atoms.
    rng : int, optional
        The config's own base seed, as for :class:`Rattle`. Default: ``None``.

    Raises
    ------
    TypeError
        If ``sigma`` or a length is not a number, an item of ``reference`` is not a
        ``(symbol, length)`` pair, or ``rng`` is not an int seed (a generator included).
    ValueError
        If ``sigma`` is negative or not finite; if ``reference`` names something that is not a
        chemical symbol, an element twice, a length that is not finite or <= 0, or no element
        at all; if ``rng`` is a negative or too large seed.
    """

    sigma: float
    reference: tuple[tuple[str, float], ...] | None = None
    create_supercells: bool = False
    rng: int | None = None

    def __init__(
        self,
        sigma: float,
        reference: Mapping[str, float] | Iterable[tuple[str, float]] | None = None,
        create_supercells: bool = False,
        rng: int | None = None,
    ) -> None:
        sigma_value = _number("sigma", sigma, ">= 0, relative")
        if sigma_value < 0:
            raise ValueError(f"sigma must be >= 0 (relative), got {sigma!r}")
        _set(self, "sigma", sigma_value)
        _set(self, "reference", None if reference is None else self._freeze(reference))
        _set(self, "create_supercells", bool(create_supercells))
        _set(self, "rng", _check_seed(self, rng))

    @staticmethod
    def _freeze(
        reference: Mapping[str, float] | Iterable[tuple[str, float]],
    ) -> tuple[tuple[str, float], ...]:
        items = reference.items() if isinstance(reference, Mapping) else reference
        pairs: dict[str, float] = {}
        for item in items:
            if not (isinstance(item, tuple | list) and len(item) == 2):
                raise TypeError(f"reference must map element symbols to lengths, got {item!r}")
            symbol, length = item
            if symbol not in atomic_numbers:
                raise ValueError(f"reference: {symbol!r} is not a chemical symbol")
            if symbol in pairs:
                raise ValueError(f"reference: element {symbol} is given twice")
            value = _number(f"reference[{symbol!r}]", length, "> 0 Å")
            if value <= 0:
                raise ValueError(f"reference[{symbol!r}] must be > 0 Å, got {length!r}")
            pairs[symbol] = value
        if not pairs:
            raise ValueError("reference must name at least one element (or be None)")
        return tuple(sorted(pairs.items()))

    def __str__(self) -> str:
        return f"scaled_rattle({self.sigma})"

    def lengths(self, structure: Atoms) -> np.ndarray:
        """The reference length (Å) of each atom of ``structure``.

        Parameters
        ----------
        structure : ase.Atoms
            The structure whose atoms are looked up by element.

        Returns
        -------
        numpy.ndarray
            One length (Å) per atom, shape ``(len(structure),)``.

        Raises
        ------
        CannotApply
            If ``reference`` does not name an element of ``structure``.
        """
        if self.reference is None:
            return np.asarray(covalent_radii[structure.numbers], dtype=float)
        lookup = dict(self.reference)
        missing = sorted(set(structure.get_chemical_symbols()) - set(lookup))
        if missing:
            raise CannotApply(
                f"{self}: no reference length for {', '.join(missing)} (known: {', '.join(lookup)})"
            )
        return np.array([lookup[s] for s in structure.get_chemical_symbols()], dtype=float)

    def apply(self, structure: Atoms, rng: np.random.Generator) -> Atoms:
        structure = _prepare_rattle(structure, self.create_supercells, str(self))
        return _displace(structure, self.sigma * self.lengths(structure)[:, None], rng)
