"""The computations of the suite with one calculator: single points, E-V fits, elastic
constants, phonons, the vacancy and the MD snapshots.

Energies in eV (per atom where said), forces in eV/Å, volumes in Å^3/atom, moduli in GPa,
frequencies in THz. Every function takes a live ASE calculator.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
from ase import Atoms, units
from ase.calculators.calculator import BaseCalculator
from ase.eos import EquationOfState

from .suite import LIQUID_EXPANSION, Suite, band_path, cubic_cell, primitive_cell

__all__: list[str] = []

_SCAN = np.geomspace(1 / 1.6, 1.6, 13)
"""Volume factors of the coarse scan for the reference's equilibrium."""


class CalculationError(RuntimeError):
    """A calculator raised or gave a non-finite energy or forces."""


def single_point(calculator: BaseCalculator, atoms: Atoms) -> tuple[float, np.ndarray]:
    """Energy per atom (eV/atom) and forces (eV/Å) of ``atoms``; ``CalculationError`` if the
    calculator raises or gives non-finite values."""
    work = atoms.copy()
    work.calc = calculator
    try:
        energy = float(work.get_potential_energy())
        forces = np.array(work.get_forces(), dtype=float)
    except Exception as error:  # any failure of the calculator is recorded, not fatal
        raise CalculationError(f"{type(error).__name__}: {error}") from error
    finally:
        work.calc = None
    if not math.isfinite(energy) or not np.all(np.isfinite(forces)):
        raise CalculationError("non-finite energy or forces")
    return energy / len(atoms), forces


def energy_per_atom(calculator: BaseCalculator, atoms: Atoms) -> float:
    """Energy per atom (eV/atom), NaN where the calculation fails."""
    try:
        return single_point(calculator, atoms)[0]
    except CalculationError:
        return math.nan


def fit_eos(volumes: np.ndarray, energies: np.ndarray) -> tuple[float, float, float]:
    """Birch-Murnaghan fit: ``(V0 Å^3/atom, E0 eV/atom, B0 GPa)``; NaNs if it fails or V0
    lies far outside the volumes (below 0.8 of the smallest or above 1.25 of the largest)."""
    volumes = np.asarray(volumes, dtype=float)
    energies = np.asarray(energies, dtype=float)
    good = np.isfinite(energies)
    if good.sum() < 5:
        return math.nan, math.nan, math.nan
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            v0, e0, b0 = EquationOfState(volumes[good], energies[good], eos="birchmurnaghan").fit()
    except Exception:  # a fit that fails gives no equilibrium
        return math.nan, math.nan, math.nan
    v0, e0, b0 = float(v0), float(e0), float(b0) / units.GPa
    if not (np.isfinite([v0, e0, b0]).all() and 0.8 * volumes.min() < v0 < 1.25 * volumes.max()):
        return math.nan, math.nan, math.nan
    return v0, e0, b0


def grid(center: float, suite: Suite) -> np.ndarray:
    """The suite's volumes (Å^3/atom) around ``center``."""
    return center * (1 + np.linspace(-suite.volume_range, suite.volume_range, suite.volume_points))


def find_equilibrium(calculator: BaseCalculator, proto: Atoms, guess: float, suite: Suite,
                     at_volume: Any) -> tuple[np.ndarray, np.ndarray]:
    """The E-V window of ``proto`` centred on ``calculator``'s equilibrium: a coarse scan (up
    to three, following a minimum at the edge), a fit near its minimum, then the suite's
    window, re-centred once on its own fit if that lies more than 0.5 % off.

    Returns the window's volumes (Å^3/atom) and energies (eV/atom, NaN where failed).
    """
    center = guess
    for _ in range(3):
        volumes = center * _SCAN
        energies = np.array([energy_per_atom(calculator, at_volume(proto, v)) for v in volumes])
        if not np.isfinite(energies).any():
            break
        low = int(np.nanargmin(energies))
        center = float(volumes[low])
        if 0 < low < len(volumes) - 1:
            part = slice(max(low - 3, 0), low + 4)
            v0 = fit_eos(volumes[part], energies[part])[0]
            if math.isfinite(v0):
                center = v0
            break
    for attempt in range(2):
        volumes = grid(center, suite)
        energies = np.array([energy_per_atom(calculator, at_volume(proto, v)) for v in volumes])
        v0 = fit_eos(volumes, energies)[0]
        if attempt or not math.isfinite(v0) or abs(v0 / center - 1) < 0.005:
            break
        center = v0
    return volumes, energies


