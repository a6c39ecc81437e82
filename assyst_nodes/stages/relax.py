"""Relaxation stage: minimise each structure with an ASE calculator.

``relax(structures, settings)`` is *what*; a frozen :class:`Relax` subclass is *how*. The classes
differ only in :meth:`Relax.apply_filter_and_constraints` (which degrees of freedom move); a
custom engine overrides :meth:`Relax.relax`. Every result is a new structure with a new uuid and
a :class:`~ase.calculators.singlepoint.SinglePointCalculator` holding energy (eV), forces (eV/Å)
and, where the calculator gives one, stress (eV/Å^3, ASE's Voigt order).
"""

from __future__ import annotations

import dataclasses
import math
import pickle
import threading
import time
import warnings
from collections.abc import Iterable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

import numpy as np
from ase import Atoms, units
from ase.calculators.calculator import BaseCalculator, PropertyNotImplementedError
from ase.calculators.singlepoint import SinglePointCalculator
from ase.constraints import FixAtoms, FixSymmetry
from ase.filters import FrechetCellFilter
from ase.optimize import BFGS, FIRE, LBFGS
from ase.optimize.optimize import Optimizer

from ..calculators import EMT, CalculatorConfig, get_calculator
from ..lineage import RELAX_CONVERGED, UUID, derive_uuid, make_root, update_uuid
from ..reports import WORKER_LOST, Drop, StageReport
from ..runtime.deadline import TimeLimit, TimeLimitExceeded, WorkerDied
from ..runtime.fanout import check_resubmit, check_workers, map_chunks
from ..validation import check_real, periodic_cells, refuse_keywords, structure_list, with_cells

__all__ = [
    "ALGORITHMS",
    "HESSIAN_ALGORITHMS",
    "REFERENCE_OPTIMIZER",
    "CellRelax",
    "FullRelax",
    "Outcome",
    "OutcomeCache",
    "Relax",
    "RelaxationError",
    "SymmetryRelax",
    "VolumeRelax",
    "relax",
    "with_calculator",
]

ALGORITHMS = {"LBFGS": LBFGS, "BFGS": BFGS, "FIRE": FIRE}
"""Optimiser names accepted by ``Relax.algorithm``."""

HESSIAN_ALGORITHMS = ("BFGS", "LBFGS")
"""The optimisers that start from a guessed Hessian, ``Relax.alpha`` (FIRE has none)."""

REFERENCE_OPTIMIZER: dict[str, Any] = {"algorithm": "LBFGS", "alpha": 70.0, "maxstep": None}
"""The optimiser of the reference implementation (``assyst`` 1.0.0) and of this package's first
versions: ASE's LBFGS with its own defaults (initial Hessian 70 eV/Å^2, steps of at most
0.2 Å). ``FullRelax(**REFERENCE_OPTIMIZER)`` relaxes as the reference does."""

MAX_PRESSURE = 1000.0
"""Largest pressure magnitude accepted (GPa)."""


class RelaxationError(RuntimeError):
    """A structure could not be relaxed; ``reason`` is a short category for reports.

    Raised by ``Relax.__call__`` (every error of the engine becomes one);
    :func:`relax` records it as a drop of the structure with this ``reason`` and goes on. It
    pickles with its ``reason``, so it keeps it across processes.

    Parameters
    ----------
    message : str
        What went wrong (``str()`` of the error).
    reason : str, default "calculator_error"
        The report category, stored as ``reason``: ``"calculator_error"`` (the calculator or
        the optimiser raised) or ``"non_finite"`` (NaN or infinite energy or forces).
    """

    def __init__(self, message: str, reason: str = "calculator_error"):
        super().__init__(message)
        self.reason = reason

    def __reduce__(self) -> tuple[Any, ...]:  # keep ``reason`` across processes
        return (type(self), (str(self), self.reason))


