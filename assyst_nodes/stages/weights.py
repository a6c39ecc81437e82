"""Weights of labelled structures for fitting: per origin, and for extreme structures.

A training set of ASSYST holds unrelaxed crystals whose forces reach tens of eV/Å beside
relaxed ones near the ground state. A fitting code spends its capacity where the weights are:
:class:`Weights` sets a weight per origin (``config_type``, see
:func:`~assyst_nodes.stages.label.origin_of`), lowers it above an energy or a force, and leaves
out structures beyond what a potential should describe.

The defaults follow the codes: every structure weighs 1, as MACE weighs configurations
(``config_weight``) and as pacemaker's default ``UniformWeightingPolicy`` does; structures
more than 10 eV/atom above the convex hull or with a force above 50 eV/Å are left out, the
limits of pacemaker's ``EnergyBasedWeightingPolicy`` (its default ``DEup`` of 10 eV/atom, and
the ``DFup`` of 50 eV/Å its input template ``pacemaker -t`` sets). The energy above the hull
is taken per atom against the lower convex hull of energy per atom over composition, of all
given structures (isolated atoms included, so every element has a point), as pacemaker's
``energy: convex_hull``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

import numpy as np
from ase import Atoms

from .isolated import CONFIG_TYPE, ISOLATED_ATOM

__all__ = ["ENERGIES", "Weights", "energies_above_hull", "energy_of", "weigh"]

ENERGIES: Final[tuple[str, str]] = ("free_energy", "energy")
"""The energies a label holds: ``free_energy`` (consistent with the forces under electronic
smearing) and ``energy`` (the code's zero-smearing extrapolation, where it makes one)."""


def energy_of(structure: Atoms, energy: Literal["free_energy", "energy"] = "free_energy") -> float:
    """The labelled energy (eV) of ``structure``.

    Parameters
    ----------
    structure : ase.Atoms
        A structure with calculator results (``structure.calc.results``).
    energy : {"free_energy", "energy"}, default "free_energy"
        Which energy: ``free_energy``, the one whose derivatives the forces are (falls back
        to ``energy`` where the calculator gave no free energy), or ``energy``.

    Returns
    -------
    float
        The energy (eV); NaN where there is none.

    Raises
    ------
    ValueError
        ``energy`` is neither ``"free_energy"`` nor ``"energy"``.
    """
    if energy not in ENERGIES:
        raise ValueError(f"energy must be one of {ENERGIES}, got {energy!r}")
    results = getattr(structure.calc, "results", None) or {}
    value = results.get(energy)
    if value is None and energy == "free_energy":
        value = results.get("energy")
    return math.nan if value is None else float(value)


def _positive_or_none(name: str, value: object) -> float | None:
    """``value`` as a float > 0, or None; else an error naming ``name``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"Weights.{name} must be a number or None, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"Weights.{name} must be a finite number > 0 or None, got {value!r}")
    return float(value)


def _weight(name: str, value: object) -> float:
    """``value`` as a finite float >= 0; else an error naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"Weights.{name} must be a number, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"Weights.{name} must be a finite number >= 0, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Weights:
    """How much each labelled structure weighs in a fit (see the module docstring).

    A structure's weight is its origin's weight, times ``high_weight`` if it is above
    ``high_energy`` or ``high_force``; it is left out (weight 0) above ``max_energy`` or
    ``max_force``. Isolated atoms always weigh 1 (they are reference energies).

    Parameters
    ----------
    origins : mapping of str to float or tuple of (str, float), optional
        Weight of each origin (``config_type``: ``sampled``, ``volume_relaxed``,
        ``relaxed``, ``perturbed``, ...), e.g. ``{"sampled": 0.5}``; origins not named weigh
        1. Stored as sorted pairs. Default: none (all 1).
    high_energy : float or None, optional
        Energy above the convex hull (eV/atom) above which a structure weighs
        ``high_weight`` times its origin's weight. Default: none (no such step).
    high_force : float or None, optional
        Largest atomic force (eV/Å) above which a structure weighs ``high_weight`` times its
        origin's weight. Default: none.
    high_weight : float, default 0.1
        The factor of ``high_energy`` and ``high_force`` (>= 0).
    max_energy : float or None, default 10.0
        Energy above the convex hull (eV/atom) above which a structure is left out
        (pacemaker's ``DEup``). ``None``: none is left out for its energy.
    max_force : float or None, default 50.0
        Largest atomic force (eV/Å) above which a structure is left out (``DFup`` of
        pacemaker's input template). ``None``: none is left out for its forces.

    Raises
    ------
    TypeError
        A value of the wrong type (the message names the field).
    ValueError
        A value out of range.
    """

    origins: tuple[tuple[str, float], ...] = field(default=())
    high_energy: float | None = None
    high_force: float | None = None
    high_weight: float = 0.1
    max_energy: float | None = 10.0
    max_force: float | None = 50.0

    def __post_init__(self) -> None:
        origins = self.origins
        if isinstance(origins, Mapping):
            origins = tuple(origins.items())
        if isinstance(origins, str) or not isinstance(origins, Iterable):
            raise TypeError(
                f"Weights.origins must map origins to weights, e.g. {{'sampled': 0.5}}, "
                f"got {self.origins!r}"
            )
        pairs = []
        for pair in origins:
            if not (isinstance(pair, Sequence) and len(pair) == 2 and isinstance(pair[0], str)):
                raise TypeError(
                    f"Weights.origins must map origins to weights, got the item {pair!r}"
                )
            pairs.append((pair[0], _weight(f"origins[{pair[0]!r}]", pair[1])))
        object.__setattr__(self, "origins", tuple(sorted(dict(pairs).items())))
        for name in ("high_energy", "high_force", "max_energy", "max_force"):
            object.__setattr__(self, name, _positive_or_none(name, getattr(self, name)))
        object.__setattr__(self, "high_weight", _weight("high_weight", self.high_weight))

    def needs_hull(self) -> bool:
        """Whether the weights depend on the energy above the convex hull.

        Returns
        -------
        bool
            True where ``high_energy`` or ``max_energy`` is set.
        """
        return self.high_energy is not None or self.max_energy is not None


def energies_above_hull(
    structures: Sequence[Atoms], energy: Literal["free_energy", "energy"] = "free_energy"
) -> np.ndarray:
    """The energy of each structure above the convex hull of all of them (eV/atom).

    Parameters
    ----------
    structures : sequence of ase.Atoms
        Labelled structures; every element must have a structure of its own alone (a pure
        crystal or its isolated atom), or the hull has no end there.
    energy : {"free_energy", "energy"}, default "free_energy"
        Which energy (see :func:`energy_of`).

    Returns
    -------
    numpy.ndarray
        Shape (n,), >= 0 (0 on the hull); NaN for a structure without an energy.

    Raises
    ------
    ValueError
        An element without a structure of its own alone (the message names it).
    """
    from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
    from pymatgen.core import Composition

    values = np.array([energy_of(a, energy) for a in structures])
    usable = [i for i, value in enumerate(values) if math.isfinite(value)]
    above = np.full(len(structures), math.nan)
    if not usable:
        return above
    elements = {s for i in usable for s in structures[i].get_chemical_symbols()}
    alone = {structures[i].get_chemical_symbols()[0] for i in usable
             if len(set(structures[i].get_chemical_symbols())) == 1}
    missing = sorted(elements - alone)
    if missing:
        raise ValueError(
            f"the energy above the convex hull needs a structure of each element alone; "
            f"{missing} has none: label with isolated atoms (label(..., isolated=IsolatedAtoms())"
            ") or set Weights(max_energy=None, high_energy=None)"
        )
    entries = [
        PDEntry(Composition(structures[i].get_chemical_formula()), float(values[i]))
        for i in usable
    ]
    diagram = PhaseDiagram(entries)
    for i, entry in zip(usable, entries, strict=True):
        above[i] = max(0.0, float(diagram.get_e_above_hull(entry, allow_negative=True)))
    return above


def weigh(
    structures: Sequence[Atoms],
    settings: Weights = Weights(),
    energy: Literal["free_energy", "energy"] = "free_energy",
) -> np.ndarray:
    """The weight of each labelled structure under ``settings`` (0: left out).

    Parameters
    ----------
    structures : sequence of ase.Atoms
        Labelled structures (with ``config_type`` where they came from
        :func:`~assyst_nodes.stages.label.label`; a structure without one weighs as the
        origin ``""``, i.e. 1 unless set).
    settings : Weights, default Weights()
        The weights and limits.
    energy : {"free_energy", "energy"}, default "free_energy"
        The energy the limits on the energy above the hull use (see :func:`energy_of`).

    Returns
    -------
    numpy.ndarray
        Shape (n,), the weight of each structure (>= 0).

    Raises
    ------
    TypeError
        ``settings`` is not :class:`Weights`.

    Warns
    -----
    RuntimeWarning
        The weights need the energy above the hull and an element has no structure of its
        own (see :func:`energies_above_hull`): the energy limits are not applied, the others
        are.
    """
    if not isinstance(settings, Weights):
        raise TypeError(f"settings must be Weights(...), got {settings!r}")
    origins = dict(settings.origins)
    weights = np.ones(len(structures))
    above = np.zeros(len(structures))
    if settings.needs_hull() and len(structures):
        try:
            above = energies_above_hull(structures, energy)
        except ValueError as error:  # no end of the hull for an element: no energy limits
            warnings.warn(
                f"{error}; the limits on the energy above the hull are not applied",
                RuntimeWarning,
                stacklevel=2,
            )
    for i, atoms in enumerate(structures):
        origin = str(atoms.info.get(CONFIG_TYPE, ""))
        if origin == ISOLATED_ATOM:
            continue
        forces = (getattr(atoms.calc, "results", None) or {}).get("forces")
        forces = np.zeros((0, 3)) if forces is None else np.asarray(forces, dtype=float)
        force = float(np.linalg.norm(forces.reshape(-1, 3), axis=1).max(initial=0.0))
        weight = origins.get(origin, 1.0)
        if (settings.high_energy is not None and above[i] > settings.high_energy) or (
            settings.high_force is not None and force > settings.high_force
        ):
            weight *= settings.high_weight
        if (settings.max_energy is not None and above[i] > settings.max_energy) or (
            settings.max_force is not None and force > settings.max_force
        ):
            weight = 0.0
        weights[i] = weight
    return weights