def _relax_positions(atoms: Atoms, calculator: BaseCalculator, fmax: float, steps: int) -> None:
    """Relax ``atoms``' positions in place at fixed cell (LBFGS, at most ``steps`` steps;
    LBFGS, not BFGS: no eigendecomposition of a 3N x 3N Hessian per step)."""
    from ase.optimize import LBFGS

    atoms.calc = calculator
    if steps > 0 and np.abs(atoms.get_forces()).max() > fmax:
        LBFGS(atoms, logfile=None, maxstep=0.1).run(fmax=fmax, steps=steps)


def elastic_constants(calculator: BaseCalculator, element: str, phase: str, volume: float,
                      strain: float) -> dict[str, float]:
    """C11, C12, C44 (GPa) of the cubic ``phase`` at ``volume`` (Å^3/atom).

    Energy-strain route: Lagrangian strains η = x diag(1,0,0), x diag(1,1,0) and
    2η_yz = x, five x from -``strain`` to ``strain``; E/V0 fitted by a parabola whose
    curvature gives C11, C11 + C12 and C44 (the linear term, the residual stress, drops
    out). Positions relax at each strain (internal relaxation, diamond) where forces exceed
    1e-4 eV/Å. Raises ``CalculationError`` where a calculation fails.
    """
    cell0 = cubic_cell(element, phase, volume)
    v0 = cell0.get_volume()
    xs = np.linspace(-strain, strain, 5)
    curvature = {}
    for name, pattern in {
        "e1": np.diag([1.0, 0.0, 0.0]),
        "e2": np.diag([1.0, 1.0, 0.0]),
        "e4": np.array([[0, 0, 0], [0, 0, 0.5], [0, 0.5, 0]]),
    }.items():
        energies = []
        for x in xs:
            eta = x * pattern
            values, vectors = np.linalg.eigh(np.eye(3) + 2 * eta)
            deformation = vectors @ np.diag(np.sqrt(values)) @ vectors.T
            atoms = cell0.copy()
            atoms.set_cell(cell0.cell[:] @ deformation, scale_atoms=True)
            try:
                _relax_positions(atoms, calculator, 1e-4, 50)
            except Exception as error:
                raise CalculationError(f"{type(error).__name__}: {error}") from error
            energies.append(single_point(calculator, atoms)[0] * len(atoms) / v0)
        curvature[name] = float(np.polyfit(xs, energies, 2)[0]) / units.GPa
    c11 = 2 * curvature["e1"]
    return {"C11": c11, "C12": curvature["e2"] - c11, "C44": 2 * curvature["e4"]}


def phonon_bands(calculator: BaseCalculator, element: str, phase: str, volume: float,
                 suite: Suite) -> dict[str, Any]:
    """Phonon frequencies (THz) along the band path of the cubic ``phase`` at ``volume``.

    phonopy finite displacements (``suite.phonon_displacement`` Å) in the conventional cell
    repeated ``suite.phonon_repeat`` times. Returns ``labels`` (special points), ``special_x``
    and ``x`` (path coordinate, 1/Å), ``qpoints`` (reduced, of the primitive cell) and
    ``frequencies`` (q-points x bands, THz). Raises ``CalculationError`` where a force
    calculation fails.
    """
    from phonopy import Phonopy
    from phonopy.structure.atoms import PhonopyAtoms

    primitive = primitive_cell(element, phase, volume)
    conventional = cubic_cell(element, phase, volume)
    to_conventional = np.rint(conventional.cell[:] @ np.linalg.inv(primitive.cell[:])).astype(int)
    unit = PhonopyAtoms(symbols=primitive.get_chemical_symbols(), cell=primitive.cell[:],
                        scaled_positions=primitive.get_scaled_positions())
    phonon = Phonopy(unit, supercell_matrix=suite.phonon_repeat * to_conventional,
                     primitive_matrix=None, log_level=0)
    phonon.generate_displacements(distance=suite.phonon_displacement)
    forces = []
    for cell in phonon.supercells_with_displacements:
        atoms = Atoms(cell.symbols, cell=cell.cell, scaled_positions=cell.scaled_positions,
                      pbc=True)
        forces.append(single_point(calculator, atoms)[1])
    phonon.forces = forces
    phonon.produce_force_constants()
    path = primitive.cell.bandpath(band_path(phase), npoints=suite.phonon_points)
    x, special_x, labels = path.get_linear_kpoint_axis()
    frequencies = phonon.run_qpoints(path.kpts).frequencies
    if not np.all(np.isfinite(frequencies)):
        raise CalculationError("non-finite phonon frequencies")
    return {
        "labels": [str(label) for label in labels],
        "special_x": [float(v) for v in special_x],
        "x": np.asarray(x, dtype=float),
        "qpoints": np.asarray(path.kpts, dtype=float),
        "frequencies": np.asarray(frequencies, dtype=float),
    }


