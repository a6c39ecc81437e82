"""Filters on stored calculator results: energy per atom (:class:`EnergyFilter`) and the
largest force (:class:`ForceFilter`); nothing is ever calculated."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from ase import Atoms

from ...validation import refuse_keywords
from .base import FilterBase, _bounds_str, _check_bounds, _check_number, _label

__all__ = [
    "EnergyFilter",
    "ForceFilter",
    "MissingPolicy",
    "MissingResultError",
]


MissingPolicy = Literal["keep", "reject", "raise"]
"""What a calculator-result filter does with a structure that carries no such result."""

_MISSING_POLICIES: tuple[str, ...] = ("keep", "reject", "raise")


class MissingResultError(ValueError):
    """A filter with ``if_missing="raise"`` met a structure without the result it needs."""


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
