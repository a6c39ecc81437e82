"""ACE fits with python-ace: linear (pyace's basis, weighted ridge least squares) and nonlinear
(pacemaker).

Both fit energies with the isolated atoms' energies subtracted (pacemaker's
``energy_corrected``) and give an :class:`~assyst_nodes.calculators.fitted.ACEPotential` that
adds them back.

The linear fit keeps pyace's radial functions as they are initialised and the embedding linear
(``FinnisSinclair`` with ``fs_parameters [1, 1]``: F(ρ) = ρ), so energies and forces are linear
in the basis coefficients: the coefficients are the weighted ridge least-squares solution on
energies per atom and force components, exactly what ``PyACECalculator`` then predicts. It fits
~1,000 structures in seconds on a CPU. The nonlinear fit runs ``pacemaker`` (radial functions
and a nonlinear embedding fitted too, by BFGS); with the CPU evaluator ``pyace`` it takes
finite-difference gradients, hours for 150 functions on ~150 structures.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import pandas as pd
import yaml

from ...calculators import CalculatorConfig
from ...calculators.fitted import ACE_INSTALL_HINT, ACEPotential
from ...io.fitting import write_pacemaker
from ..weights import Weights  # noqa: F401 - the inherited fields' annotations resolve here
from .base import FitSettings, check_positive_int, check_positive_number, frozen_options, run_code
from .data import TrainingData

__all__ = ["ENERGY_BASED", "ACEBasis", "LinearACE", "PacemakerACE", "ace_weights"]

ENERGY_BASED: Final[dict[str, Any]] = {
    "type": "EnergyBasedWeightingPolicy",
    "DElow": 1.0,
    "DEup": 10.0,
    "DFup": 50.0,
    "DE": 1.0,
    "DF": 1.0,
    "wlow": 0.75,
    "energy": "convex_hull",
    "seed": 42,
}
"""pacemaker's energy-based weighting as its input template (``pacemaker -t``) sets it: energy
weights 1/(ΔE_hull + DE)^2 (eV/atom), 75 % of the weight below DElow = 1 eV/atom above the hull,
force weights ``1/(F^2 + DF)`` (``F`` the force on an atom, eV/Å) within a structure."""

Weighting = Literal["uniform", "energy"]


def _require_pyace() -> Any:
    try:
        import pyace
    except ImportError as error:
        raise ImportError(f"ACE fits need python-ace: {ACE_INSTALL_HINT} ({error})") from None
    return pyace


def _check_orders(owner: str, name: str, values: object, minimum: int) -> tuple[int, ...]:
    if not isinstance(values, tuple | list) or not values:
        raise ValueError(f"{owner}.{name} must be a non-empty tuple of integers, got {values!r}")
    for v in values:
        check_positive_int(owner, name, v, minimum=minimum)
    return tuple(int(v) for v in values)


@dataclass(frozen=True)
class ACEBasis(FitSettings):
    """The basis and loss fields both ACE fits share; not a fit of its own (``code`` and
    ``train`` are :class:`LinearACE`'s and :class:`PacemakerACE`'s).

    Parameters
    ----------
    weights : Weights or None, default Weights()
        Weights per origin and limits; ``None``: every structure weighs 1.
    energy : {"free_energy", "energy"}, default "free_energy"
        The labelled energy fitted.
    seed : int, default 0
        The fit's seed.
    cutoff : float, default 6.0
        Radial cutoff (Å).
    functions : int, default 150
        Basis functions per element.
    radial : tuple of int, default (15, 3, 2, 1)
        Radial functions per body order.
    angular : tuple of int, default (0, 2, 2, 1)
        Largest angular momentum per body order.
    kappa : float, default 0.3
        Share of the forces in the loss, 0..1.
    weighting : {"uniform", "energy"}, default "uniform"
        pacemaker's weighting policy.

    Raises
    ------
    TypeError, ValueError
        A field of the wrong type or out of range (the message names it).
    """

    cutoff: float = 6.0
    functions: int = 150
    radial: tuple[int, ...] = (15, 3, 2, 1)
    angular: tuple[int, ...] = (0, 2, 2, 1)
    kappa: float = 0.3
    weighting: Weighting = "uniform"

    def __post_init__(self) -> None:
        super().__post_init__()
        name = type(self).__name__
        check_positive_number(name, "cutoff", self.cutoff)
        check_positive_int(name, "functions", self.functions)
        object.__setattr__(self, "radial", _check_orders(name, "radial", self.radial, 1))
        object.__setattr__(self, "angular", _check_orders(name, "angular", self.angular, 0))
        if len(self.radial) != len(self.angular):
            raise ValueError(
                f"{name}.radial and .angular need one entry per body order, got "
                f"{self.radial} and {self.angular}"
            )
        check_positive_number(name, "kappa", self.kappa, zero=True, at_most=1.0)
        if self.weighting not in ("uniform", "energy"):
            raise ValueError(
                f"{name}.weighting must be 'uniform' or 'energy', got {self.weighting!r}"
            )

    def check(self) -> None:
        _require_pyace()

    def _potential_config(self, elements: list[str], linear: bool) -> dict[str, Any]:
        embedding = (
            {"npot": "FinnisSinclair", "fs_parameters": [1, 1], "ndensity": 1}
            if linear
            else {
                "npot": "FinnisSinclairShiftedScaled",
                "fs_parameters": [1, 1, 1, 0.5],
                "ndensity": 2,
            }
        )
        return {
            "deltaSplineBins": 0.001,
            "elements": list(elements),
            "embeddings": {"ALL": embedding},
            "bonds": {
                "ALL": {
                    "radbase": "SBessel",
                    "radparameters": [5.25],
                    "rcut": float(self.cutoff),
                    "dcut": 0.01,
                    "NameOfCutoffFunction": "cos",
                }
            },
            "functions": {
                "number_of_functions_per_element": int(self.functions),
                "ALL": {
                    "nradmax_by_orders": list(self.radial),
                    "lmax_by_orders": list(self.angular),
                },
            },
        }

    def _describe(self, code: str) -> str:
        return (
            f"{code}(cutoff={self.cutoff:g}, functions={self.functions}, "
            f"weighting={self.weighting}, seed={self.seed})"
        )


def _frame(data: TrainingData, energy: str) -> pd.DataFrame:
    """pacemaker's columns for ``data`` (energy_corrected from the reference energies)."""
    sizes = np.array([len(a) for a in data.structures])
    corrected = data.corrected_energies(energy)  # type: ignore[arg-type]
    return pd.DataFrame(
        {
            "ase_atoms": list(data.structures),
            "energy_corrected": corrected,
            "energy_corrected_per_atom": corrected / sizes,
            "forces": [np.asarray(a.calc.results["forces"], dtype=float) for a in data.structures],
            "NUMBER_OF_ATOMS": sizes,
        }
    )