def vacancy(calculator: BaseCalculator, element: str, phase: str, volume: float,
            suite: Suite) -> tuple[float, Atoms, Atoms]:
    """Vacancy formation energy (eV) in the conventional cell of ``phase`` at ``volume``
    repeated ``suite.vacancy_repeat`` times: E(N-1) - (N-1)/N E(N), positions relaxed at fixed
    cell (LBFGS, at most ``suite.vacancy_steps`` steps to ``suite.vacancy_fmax`` eV/Å).

    Returns the energy and the unrelaxed and relaxed cells with the vacancy (no calculator).
    Raises ``CalculationError`` where a calculation fails.
    """
    perfect = cubic_cell(element, phase, volume).repeat(suite.vacancy_repeat)
    n = len(perfect)
    e_perfect = single_point(calculator, perfect)[0] * n
    unrelaxed = perfect.copy()
    del unrelaxed[0]
    relaxed = unrelaxed.copy()
    try:
        _relax_positions(relaxed, calculator, suite.vacancy_fmax, suite.vacancy_steps)
    except Exception as error:
        raise CalculationError(f"{type(error).__name__}: {error}") from error
    relaxed.calc = None
    e_vacancy = single_point(calculator, relaxed)[0] * (n - 1)
    return e_vacancy - (n - 1) / n * e_perfect, unrelaxed, relaxed


def md_cell(suite: Suite, phase: str, volume: float) -> Atoms:
    """The random alloy of the MD: the conventional cell of the cubic ``phase`` at ``volume``
    (Å^3/atom), repeated to at least ``suite.md_atoms`` atoms, the sites dealt out as evenly as
    possible to the elements in an order drawn with ``suite.seed``."""
    conventional = cubic_cell(suite.elements[0], phase, volume)
    repeat = math.ceil((suite.md_atoms / len(conventional)) ** (1 / 3) - 1e-9)
    atoms = conventional.repeat(repeat)
    n, k = len(atoms), len(suite.elements)
    symbols = [suite.elements[i % k] for i in range(n)]
    rng = np.random.default_rng([suite.seed, 0])
    atoms.set_chemical_symbols([symbols[i] for i in rng.permutation(n)])
    return atoms


def md_snapshots(calculator: BaseCalculator, start: Atoms, suite: Suite, liquid: bool
                 ) -> list[Atoms]:
    """Snapshots of a Langevin run of ``start`` (solid or liquid, see :class:`Suite`), seeded
    with ``suite.seed``; no calculator on them. Raises ``CalculationError`` if the run fails.

    The liquid cell is ``start`` expanded to :data:`LIQUID_EXPANSION` times its volume and
    melted for the first half of ``suite.md_equilibration`` at twice the liquid temperature
    (a small periodic crystal superheats for picoseconds otherwise).
    """
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

    atoms = start.copy()
    temperature = suite.liquid_temperature if liquid else suite.solid_temperature
    first = 2 * temperature if liquid else temperature
    melt = suite.md_equilibration // 2 if liquid else 0
    if liquid:
        atoms.set_cell(atoms.cell[:] * LIQUID_EXPANSION ** (1 / 3), scale_atoms=True)
    rng = np.random.default_rng([suite.seed, 2 if liquid else 1])
    snapshots = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # ase 3.29 renames the function
        MaxwellBoltzmannDistribution(atoms, temperature_K=first, rng=rng)
    atoms.set_momenta(atoms.get_momenta() - atoms.get_momenta().mean(axis=0))
    atoms.calc = calculator
    try:
        dynamics = Langevin(atoms, timestep=suite.md_timestep * units.fs, temperature_K=first,
                            friction=0.02 / units.fs, fixcm=False, rng=rng, logfile=None)
        dynamics.run(melt)
        dynamics.set_temperature(temperature_K=temperature)
        dynamics.run(suite.md_equilibration - melt)
        for _ in range(suite.md_snapshots):
            dynamics.run(suite.md_steps)
            snapshots.append(Atoms(atoms.get_chemical_symbols(), positions=atoms.get_positions(),
                                   cell=atoms.cell[:], pbc=True))
    except Exception as error:
        raise CalculationError(f"{type(error).__name__}: {error}") from error
    finally:
        atoms.calc = None
    return snapshots