@dataclass(frozen=True)
class Relax:
    """Relax atomic positions in a fixed cell.

    The settings of :func:`relax`: a frozen dataclass, and the base of the other settings
    classes, which differ only in :meth:`apply_filter_and_constraints`. ``str()`` is the step
    name, e.g. ``relax``.

    Parameters
    ----------
    max_steps : int, default 100
        Optimiser steps at most (an int >= 0). A relaxation that reaches it is kept with
        ``info["relax_converged"] = False``.
    force_tolerance : float, default 1e-3
        Converged when every force (and, for cell relaxations, the stress times volume per
        atom) is below it (eV/Å); a finite number > 0.
    algorithm : {"BFGS", "LBFGS", "FIRE"}, default "BFGS"
        The ASE optimiser, one of :data:`ALGORITHMS`.
    calculator : CalculatorConfig or ase.calculators.calculator.BaseCalculator or None, optional
        A calculator config (``EMT()``, ``Morse(...)``, ``ImportedCalculator(...)``), built
        where the relaxation runs, or a live ASE calculator, used in this process only.
        Default: none, each structure's own calculator (see Notes).
    alpha : float, default 20.0
        The initial Hessian guess of BFGS and LBFGS (eV/Å^2; unused by FIRE); a finite
        number > 0. ASE's default, and the reference's, is 70.0.
    maxstep : float or None, optional
        The longest step of one atom, or of one row of the cell filter's strain, per optimiser
        step (Å), in (0, 1] (ASE refuses longer steps). Default: none, the optimiser's own,
        0.2 Å.

    Raises
    ------
    TypeError
        ``max_steps`` is not an int, ``force_tolerance``, ``alpha`` or ``maxstep`` is not a
        real number (a bool is not), or ``calculator`` is neither a config, an ASE calculator
        nor ``None``.
    ValueError
        ``max_steps < 0``, ``force_tolerance`` or ``alpha`` not a finite number > 0,
        ``algorithm`` not in :data:`ALGORITHMS`, or ``maxstep`` outside (0, 1].

    Notes
    -----
    The defaults (BFGS, ``alpha=20``) need fewer force calls than the reference's ASE LBFGS
    with ``alpha=70`` (:data:`REFERENCE_OPTIMIZER`) and converge more often within the same
    ``max_steps`` (``benchmarks/relax_force_calls.py``; figures in ``benchmarks/RESULTS.md``
    and on the relax page of the docs). With DFT every force call costs minutes, so this is
    the figure that matters.

    ``calculator=None`` (the default) relaxes each structure with the calculator attached to
    it, as the reference implementation (``assyst``) does; a structure without one, or with
    only a ``SinglePointCalculator`` (stored results, e.g. of an earlier stage), gets
    :class:`~assyst_nodes.calculators.EMT` (see :meth:`calculator_for`). An attached
    calculator is live, so it is used only where it can go: :func:`relax` refuses to send one
    that does not pickle to worker processes (pass ``calculator=`` a config such as ``EMT()``
    there).

    The cell relaxations (:class:`VolumeRelax`, :class:`SymmetryRelax`, :class:`FullRelax`) take
    a ``pressure_gpa`` in GPa (negative: tension). The reference implementation's
    ``pressure=`` is in eV/Å^3 (as ASE's ``scalar_pressure``), so ``pressure=`` is refused with
    a ``TypeError`` giving the value in GPa (1 eV/Å^3 = 160.21766 GPa). The sane range is
    ``|pressure_gpa| <= MAX_PRESSURE`` (1000 GPa): static experiments reach about 1 TPa, so
    anything larger is taken for a unit slip (a pressure in Pa or bar) and refused (a
    ``ValueError``). They and :class:`CellRelax` move the cell, so :func:`relax` refuses a
    structure without a 3D cell (volume below :data:`~assyst_nodes.validation.MIN_CELL_VOLUME`
    Å^3) before it starts.
    """

    max_steps: int = 100
    force_tolerance: float = 1e-3
    algorithm: Literal["LBFGS", "BFGS", "FIRE"] = "BFGS"
    calculator: CalculatorConfig | BaseCalculator | None = None
    alpha: float = 20.0
    maxstep: float | None = None

    step_name: ClassVar[str] = "relax"
    optimises: ClassVar[bool] = True
    """Whether the engine moves atoms (and so reports ``relax_converged``)."""
    changes_cell: ClassVar[bool] = False
    """Whether the cell moves (then every input structure needs a 3D cell)."""

    def __post_init__(self) -> None:
        if isinstance(self.max_steps, bool) or not isinstance(self.max_steps, int):
            raise TypeError(f"max_steps must be an int >= 0, got {self.max_steps!r}")
        if self.max_steps < 0:
            raise ValueError(f"max_steps must be >= 0, got {self.max_steps}")
        check_real("force_tolerance", self.force_tolerance, "a number > 0 (eV/Å)")
        if not (math.isfinite(self.force_tolerance) and self.force_tolerance > 0):
            raise ValueError(f"force_tolerance must be > 0 eV/Å, got {self.force_tolerance!r}")
        if self.algorithm not in ALGORITHMS:
            raise ValueError(
                f"algorithm must be one of {sorted(ALGORITHMS)}, got {self.algorithm!r}"
            )
        check_real("alpha", self.alpha, "a number > 0 (eV/Å^2)")
        if not (math.isfinite(self.alpha) and self.alpha > 0):
            raise ValueError(
                f"alpha (initial Hessian of BFGS/LBFGS) must be a finite number > 0 eV/Å^2, "
                f"got {self.alpha!r}; 20.0 is the default, 70.0 ASE's (and the reference's)"
            )
        if self.maxstep is not None:
            check_real("maxstep", self.maxstep, "a number > 0 (Å) or None")
            if not (math.isfinite(self.maxstep) and 0 < self.maxstep <= 1.0):
                raise ValueError(
                    f"maxstep must be a number > 0 and <= 1 Å (ASE refuses longer steps), or "
                    f"None (the optimiser's own default, 0.2 Å), got {self.maxstep!r}"
                )
        if self.calculator is not None and not isinstance(
            self.calculator, CalculatorConfig | BaseCalculator
        ):
            raise TypeError(
                "calculator must be a CalculatorConfig (EMT(), Morse(...), "
                "ImportedCalculator(...)), an ASE calculator or None (the structure's own), "
                f"got {self.calculator!r}"
            )
        pressure = getattr(self, "pressure_gpa", 0.0)
        check_real("pressure_gpa", pressure, f"a number within ±{MAX_PRESSURE} GPa")
        if not (math.isfinite(pressure) and abs(pressure) <= MAX_PRESSURE):
            raise ValueError(
                f"pressure_gpa must be finite and within ±{MAX_PRESSURE} GPa, got {pressure!r}"
            )

    def __str__(self) -> str:
        pressure = getattr(self, "pressure_gpa", 0.0)
        return f"{self.step_name}(pressure_gpa={pressure})" if pressure else self.step_name

    @property
    def scalar_pressure(self) -> float:
        """The pressure in ASE units (eV/Å^3)."""
        return getattr(self, "pressure_gpa", 0.0) * units.GPa

    def calculator_for(self, structure: Atoms) -> BaseCalculator:
        """The calculator that relaxes ``structure``.

        Parameters
        ----------
        structure : ase.Atoms
            The structure to relax; its attached calculator is only looked at.

        Returns
        -------
        ase.calculators.calculator.BaseCalculator
            ``calculator`` when set (a config's calculator from
            :func:`~assyst_nodes.calculators.get_calculator`), else the live calculator
            attached to ``structure``, else a new :class:`~assyst_nodes.calculators.EMT` one
            (a ``SinglePointCalculator`` only holds results, so it counts as none).
        """
        if self.calculator is not None:
            return get_calculator(self.calculator)
        own = _live_calculator(structure)
        return own if own is not None else get_calculator(EMT())

    def apply_filter_and_constraints(self, structure: Atoms) -> Atoms | FrechetCellFilter:
        """What the optimiser moves: the hook that distinguishes the subclasses.

        May set constraints on ``structure`` (a private copy) and returns it or a filter on it.
        Here: ``structure`` itself, so the atomic positions move and the cell stays.

        Parameters
        ----------
        structure : ase.Atoms
            A private copy of the input, with its calculator attached; free to modify.

        Returns
        -------
        ase.Atoms or ase.filters.FrechetCellFilter
            ``structure`` or a filter on it, handed to :meth:`optimizer`.
        """
        return structure

    def optimizer(self, movable: Atoms | FrechetCellFilter) -> Optimizer:
        """The ASE optimiser of ``algorithm`` on ``movable`` (no log).

        Parameters
        ----------
        movable : ase.Atoms or ase.filters.FrechetCellFilter
            What :meth:`apply_filter_and_constraints` returned.

        Returns
        -------
        ase.optimize.optimize.Optimizer
            The optimiser, with ``alpha`` (the initial Hessian, eV/Å^2; BFGS and LBFGS only)
            and ``maxstep`` (Å) when set; not run yet.
        """
        options: dict[str, Any] = {"logfile": None}
        if self.algorithm in HESSIAN_ALGORITHMS:
            options["alpha"] = self.alpha
        if self.maxstep is not None:
            options["maxstep"] = self.maxstep
        return ALGORITHMS[self.algorithm](movable, **options)

    def relax(self, structure: Atoms) -> Atoms:
        """Minimise ``structure`` (a private copy, free to modify) and return the result.

        Override this to plug in another engine. Here: the optimiser of :meth:`optimizer` on
        what :meth:`apply_filter_and_constraints` gives, run to ``force_tolerance`` for at most
        ``max_steps`` steps.

        Parameters
        ----------
        structure : ase.Atoms
            A private copy of the input. With ``calculator=None`` the copy keeps the
            structure's own live calculator (see :meth:`calculator_for`), else it has none.

        Returns
        -------
        ase.Atoms
            The minimised structure. It must carry a calculator with energy and forces (a
            ``SinglePointCalculator`` is attached by :meth:`__call__` from the last results if
            it does not) and may set ``info["relax_converged"]`` (whether the optimiser
            converged).
        """
        structure.calc = self.calculator_for(structure)
        movable = self.apply_filter_and_constraints(structure)
        optimizer = self.optimizer(movable)
        with warnings.catch_warnings():
            # FrechetCellFilter's matrix logarithm warns at round-off level (err ~ 1e-13)
            warnings.filterwarnings("ignore", "logm result may be inaccurate", RuntimeWarning)
            converged = bool(optimizer.run(fmax=self.force_tolerance, steps=self.max_steps))
        structure.info[RELAX_CONVERGED] = converged
        return structure

    def result_uuid(self, structure: Atoms) -> str:
        """The uuid :meth:`__call__` gives the result of ``structure``, without relaxing it.

        Parameters
        ----------
        structure : ase.Atoms
            The structure to relax.

        Returns
        -------
        str
            uuid5 of the structure's uuid (for one without, of the uuid its geometry gives
            it), the step ``str(self)`` and an empty key.
        """
        work = structure if structure.info.get(UUID) else update_uuid(structure.copy())
        return derive_uuid(work.info[UUID], str(self), "")

    def __call__(self, structure: Atoms) -> Atoms:
        """Relax one structure: a new ``Atoms`` with a new uuid (:meth:`result_uuid`), the
        step ``str(self)`` and a ``SinglePointCalculator``; the input is not modified.

        Parameters
        ----------
        structure : ase.Atoms
            The structure to relax. A structure without a uuid gives a result that is its own
            ``seed`` with an empty ``lineage`` (as in
            :func:`~assyst_nodes.stages.perturb.perturb`), so its chain resolves.

        Returns
        -------
        ase.Atoms
            The result of :meth:`relax`, without constraints, with a ``SinglePointCalculator``
            holding its unconstrained energy and free energy (eV), forces (eV/Å) and, where
            finite and given, stress (eV/Å^3), and, for engines that optimise,
            ``info["relax_converged"]`` (``True`` unless the engine set it otherwise).

        Raises
        ------
        RelaxationError
            When the engine raises or gives non-finite results.
        """
        own = _live_calculator(structure) if self.calculator is None else None
        orphan = structure.info.get(UUID) is None
        if orphan:  # a uuid from the geometry, so the result's uuid is deterministic
            structure = update_uuid(structure.copy())
        work = structure.copy()
        work.calc = own
        try:
            result = self.relax(work)
            labelled = _single_point(result)
        except RelaxationError:
            raise
        except Exception as error:
            raise RelaxationError(f"{type(error).__name__}: {error}") from error
        if self.optimises:
            labelled.info[RELAX_CONVERGED] = bool(result.info.get(RELAX_CONVERGED, True))
        labelled = update_uuid(labelled, step=str(self), key="")
        return make_root(labelled) if orphan else labelled