def ace_weights(
    data: TrainingData, weighting: Weighting, energy: str = "free_energy"
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Energy and force weights as pacemaker makes them, times the structures' own weights.

    Parameters
    ----------
    data : TrainingData
        The structures and their weights (:class:`~assyst_nodes.stages.weights.Weights`).
    weighting : {"uniform", "energy"}
        pacemaker's ``UniformWeightingPolicy`` (every structure the same energy weight, every
        atom the same force weight) or its ``EnergyBasedWeightingPolicy`` with
        :data:`ENERGY_BASED` (pyace's own code computes them).
    energy : {"free_energy", "energy"}, default "free_energy"
        The energy the energy-based weights use.

    Returns
    -------
    tuple of (numpy.ndarray, list of numpy.ndarray)
        The energy weight of each structure (summing to 1) and the force weight of each of
        its atoms (all summing to 1). A structure the energy-based policy drops (over DEup or
        DFup) weighs 0.
    """
    n = len(data.structures)
    if weighting == "uniform":
        w_e = np.full(n, 1.0)
        w_f = [np.ones(len(a)) for a in data.structures]
    else:
        from pyace.preparedata import get_weighting_policy

        frame = _frame(data, energy)
        policy = get_weighting_policy(dict(ENERGY_BASED))
        with _quiet():
            weighted = policy.generate_weights(frame.copy())
        w_e = np.zeros(n)
        w_f = [np.zeros(len(a)) for a in data.structures]
        for index, row in weighted.iterrows():
            w_e[int(index)] = float(row["w_energy"])
            w_f[int(index)] = np.asarray(row["w_forces"], dtype=float)
    w_e = w_e * data.weights
    w_f = [f * w for f, w in zip(w_f, data.weights, strict=True)]
    total_e = w_e.sum()
    total_f = sum(float(f.sum()) for f in w_f)
    if not total_e > 0 or not total_f > 0:
        raise ValueError("every structure has weight 0: nothing to fit")
    return w_e / total_e, [f / total_f for f in w_f]


@contextlib.contextmanager
def _quiet() -> Any:
    """Silence pyace's prints and INFO logs (the fit stage reports what matters)."""
    loggers = [
        logging.getLogger(name) for name in ("pyace", "pyace.preparedata", "pyace.process_df")
    ]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


@dataclass(frozen=True)
class LinearACE(ACEBasis):
    """A linear ACE potential: pyace's basis functions, coefficients by weighted ridge least
    squares on energies per atom and force components.

    ``str()`` gives ``linear_ace(cutoff=6, functions=150, weighting=uniform, seed=0,
    ridge=1e-06)``.

    Parameters
    ----------
    weights : Weights or None, default Weights()
        Weights per origin and limits (:class:`~assyst_nodes.stages.weights.Weights`);
        ``None``: every structure weighs 1.
    energy : {"free_energy", "energy"}, default "free_energy"
        The labelled energy fitted.
    seed : int, default 0
        Names the fit (the linear fit draws no random numbers).
    cutoff : float, default 6.0
        Radial cutoff (Å).
    functions : int, default 150
        Basis functions per element (pyace picks them by body order and degree).
    radial : tuple of int, default (15, 3, 2, 1)
        Radial functions per body order (pacemaker's ``nradmax_by_orders``; order 1 first).
    angular : tuple of int, default (0, 2, 2, 1)
        Largest angular momentum per body order (``lmax_by_orders``).
    kappa : float, default 0.3
        Share of the forces in the loss, 0..1 (pacemaker's ``kappa``): the loss is
        ``(1 - κ) Σ w_E (ΔE/N)^2 + κ Σ w_F ΔF^2 + ridge Σ c^2`` (c: coefficients of columns scaled
        to unit weighted norm).
    weighting : {"uniform", "energy"}, default "uniform"
        pacemaker's weighting policy (see :func:`ace_weights`), times the structures' weights.
    ridge : float, default 1e-6
        Ridge penalty (>= 0) on the coefficients of the normalised design matrix.

    Raises
    ------
    TypeError, ValueError
        A field of the wrong type or out of range (the message names it and what is valid).

    Notes
    -----
    Needs the extra ``ace`` (python-ace); :meth:`check` says so before a run.
    """

    ridge: float = 1e-6

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive_number("LinearACE", "ridge", self.ridge, zero=True)

    @property
    def code(self) -> str:
        return "linear_ace"

    def __str__(self) -> str:
        return self._describe("linear_ace")[:-1] + f", ridge={self.ridge:g})"

    def basis(self, elements: list[str]) -> Any:
        """pyace's ``ACEBBasisSet`` for ``elements`` (coefficients 0).

        Parameters
        ----------
        elements : list of str
            The chemical elements, sorted.

        Returns
        -------
        pyace.ACEBBasisSet
            The basis.
        """
        _require_pyace()
        from pyace import ACEBBasisSet, create_multispecies_basis_config

        with _quiet():
            config = create_multispecies_basis_config(self._potential_config(elements, True))
        return ACEBBasisSet(config)

    def train(
        self, train: TrainingData, validation: TrainingData | None, directory: Path
    ) -> tuple[CalculatorConfig, list[Path]]:
        basis = self.basis(train.elements())
        design_e, design_f = design_matrix(basis, train.structures)
        target_e = train.corrected_energies(self.energy) / np.array(
            [len(a) for a in train.structures]
        )
        target_f = np.concatenate(
            [np.asarray(a.calc.results["forces"], dtype=float).ravel() for a in train.structures]
        )
        w_e, w_f = ace_weights(train, self.weighting, self.energy)
        row_e = np.sqrt((1.0 - self.kappa) * w_e)
        row_f = np.sqrt(self.kappa * np.repeat(np.concatenate(w_f), 3))
        matrix = np.vstack([design_e * row_e[:, None], design_f * row_f[:, None]])
        target = np.concatenate([target_e * row_e, target_f * row_f])
        coefficients = ridge_solve(matrix, target, self.ridge)
        basis.basis_coeffs = coefficients
        path = directory / "linear_ace.yaml"
        basis.to_BBasisConfiguration().save(str(path))
        log = directory / "linear_ace.log"
        log.write_text(
            f"{self}\nstructures {len(train.structures)}, atoms "
            f"{int(sum(len(a) for a in train.structures))}, functions {len(coefficients)}\n"
            f"design matrix {matrix.shape[0]} x {matrix.shape[1]}\n"
            f"reference energies (eV): {train.references}\n"
        )
        return ACEPotential(path, train.references), [path, log]


def design_matrix(basis: Any, structures: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    """The linear ACE model's design matrices: energy per atom and force components.

    Parameters
    ----------
    basis : pyace.ACEBBasisSet
        The basis (linear embedding).
    structures : list of ase.Atoms
        The structures.

    Returns
    -------
    tuple of numpy.ndarray
        ``(energy, forces)``: shape (n_structures, n_functions), each row the sum of the
        basis functions over the atoms divided by their number; shape (3 n_atoms,
        n_functions), the force components (atoms in order, x y z) per unit coefficient.
    """
    from pyace import ACEBEvaluator, ACECalculator
    from pyace.atomicenvironment import aseatoms_to_atomicenvironment

    evaluator = ACEBEvaluator(basis)  # keep a reference: the calculator does not own it
    calculator = ACECalculator(evaluator)
    offsets = []
    count = 0
    for rank1, higher in zip(basis.basis_rank1, basis.basis, strict=True):
        offsets.append(count)
        count += len(rank1) + len(higher)
    energy = np.zeros((len(structures), count))
    forces = []
    for i, atoms in enumerate(structures):
        environment = aseatoms_to_atomicenvironment(
            atoms, cutoff=basis.cutoffmax, elements_mapper_dict=basis.elements_to_index_map
        )
        calculator.compute(environment, compute_projections=True, compute_b_grad=True)
        real = environment.species_type[: environment.n_atoms_real]  # not the periodic images
        for species, projection in zip(real, calculator.projections, strict=True):
            energy[i, offsets[species] : offsets[species] + len(projection)] += projection
        energy[i] /= len(atoms)
        gradient = np.asarray(calculator.forces_bfuncs, dtype=float)  # (atoms, functions, 3)
        forces.append(gradient.transpose(0, 2, 1).reshape(3 * len(atoms), count))
    return energy, np.vstack(forces) if forces else np.zeros((0, count))


def ridge_solve(matrix: np.ndarray, target: np.ndarray, ridge: float) -> np.ndarray:
    """``argmin_c ||A c - y||^2 + ridge ||S c||^2``, with S the column norms of A.

    A column of norm below 1e-10 of the largest (a basis function the structures do not
    excite, zero up to rounding) gets coefficient 0: solved for, it would take any value and
    explode on structures that do excite it.

    Parameters
    ----------
    matrix : numpy.ndarray
        A, shape (rows, columns).
    target : numpy.ndarray
        y, shape (rows,).
    ridge : float
        The penalty (>= 0) on the coefficients of the normalised columns.

    Returns
    -------
    numpy.ndarray
        c, shape (columns,).
    """
    norms = np.linalg.norm(matrix, axis=0)
    used = norms > 1e-10 * norms.max(initial=0.0)
    scaled = matrix[:, used] / norms[used]
    if ridge > 0:
        scaled = np.vstack([scaled, np.sqrt(ridge) * np.eye(scaled.shape[1])])
        target = np.concatenate([target, np.zeros(int(used.sum()))])
    solution, *_ = np.linalg.lstsq(scaled, target, rcond=None)
    coefficients = np.zeros(matrix.shape[1])
    coefficients[used] = solution / norms[used]
    return coefficients


@dataclass(frozen=True)
class PacemakerACE(ACEBasis):
    """A nonlinear ACE potential fitted by pacemaker (BFGS on all parameters).

    ``str()`` gives ``pacemaker(cutoff=6, functions=150, weighting=uniform, seed=0)`` (with
    the iterations).

    Parameters
    ----------
    weights : Weights or None, default Weights()
        Weights per origin and limits (:class:`~assyst_nodes.stages.weights.Weights`);
        ``None``: every structure weighs 1.
    energy : {"free_energy", "energy"}, default "free_energy"
        The labelled energy fitted.
    seed : int, default 0
        pacemaker's ``seed``.
    cutoff : float, default 6.0
        Radial cutoff (Å).
    functions : int, default 150
        Basis functions per element.
    radial : tuple of int, default (15, 3, 2, 1)
        Radial functions per body order (``nradmax_by_orders``).
    angular : tuple of int, default (0, 2, 2, 1)
        Largest angular momentum per body order (``lmax_by_orders``).
    kappa : float, default 0.3
        Share of the forces in the loss, 0..1.
    weighting : {"uniform", "energy"}, default "uniform"
        pacemaker's weighting policy. With ``"energy"`` pacemaker makes the weights (its
        ``EnergyBasedWeightingPolicy``, :data:`ENERGY_BASED`) and the structures' own weights
        only leave out those of weight 0. The embedding is pacemaker's default nonlinear one
        (``FinnisSinclairShiftedScaled``, two densities).
    iterations : int, default 1000
        Most BFGS iterations (pacemaker's ``maxiter``).
    evaluator : {"pyace", "tensorpot"}, default "pyace"
        pacemaker's backend: ``pyace`` runs on a CPU (finite-difference gradients: slow);
        ``tensorpot`` needs TensorFlow (``tensorpotential``) and uses a GPU where there is one.
    options : mapping of str to object, optional
        Extra entries of pacemaker's ``fit`` section (e.g. ``{"repulsion": "auto"}``).

    Raises
    ------
    TypeError, ValueError
        A field of the wrong type or out of range (the message names it).
    """

    iterations: int = 1000
    evaluator: Literal["pyace", "tensorpot"] = "pyace"
    options: Mapping[str, Any] | tuple = field(default_factory=tuple)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive_int("PacemakerACE", "iterations", self.iterations)
        if self.evaluator not in ("pyace", "tensorpot"):
            raise ValueError(
                f"PacemakerACE.evaluator must be 'pyace' or 'tensorpot', got {self.evaluator!r}"
            )
        object.__setattr__(self, "options", frozen_options("PacemakerACE", self.options))

    @property
    def code(self) -> str:
        return "pacemaker"

    def __str__(self) -> str:
        return self._describe("pacemaker")[:-1] + f", iterations={self.iterations})"

    def input_yaml(self, train: TrainingData, train_file: str, test_file: str | None) -> dict:
        """pacemaker's input (``input.yaml``) for ``train``.

        Parameters
        ----------
        train : TrainingData
            The training data (its elements).
        train_file, test_file : str
            The tables (``test_file`` may be None).

        Returns
        -------
        dict
            The input, as YAML mapping.
        """
        data: dict[str, Any] = {"filename": train_file}
        if test_file is not None:
            data["test_filename"] = test_file
        fit: dict[str, Any] = {
            "loss": {"kappa": float(self.kappa), "L1_coeffs": 1e-8, "L2_coeffs": 1e-8},
            "optimizer": "BFGS",
            "maxiter": int(self.iterations),
        }
        if self.weighting == "energy":
            data["ignore_weights"] = True
            fit["weighting"] = dict(ENERGY_BASED)
        fit.update(dict(self.options))
        return {
            "seed": int(self.seed),
            "cutoff": float(self.cutoff),
            "potential": self._potential_config(train.elements(), False),
            "data": data,
            "fit": fit,
            "backend": {
                "evaluator": self.evaluator,
                "parallel_mode": "serial",
                "display_step": 50,
            },
        }

    def train(
        self, train: TrainingData, validation: TrainingData | None, directory: Path
    ) -> tuple[CalculatorConfig, list[Path]]:
        train_file = directory / "train.pkl.gzip"
        write_pacemaker(
            train.structures + train.isolated, train_file, train.references, self.energy, None
        )
        _copy_weights(train_file, train)
        test_file = None
        if validation is not None and validation.structures:
            test_file = directory / "test.pkl.gzip"
            write_pacemaker(validation.structures, test_file, train.references, self.energy, None)
        config = self.input_yaml(train, train_file.name, test_file.name if test_file else None)
        (directory / "input.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        log = directory / "pacemaker.log"
        potential = directory / "output_potential.yaml"
        threads = os.environ.get("OMP_NUM_THREADS", "1")
        run_code(
            "pacemaker", ["input.yaml", "--no-predict"], directory, log, potential,
            env={**os.environ, "OMP_NUM_THREADS": threads},
        )  # fmt: skip
        return ACEPotential(potential, train.references), [potential, log, directory / "input.yaml"]


def _copy_weights(table: Path, train: TrainingData) -> None:
    """Write the structures' weights into pacemaker's table as its uniform policy would
    (``w_energy`` per structure, ``w_forces`` shared out over the atoms)."""
    frame = pd.read_pickle(table, compression="gzip")
    w_e, w_f = ace_weights(train, "uniform")
    frame["w_energy"] = list(w_e)
    frame["w_forces"] = [np.asarray(f) for f in w_f]
    frame.to_pickle(table, compression="gzip")
