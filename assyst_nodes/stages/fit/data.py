"""What every fitting code gets: the labelled structures, their weights, the reference energies,
and one definition of a potential's errors on labelled structures."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from ase import Atoms
from ase.calculators.calculator import BaseCalculator

from ...io.fitting import prepare_labelled
from ..isolated import CONFIG_TYPE, ISOLATED_ATOM
from ..weights import ENERGIES, Weights, energy_of

__all__ = ["ERROR_KEYS", "TrainingData", "potential_errors", "training_data"]

EnergyKind = Literal["free_energy", "energy"]

ERROR_KEYS: tuple[str, ...] = (
    "structures",
    "atoms",
    "failed",
    "energy_rmse",
    "energy_mae",
    "force_rmse",
    "force_mae",
)
"""The keys of :func:`potential_errors`: counts, then energy errors (meV/atom) and force
errors (meV/Å, over the Cartesian components)."""


@dataclass
class TrainingData:
    """Labelled structures ready for a fitting code.

    Parameters
    ----------
    structures : list of ase.Atoms
        The labelled structures of weight > 0, isolated atoms not among them.
    weights : numpy.ndarray
        Shape (len(structures),): each structure's weight from
        :class:`~assyst_nodes.stages.weights.Weights` (1 by default).
    isolated : list of ase.Atoms
        The labelled isolated atoms (``config_type`` ``IsolatedAtom``).
    references : dict of str to float
        Energy of one isolated atom of each element (eV).
    left_out : int
        Structures left out: without a label, or of weight 0.
    """

    structures: list[Atoms]
    weights: np.ndarray
    isolated: list[Atoms]
    references: dict[str, float]
    left_out: int

    def elements(self) -> list[str]:
        """The elements of the structures and isolated atoms, sorted."""
        found: set[str] = set(self.references)
        for atoms in self.structures:
            found.update(atoms.get_chemical_symbols())
        return sorted(found)

    def corrected_energies(self, energy: EnergyKind) -> np.ndarray:
        """Each structure's energy minus its atoms' reference energies (eV)."""
        return np.array(
            [
                energy_of(atoms, energy)
                - sum(self.references[s] for s in atoms.get_chemical_symbols())
                for atoms in self.structures
            ]
        )


def training_data(
    structures: Iterable[Atoms],
    weights: Weights | None = Weights(),
    energy: EnergyKind = "free_energy",
    reference_energies: Mapping[str, float] | None = None,
) -> TrainingData:
    """Split labelled structures into what a fit takes: weighed structures, isolated atoms and
    reference energies.

    Parameters
    ----------
    structures : iterable of ase.Atoms
        Labelled structures (e.g. the label stage's output, isolated atoms among them).
    weights : Weights or None, default Weights()
        Weights and limits (:func:`~assyst_nodes.stages.weights.weigh`); ``None``: all 1.
    energy : {"free_energy", "energy"}, default "free_energy"
        The energy fitted.
    reference_energies : mapping of str to float, optional
        Energy of one isolated atom per element (eV); default: from the isolated atoms among
        ``structures``.

    Returns
    -------
    TrainingData
        The structures, weights, isolated atoms and reference energies.

    Raises
    ------
    ValueError
        ``energy`` unknown; no labelled structure left; an element without a reference
        energy (the message names it and how to give one).
    """
    if energy not in ENERGIES:
        raise ValueError(f"energy must be one of {ENERGIES}, got {energy!r}")
    prepared = prepare_labelled(structures, energy, weights, reference_energies)
    isolated = [a for a in prepared.structures if a.info.get(CONFIG_TYPE) == ISOLATED_ATOM]
    keep = [a.info.get(CONFIG_TYPE) != ISOLATED_ATOM for a in prepared.structures]
    chosen = [a for a, k in zip(prepared.structures, keep, strict=True) if k]
    if not chosen:
        raise ValueError(
            "no labelled structure to fit (label them first: the label stage, or atoms with a "
            f"calculator's energy and forces); {prepared.unlabelled} unlabelled, "
            f"{prepared.extreme} beyond the weights' limits"
        )
    data = TrainingData(
        chosen,
        np.asarray(prepared.weights)[np.asarray(keep, dtype=bool)],
        isolated,
        dict(prepared.references),
        prepared.unlabelled + prepared.extreme,
    )
    missing = sorted(set(data.elements()) - set(data.references))
    if missing:
        raise ValueError(
            f"no reference energy for {missing}: label isolated atoms with the same calculator "
            "(the label stage adds them unless isolated_atoms=None) or give "
            "reference_energies={element: eV}"
        )
    return data


def _rmse(values: np.ndarray) -> float:
    return float(np.sqrt(np.mean(values**2))) if values.size else math.nan


def _mae(values: np.ndarray) -> float:
    return float(np.mean(np.abs(values))) if values.size else math.nan


def potential_errors(
    structures: Sequence[Atoms],
    calculator: BaseCalculator,
    energy: EnergyKind = "free_energy",
) -> dict[str, float]:
    """The errors of ``calculator`` on labelled ``structures``.

    The one definition the fit stage reports for every code: energies per atom against the
    label's ``energy`` (meV/atom), forces per Cartesian component (meV/Å). A structure whose
    evaluation raises or gives a non-finite value is counted in ``failed``, not in the errors.

    Parameters
    ----------
    structures : sequence of ase.Atoms
        Labelled structures (a calculator with ``energy``/``free_energy`` and ``forces``).
    calculator : ase.calculators.calculator.BaseCalculator
        The potential (its energies on the labels' scale: total energies).
    energy : {"free_energy", "energy"}, default "free_energy"
        The labelled energy compared with the potential's energy.

    Returns
    -------
    dict of str to float
        :data:`ERROR_KEYS`: ``structures``, ``atoms`` (of those evaluated), ``failed``,
        ``energy_rmse``, ``energy_mae`` (meV/atom), ``force_rmse``, ``force_mae`` (meV/Å);
        errors are NaN without a structure.
    """
    de: list[float] = []
    df: list[np.ndarray] = []
    failed = 0
    atoms_count = 0
    for reference in structures:
        trial = Atoms(
            reference.numbers, reference.positions, cell=reference.cell, pbc=reference.pbc
        )
        trial.calc = calculator
        try:
            predicted = float(trial.get_potential_energy())
            forces = np.asarray(trial.get_forces(), dtype=float)
        except Exception:  # a failing structure is counted, never fatal
            failed += 1
            continue
        if not (math.isfinite(predicted) and np.all(np.isfinite(forces))):
            failed += 1
            continue
        n = len(reference)
        de.append((predicted - energy_of(reference, energy)) / n)
        df.append((forces - np.asarray(reference.calc.results["forces"])).ravel())
        atoms_count += n
    energies = 1000.0 * np.asarray(de)
    forces_all = 1000.0 * (np.concatenate(df) if df else np.zeros(0))
    return {
        "structures": float(len(de)),
        "atoms": float(atoms_count),
        "failed": float(failed),
        "energy_rmse": _rmse(energies),
        "energy_mae": _mae(energies),
        "force_rmse": _rmse(forces_all),
        "force_mae": _mae(forces_all),
    }