def with_calculator(
    settings: Relax,
    calculator: CalculatorConfig | BaseCalculator | None,
    default: CalculatorConfig | BaseCalculator | None = None,
) -> Relax:
    """Relax ``settings`` with the calculator a run gives them.

    Parameters
    ----------
    settings : Relax
        The relaxation; its own ``calculator`` (``None``: not set) is kept unless the run
        gives one.
    calculator : CalculatorConfig or ASE calculator or None
        The run's calculator. ``None`` keeps the settings' own. Given to settings that name
        another calculator, it is an error: which of the two was meant cannot be told.
    default : CalculatorConfig or ASE calculator or None, optional
        The calculator of settings that name none when the run gives none. Default: none,
        leave it unset, so each structure's attached calculator or EMT is used.

    Returns
    -------
    Relax
        ``settings`` with the chosen calculator (the same object where nothing changes).

    Raises
    ------
    ValueError
        The settings and the run name different calculators (both are named).
    """
    own = settings.calculator
    if calculator is not None and own is not None and own != calculator:
        raise ValueError(
            f"two calculators for {settings!s}: the settings name {own!r} and the run gives "
            f"calculator={calculator!r}; give one of them (calculator=None keeps the settings' "
            "own, or leave the settings' calculator unset)"
        )
    chosen = own if own is not None else calculator if calculator is not None else default
    return settings if chosen is own else dataclasses.replace(settings, calculator=chosen)


