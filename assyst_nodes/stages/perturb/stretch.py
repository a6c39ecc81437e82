"""Strains of the cell with the atoms moving along (:class:`Stretch`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms

from ...validation import MIN_CELL_VOLUME
from .base import _SHEAR_INDICES, CannotApply, Perturbation, _check_seed, _number, _set

__all__ = [
    "Stretch",
]


@dataclass(frozen=True)
class Stretch(Perturbation):
    """Deform the cell by a random symmetric strain ε; fractional positions stay.

    The new cell is ``cell @ (1 + ε)`` (rows are lattice vectors), atoms scaled with it. The
    three normal components ε_ii are drawn independently with magnitude uniform in
    ``[minimum_strain, hydro]`` and a random sign, i.e. uniform on ``[-hydro, hydro]`` with the
    band ``|ε| < minimum_strain`` cut out (the same law as redrawing small values, without a
    loop); the shear components ε_ij = ε_ji (i < j) likewise with ``shear``. A structure
    without a 3D cell (e.g. a molecule) cannot be stretched: :class:`CannotApply`, which
    :func:`perturb` reports as ``cannot_apply``. ``str()``: ``stretch(hydro=0.05, shear=0.05)``.

    Parameters
    ----------
    hydro, shear : float
        The largest magnitude of the normal (ε_ii) and of the shear (ε_ij) components; strains
        are dimensionless, each in ``[0, 1)``. A bound of 0 gives exactly zero components, and
        ``hydro + 2 * shear < 1`` keeps ``1 + ε`` positive definite, so no cell collapses or
        inverts.
    minimum_strain : float, default 1e-3
        The smallest magnitude of a non-zero component (dimensionless, >= 0); a non-zero
        ``hydro`` or ``shear`` must be at least this. It keeps outputs away from their parent
        (near-copies teach a potential little).
    rng : int, optional
        The config's own base seed, as for :class:`Rattle`. Default: ``None``.

    Raises
    ------
    TypeError
        If a strain is not a number or ``rng`` is not an int seed (a generator included).
    ValueError
        If a strain is not finite, ``hydro`` or ``shear`` is outside ``[0, 1)``,
        ``hydro + 2 * shear >= 1``, ``minimum_strain`` is negative, a non-zero ``hydro`` or
        ``shear`` is below ``minimum_strain``, or ``rng`` is a negative or too large seed.
    """

    hydro: float
    shear: float
    minimum_strain: float = 1e-3
    rng: int | None = None

    def __post_init__(self) -> None:
        hydro = _number("hydro", self.hydro, "in [0, 1), strain")
        shear = _number("shear", self.shear, "in [0, 1), strain")
        minimum = _number("minimum_strain", self.minimum_strain, ">= 0, strain")
        for name, value in (("hydro", hydro), ("shear", shear)):
            if not 0 <= value < 1:
                raise ValueError(f"{name} must be in [0, 1) (strain), got {value!r}")
        if hydro + 2 * shear >= 1:
            raise ValueError(
                f"hydro + 2 * shear must be < 1 so the cell cannot collapse, got hydro={hydro}, "
                f"shear={shear}"
            )
        if minimum < 0:
            raise ValueError(f"minimum_strain must be >= 0, got {minimum!r}")
        for name, value in (("hydro", hydro), ("shear", shear)):
            if 0 < value < minimum:
                raise ValueError(
                    f"{name}={value} is below minimum_strain={minimum}: use {name}=0 for no "
                    f"such strain, {name} >= {minimum}, or a smaller minimum_strain"
                )
        _set(self, "hydro", hydro)
        _set(self, "shear", shear)
        _set(self, "minimum_strain", minimum)
        _set(self, "rng", _check_seed(self, self.rng))

    def __str__(self) -> str:
        return f"stretch(hydro={self.hydro}, shear={self.shear})"

    def _components(self, bound: float, rng: np.random.Generator) -> np.ndarray:
        if bound == 0:
            return np.zeros(3)
        magnitude = rng.uniform(self.minimum_strain, bound, size=3)
        sign = np.where(rng.random(3) < 0.5, -1.0, 1.0)
        return sign * magnitude

    def strain(self, rng: np.random.Generator) -> np.ndarray:
        """One random symmetric strain tensor ε (3x3, dimensionless).

        Parameters
        ----------
        rng : numpy.random.Generator
            The generator the components are drawn from.

        Returns
        -------
        numpy.ndarray
            The symmetric 3x3 strain ε, drawn by the law of the class docstring.
        """
        epsilon = np.diag(self._components(self.hydro, rng))
        shear = self._components(self.shear, rng)
        epsilon[_SHEAR_INDICES] = shear
        epsilon[_SHEAR_INDICES[::-1]] = shear
        return epsilon

    def apply(self, structure: Atoms, rng: np.random.Generator) -> Atoms:
        volume = abs(float(structure.cell.volume))
        if not volume >= MIN_CELL_VOLUME:
            raise CannotApply(
                f"{self} needs a 3D cell (volume >= {MIN_CELL_VOLUME} Å^3) to strain, got a "
                f"structure with cell volume {volume:.3g} Å^3"
            )
        deformation = np.eye(3) + self.strain(rng)
        structure.set_cell(structure.cell.array @ deformation, scale_atoms=True)
        return structure
