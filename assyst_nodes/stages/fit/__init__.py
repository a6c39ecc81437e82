"""The fit stage: a potential from labelled structures, with a real fitting code.

*What* is :func:`fit`; *how* is a frozen config per code: :class:`LinearACE` (pyace's basis,
weighted ridge least squares: seconds for ~1,000 structures on a CPU, the one to use where many
fits are needed), :class:`PacemakerACE` (pacemaker's nonlinear ACE fit) and :class:`MACE`
(mace-torch, on a GPU where there is one). Each takes the label stage's hand-off: the isolated
atoms' energies as reference energies, the weights
(:class:`~assyst_nodes.stages.weights.Weights`), and a family split made before
(:func:`~assyst_nodes.stages.split.split`: give the validation part as ``validation``).

The result's :attr:`FitResult.potential` is a calculator config
(:mod:`assyst_nodes.calculators.fitted`): the relax, label and validate stages take it like any
other calculator.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from ase import Atoms

from ...calculators import get_calculator
from .ace import ENERGY_BASED, LinearACE, PacemakerACE, ace_weights
from .base import FitResult, FitSettings, require_settings
from .data import ERROR_KEYS, TrainingData, potential_errors, training_data
from .mace import MACE

__all__ = [
    "ENERGY_BASED",
    "ERROR_KEYS",
    "MACE",
    "FitResult",
    "FitSettings",
    "LinearACE",
    "PacemakerACE",
    "TrainingData",
    "ace_weights",
    "fit",
    "potential_errors",
    "training_data",
]


def fit(
    structures: Iterable[Atoms],
    settings: FitSettings = LinearACE(),
    directory: str | os.PathLike[str] = "fit",
    validation: Iterable[Atoms] = (),
    reference_energies: Mapping[str, float] | None = None,
) -> FitResult:
    """Fit a potential to labelled ``structures``.

    Parameters
    ----------
    structures : iterable of ase.Atoms
        Labelled training structures (the label stage's output, or its training part from
        :func:`~assyst_nodes.stages.split.split`), with the isolated atoms among them.
        Unlabelled ones and those the weights give 0 are left out (counted).
    settings : FitSettings, default LinearACE()
        The fitting code and its settings.
    directory : str or os.PathLike, default "fit"
        Folder for the potential file, the code's inputs and its log (created; files of an
        earlier fit there are overwritten).
    validation : iterable of ase.Atoms, optional
        Labelled structures held out from the fit (e.g. a split's validation part): their
        errors are reported, and MACE validates on them instead of a random share. Default:
        none.
    reference_energies : mapping of str to float, optional
        The energy of one isolated atom per element (eV). Default: those of the isolated
        atoms among ``structures``.

    Returns
    -------
    FitResult
        The potential (a calculator config), its errors on the training and validation
        structures (computed through the potential's own calculator: meV/atom, meV/Å), the
        reference energies, the files and the time.

    Raises
    ------
    TypeError
        ``settings`` is not a fitting config.
    ImportError
        The fitting code is not installed (the message says how).
    ValueError
        No labelled structure, or an element without a reference energy.
    RuntimeError
        The fitting code failed (the message has the end of its log).
    """
    require_settings(settings).check()
    start = time.perf_counter()
    train = training_data(structures, settings.weights, settings.energy, reference_energies)
    held_out = list(validation)
    valid = training_data(held_out, None, settings.energy, train.references) if held_out else None
    folder = Path(directory).expanduser().absolute()
    folder.mkdir(parents=True, exist_ok=True)
    potential, files = settings.train(train, valid, folder)
    calculator = get_calculator(potential, cache=False)
    errors = {"train": potential_errors(train.structures, calculator, settings.energy)}
    if valid is not None:
        errors["validation"] = potential_errors(valid.structures, calculator, settings.energy)
    return FitResult(
        potential,
        settings,
        errors,
        dict(train.references),
        [str(f) for f in files],
        train.left_out,
        time.perf_counter() - start,
    )