def _live_calculator(structure: Atoms) -> BaseCalculator | None:
    """The calculator attached to ``structure`` unless it is none or only holds results
    (a ``SinglePointCalculator``)."""
    calc = structure.calc
    return None if calc is None or isinstance(calc, SinglePointCalculator) else calc


def _pressure_advice(value: object) -> str:
    """What to write instead of the reference implementation's ``pressure=`` (eV/Å^3)."""
    per_ev = 1 / units.GPa
    if isinstance(value, int | float) and not isinstance(value, bool):
        instead = f"pressure_gpa={value * per_ev:.8g} (GPa)"
    else:
        instead = "pressure_gpa=<GPa>"
    return (
        "`pressure` is in eV/Å^3 in the reference package (assyst) and in ASE; here the "
        f"pressure is given in GPa: write {instead} (1 eV/Å^3 = {per_ev:.8g} GPa)"
    )


def _free_energy(calc: BaseCalculator, energy: float) -> float:
    """The free energy (eV) the calculator gave with ``energy``, or ``energy`` where it gave
    none (or a non-finite one): the two differ only for codes with electronic smearing, whose
    forces are derivatives of the free energy."""
    value = (getattr(calc, "results", None) or {}).get("free_energy")
    try:
        value = float(value)
    except (TypeError, ValueError):
        return energy
    return value if np.isfinite(value) else energy


def _single_point(result: Atoms) -> Atoms:
    """A clean copy of ``result`` (no constraints) with its energy, free energy (as the
    calculator gave them), forces and stress frozen."""
    calc = result.calc
    if calc is None:
        raise RelaxationError("the relaxation returned a structure without a calculator")
    energy = float(result.get_potential_energy(apply_constraint=False))
    forces = np.array(result.get_forces(apply_constraint=False), dtype=float)
    try:
        stress = np.array(result.get_stress(apply_constraint=False), dtype=float)
    except (PropertyNotImplementedError, NotImplementedError, ValueError):
        stress = None
    if not np.isfinite(energy) or not np.all(np.isfinite(forces)):
        raise RelaxationError(
            f"non-finite result: energy {energy}, forces finite: {bool(np.isfinite(forces).all())}",
            reason="non_finite",
        )
    clean = Atoms(
        numbers=result.numbers,
        positions=result.positions,
        cell=result.cell,
        pbc=result.pbc,
        info=dict(result.info),
    )
    results: dict[str, Any] = {
        "energy": energy,
        "free_energy": _free_energy(calc, energy),
        "forces": forces,
    }
    if stress is not None and np.all(np.isfinite(stress)):
        results["stress"] = stress
    clean.calc = SinglePointCalculator(clean, **results)
    return clean


@dataclass(frozen=True)
class CellRelax(Relax):
    """Relax the cell shape at constant volume; fractional positions stay fixed.

    ``str()`` is ``cell_relax``. The cell moves through ASE's ``FrechetCellFilter``
    (``constant_volume=True``) while ``FixAtoms`` holds every atom, so :func:`relax` refuses
    a structure without a 3D cell.

    Parameters
    ----------
    max_steps : int, default 100
        Optimiser steps at most (an int >= 0).
    force_tolerance : float, default 1e-3
        Converged when every force and the stress times the volume per atom are below it
        (eV/Å); a finite number > 0.
    algorithm : {"BFGS", "LBFGS", "FIRE"}, default "BFGS"
        The ASE optimiser, one of :data:`ALGORITHMS`.
    calculator : CalculatorConfig or ase.calculators.calculator.BaseCalculator or None, optional
        A calculator config (built where the relaxation runs) or a live ASE calculator (used in
        this process only). Default: none, each structure's own calculator, else EMT (see
        :class:`Relax`).
    alpha : float, default 20.0
        Initial Hessian guess of BFGS and LBFGS (eV/Å^2; unused by FIRE); a finite number > 0.
    maxstep : float or None, optional
        The longest step of one atom, or of one row of the cell filter's strain, per optimiser
        step (Å), in (0, 1]. Default: none, the optimiser's own (0.2 Å).

    Raises
    ------
    TypeError
        A field of the wrong type, as for :class:`Relax`.
    ValueError
        A field out of range, as for :class:`Relax`.
    """

    step_name: ClassVar[str] = "cell_relax"
    changes_cell: ClassVar[bool] = True

    def apply_filter_and_constraints(self, structure: Atoms) -> FrechetCellFilter:
        structure.set_constraint(FixAtoms(indices=range(len(structure))))
        return FrechetCellFilter(structure, constant_volume=True)


@refuse_keywords(pressure=_pressure_advice)
@dataclass(frozen=True)
class VolumeRelax(Relax):
    """Relax the volume only, at ``pressure_gpa`` (GPa); cell shape and fractional positions
    stay.

    ``str()`` is ``volume_relax`` (``volume_relax(pressure_gpa=...)`` at a non-zero pressure).
    The cell is scaled through ASE's ``FrechetCellFilter`` (``hydrostatic_strain=True``) while
    ``FixAtoms`` holds every atom, so :func:`relax` refuses a structure without a 3D cell.

    Parameters
    ----------
    max_steps : int, default 100
        Optimiser steps at most (an int >= 0).
    force_tolerance : float, default 1e-3
        Converged when every force and the stress times the volume per atom are below it
        (eV/Å); a finite number > 0.
    algorithm : {"BFGS", "LBFGS", "FIRE"}, default "BFGS"
        The ASE optimiser, one of :data:`ALGORITHMS`.
    calculator : CalculatorConfig or ase.calculators.calculator.BaseCalculator or None, optional
        A calculator config (built where the relaxation runs) or a live ASE calculator (used in
        this process only). Default: none, each structure's own calculator, else EMT (see
        :class:`Relax`).
    alpha : float, default 20.0
        Initial Hessian guess of BFGS and LBFGS (eV/Å^2; unused by FIRE); a finite number > 0.
    maxstep : float or None, optional
        The longest step of one atom, or of one row of the cell filter's strain, per optimiser
        step (Å), in (0, 1]. Default: none, the optimiser's own (0.2 Å).
    pressure_gpa : float, default 0.0
        External pressure (GPa; negative: tension), within ``±MAX_PRESSURE`` (1000 GPa);
        handed to ASE in eV/Å^3 (:attr:`~Relax.scalar_pressure`). A non-zero value appears in
        ``str()``. The reference's ``pressure=`` (eV/Å^3) is refused with a ``TypeError`` that
        gives the value in GPa.

    Raises
    ------
    TypeError
        A field of the wrong type, as for :class:`Relax`, or ``pressure=`` given (see
        ``pressure_gpa``).
    ValueError
        A field out of range, as for :class:`Relax`, or ``pressure_gpa`` not finite or beyond
        ``±MAX_PRESSURE``.
    """

    pressure_gpa: float = 0.0

    step_name: ClassVar[str] = "volume_relax"
    changes_cell: ClassVar[bool] = True

    def apply_filter_and_constraints(self, structure: Atoms) -> FrechetCellFilter:
        structure.set_constraint(FixAtoms(indices=range(len(structure))))
        return FrechetCellFilter(
            structure, hydrostatic_strain=True, scalar_pressure=self.scalar_pressure
        )


@refuse_keywords(pressure=_pressure_advice)
@dataclass(frozen=True)
class SymmetryRelax(Relax):
    """Relax positions and cell at ``pressure_gpa`` (GPa) keeping the space group (ASE
    FixSymmetry).

    ``str()`` is ``symmetry_relax`` (``symmetry_relax(pressure_gpa=...)`` at a non-zero
    pressure). The cell moves through ASE's ``FrechetCellFilter``, so :func:`relax` refuses a
    structure without a 3D cell.

    Parameters
    ----------
    max_steps : int, default 100
        Optimiser steps at most (an int >= 0).
    force_tolerance : float, default 1e-3
        Converged when every force and the stress times the volume per atom are below it
        (eV/Å); a finite number > 0.
    algorithm : {"BFGS", "LBFGS", "FIRE"}, default "BFGS"
        The ASE optimiser, one of :data:`ALGORITHMS`.
    calculator : CalculatorConfig or ase.calculators.calculator.BaseCalculator or None, optional
        A calculator config (built where the relaxation runs) or a live ASE calculator (used in
        this process only). Default: none, each structure's own calculator, else EMT (see
        :class:`Relax`).
    alpha : float, default 20.0
        Initial Hessian guess of BFGS and LBFGS (eV/Å^2; unused by FIRE); a finite number > 0.
    maxstep : float or None, optional
        The longest step of one atom, or of one row of the cell filter's strain, per optimiser
        step (Å), in (0, 1]. Default: none, the optimiser's own (0.2 Å).
    pressure_gpa : float, default 0.0
        External pressure (GPa; negative: tension), within ``±MAX_PRESSURE`` (1000 GPa);
        handed to ASE in eV/Å^3 (:attr:`~Relax.scalar_pressure`). A non-zero value appears in
        ``str()``. The reference's ``pressure=`` (eV/Å^3) is refused with a ``TypeError`` that
        gives the value in GPa.

    Raises
    ------
    TypeError
        A field of the wrong type, as for :class:`Relax`, or ``pressure=`` given (see
        ``pressure_gpa``).
    ValueError
        A field out of range, as for :class:`Relax`, or ``pressure_gpa`` not finite or beyond
        ``±MAX_PRESSURE``.
    """

    pressure_gpa: float = 0.0

    step_name: ClassVar[str] = "symmetry_relax"
    changes_cell: ClassVar[bool] = True

    def apply_filter_and_constraints(self, structure: Atoms) -> FrechetCellFilter:
        structure.set_constraint(FixSymmetry(structure))
        return FrechetCellFilter(structure, scalar_pressure=self.scalar_pressure)


@refuse_keywords(pressure=_pressure_advice)
@dataclass(frozen=True)
class FullRelax(Relax):
    """Relax positions and cell at ``pressure_gpa`` (GPa) without any constraint.

    ``str()`` is ``full_relax`` (``full_relax(pressure_gpa=...)`` at a non-zero pressure). The
    cell moves through ASE's ``FrechetCellFilter``, so :func:`relax` refuses a structure
    without a 3D cell.

    Parameters
    ----------
    max_steps : int, default 100
        Optimiser steps at most (an int >= 0).
    force_tolerance : float, default 1e-3
        Converged when every force and the stress times the volume per atom are below it
        (eV/Å); a finite number > 0.
    algorithm : {"BFGS", "LBFGS", "FIRE"}, default "BFGS"
        The ASE optimiser, one of :data:`ALGORITHMS`.
    calculator : CalculatorConfig or ase.calculators.calculator.BaseCalculator or None, optional
        A calculator config (built where the relaxation runs) or a live ASE calculator (used in
        this process only). Default: none, each structure's own calculator, else EMT (see
        :class:`Relax`).
    alpha : float, default 20.0
        Initial Hessian guess of BFGS and LBFGS (eV/Å^2; unused by FIRE); a finite number > 0.
    maxstep : float or None, optional
        The longest step of one atom, or of one row of the cell filter's strain, per optimiser
        step (Å), in (0, 1]. Default: none, the optimiser's own (0.2 Å).
    pressure_gpa : float, default 0.0
        External pressure (GPa; negative: tension), within ``±MAX_PRESSURE`` (1000 GPa);
        handed to ASE in eV/Å^3 (:attr:`~Relax.scalar_pressure`). A non-zero value appears in
        ``str()``. The reference's ``pressure=`` (eV/Å^3) is refused with a ``TypeError`` that
        gives the value in GPa.

    Raises
    ------
    TypeError
        A field of the wrong type, as for :class:`Relax`, or ``pressure=`` given (see
        ``pressure_gpa``).
    ValueError
        A field out of range, as for :class:`Relax`, or ``pressure_gpa`` not finite or beyond
        ``±MAX_PRESSURE``.
    """

    pressure_gpa: float = 0.0

    step_name: ClassVar[str] = "full_relax"
    changes_cell: ClassVar[bool] = True

    def apply_filter_and_constraints(self, structure: Atoms) -> FrechetCellFilter:
        return FrechetCellFilter(structure, scalar_pressure=self.scalar_pressure)


def _build_calculator(calculator: CalculatorConfig) -> None:
    """Build (and cache in this process) the calculator of ``calculator``."""
    get_calculator(calculator)


def _relax_chunk(
    settings: Relax, limit: TimeLimit, structures: Sequence[Atoms]
) -> list[tuple[Atoms | None, Drop | None]]:
    """Relax a chunk in one process; each item gives a result or the reason it failed
    (``time_limit`` when one structure takes longer than ``limit`` allows)."""
    if isinstance(settings.calculator, CalculatorConfig):
        # build (e.g. load) the calculator outside the limit; a failure shows per structure
        limit.prepare(_build_calculator, settings.calculator)
    out: list[tuple[Atoms | None, Drop | None]] = []
    for structure in structures:
        label = str(structure.info.get(UUID, structure.get_chemical_formula()))
        try:
            out.append((limit(settings, structure), None))
        except RelaxationError as error:
            out.append((None, Drop(label, error.reason, str(error))))
        except TimeLimitExceeded as error:
            out.append((None, Drop(label, "time_limit", str(error))))
        except WorkerDied as error:
            out.append((None, Drop(label, "calculator_error", str(error))))
    return out


Outcome = tuple[Atoms | None, Drop | None]
"""What became of one input structure: its result, or why there is none."""


@runtime_checkable
class OutcomeCache(Protocol):
    """Outcomes of a relaxation computed before, e.g. stored in a project: :func:`relax` takes
    what ``get`` knows and computes only the rest, handing each finished chunk to ``put``.

    Any object with these two methods is one (the protocol is runtime-checkable):

    - ``get(structures)`` gives, per structure, its stored :data:`Outcome` or ``None`` (to
      compute);
    - ``put(structures, outcomes)`` keeps the outcomes of a chunk as soon as it is done (so an
      interrupted run resumes at the structure).

    The outcomes must be what computing them with the same settings gives.
    """

    def get(self, structures: Sequence[Atoms]) -> list[Outcome | None]: ...

    def put(self, structures: Sequence[Atoms], outcomes: list[Outcome]) -> None: ...


def _check_sendable(items: Sequence[Atoms], settings: Relax) -> None:
    """``TypeError`` if a structure's own calculator (used with ``calculator=None``) cannot be
    pickled to the process that relaxes it, saying what to pass instead."""
    tried: dict[int, bool] = {}
    for position, structure in enumerate(items):
        calc = _live_calculator(structure)
        if calc is None:
            continue
        if id(calc) not in tried:
            try:
                pickle.dumps(calc)
                tried[id(calc)] = True
            except Exception:
                tried[id(calc)] = False
        if not tried[id(calc)]:
            name = type(calc).__name__
            raise TypeError(
                f"structure {position} carries its own {name} calculator, which {settings} "
                f"(calculator=None) would use, but it cannot be pickled to a worker process; "
                f"pass calculator= a config that builds it where it runs (e.g. "
                f"{type(settings).__name__}(calculator=EMT()), Morse(...), LennardJones(...), "
                "ImportedCalculator('package.module:Class', ...)) or relax with workers=1, no "
                "executor and no time_limit"
            )


def _lost(structure: Atoms, error: BaseException) -> Outcome:
    """The outcome of a structure whose chunk never came back (reason ``worker_lost``)."""
    label = str(structure.info.get(UUID, structure.get_chemical_formula()))
    return None, Drop(label, WORKER_LOST, f"{type(error).__name__}: {error}")


def relax(
    structures: Iterable[Atoms],
    settings: Relax,
    report: StageReport | None = None,
    workers: int = 1,
    executor: Executor | None = None,
    chunksize: int | None = None,
    progress: bool | None = None,
    time_limit: float | None = None,
    resubmit: int = 1,
    cache: OutcomeCache | None = None,
) -> list[Atoms]:
    """Relax every structure with ``settings``; return the results in input order.

    A structure whose calculator raises or returns non-finite energy/forces is left out and
    recorded in ``report`` with the reason; the others go on. The inputs are never modified.
    The results do not depend on ``workers``, ``executor`` or ``chunksize``.

    Parameters
    ----------
    structures : iterable of ase.Atoms
        The structures to relax; never modified.
    settings : Relax
        How to relax: a :class:`Relax` (or subclass, e.g. :class:`VolumeRelax`,
        :class:`FullRelax`, :class:`~assyst_nodes.stages.label.SinglePoint`) instance. Its
        ``str()`` is the step name of the results and the report's stage (unless that is
        already set).
    report : StageReport or None, optional
        A :class:`~assyst_nodes.reports.StageReport` that this run's counts (``n_in``,
        ``n_out``), drops (reasons ``calculator_error``, ``non_finite``, ``time_limit``,
        ``worker_lost``), flags (``not_converged``, ``reused``) and wall time (s) are added
        to; ``report.execution`` says where the chunks ran (executor, hosts, SLURM job ids).
        Default: none (no report).
    workers : int, default 1
        ``workers > 1`` fans out over that many local processes, in chunks; 1 relaxes in this
        process. An int >= 1.
    executor : concurrent.futures.Executor or None, optional
        An executor (e.g. ``executorlib.SingleNodeExecutor``) to use instead of local
        processes. Default: none.
    chunksize : int or None, optional
        Structures per chunk when fanned out (an int >= 1). Default: none, chosen by
        :func:`~assyst_nodes.runtime.fanout.auto_chunksize`.
    progress : bool or None, optional
        Show a progress bar. Default: none, only in terminals and notebooks (see
        :mod:`assyst_nodes.runtime.progress`).
    time_limit : float or None, optional
        Wall time (s) one structure may take; one that takes longer is dropped with reason
        ``time_limit`` (see :mod:`assyst_nodes.runtime.deadline` for how, and for what a hang
        inside compiled code needs). Default: none (no limit).
    resubmit : int, default 1
        Times a chunk whose worker process or scheduler job was lost (died, was cancelled, ran
        out of wall time) is sent again (an int >= 0); then its structures are dropped with
        reason ``worker_lost``.
    cache : OutcomeCache or None, optional
        Outcomes stored before (see :class:`OutcomeCache`) are taken from it, not computed
        (counted as ``reused`` in ``report.flags``), and each computed chunk is handed to it.
        Default: none (compute everything).

    Returns
    -------
    list of ase.Atoms
        The results, in input order, without the structures left out. Each is a new
        structure (new uuid, step ``str(settings)``, the input as parent in its lineage,
        no constraints) with a ``SinglePointCalculator`` holding energy and free energy (eV),
        forces (eV/Å) and, where the calculator gives a finite one, stress (eV/Å^3, ASE's
        Voigt order), and ``info["relax_converged"]`` (a single point keeps the input's);
        unconverged results are kept and counted as ``not_converged`` in ``report.flags``.

    Raises
    ------
    TypeError
        Before any work: ``settings`` is not a :class:`Relax`, an item is not ``Atoms`` or,
        with ``settings.calculator=None``, a structure's own calculator cannot be pickled to
        the worker processes (or ``executor``) that would need it; ``time_limit`` is not a
        number.
    ImportError
        Before any work: a calculator path that does not import.
    ValueError
        Before any work: a structure periodic along zero or dependent cell vectors, or
        without a 3D cell when ``settings`` moves the cell; ``workers``, ``chunksize``,
        ``resubmit`` or ``time_limit`` out of range.
    """
    if not isinstance(settings, Relax):
        raise TypeError(
            f"settings must be a Relax (Relax(), VolumeRelax(), ...), got {settings!r}"
        )
    check_workers(workers, chunksize)
    check_resubmit(resubmit)
    if isinstance(settings.calculator, CalculatorConfig):
        settings.calculator.check()
    items = periodic_cells(structure_list(structures))
    if settings.changes_cell:
        with_cells(items, str(settings))
    if settings.calculator is None and (
        workers != 1
        or executor is not None
        or (time_limit is not None and threading.current_thread() is not threading.main_thread())
    ):
        _check_sendable(items, settings)
    start = time.perf_counter()
    known: list[Outcome | None] = [None] * len(items) if cache is None else cache.get(items)
    todo = [item for item, outcome in zip(items, known, strict=True) if outcome is None]
    with TimeLimit(time_limit) as limit:
        computed = iter(
            map_chunks(
                _relax_chunk,
                (settings, limit),
                todo,
                workers=workers,
                executor=executor,
                chunksize=chunksize,
                description=str(settings),
                progress=progress,
                resubmit=resubmit,
                lost=_lost,
                on_chunk=None if cache is None else cache.put,
                execution=None if report is None else report.execution,
            )
        )
    outcomes = [next(computed) if outcome is None else outcome for outcome in known]
    results = [result for result, _ in outcomes if result is not None]
    if report is not None:
        report.stage = report.stage or str(settings)
        report.n_in += len(items)
        report.n_out += len(results)
        for _, drop in outcomes:
            if drop is not None:
                report.drops.append(drop)
        # a single point keeps its parent's flag: not this stage's verdict, so not counted
        unconverged = sum(not r.info.get(RELAX_CONVERGED, True) for r in results)
        if unconverged and settings.optimises:
            report.flag("not_converged", unconverged)
        reused = len(items) - len(todo)
        if reused:
            report.flag("reused", reused)
        report.seconds += time.perf_counter() - start
    return results
