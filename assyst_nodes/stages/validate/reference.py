"""The reference half of a validation: the suite's structures labelled, and its properties
computed, once with the reference calculator (:func:`reference_suite`)."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import BaseCalculator

from ...calculators import CalculatorConfig, get_calculator
from ...validation import structure_list
from . import compute
from .suite import CUBIC, Suite, at_volume, cubic_cell, prototype, volume_guess

__all__ = ["SuiteReference", "calculator_name", "overlaps", "reference_suite"]


def calculator_name(calculator: CalculatorConfig | BaseCalculator) -> str:
    """How reports name a calculator: ``str()`` of a config, the class name of a live one.

    Parameters
    ----------
    calculator : CalculatorConfig or ase.calculators.calculator.BaseCalculator
        A config or a live ASE calculator.

    Returns
    -------
    str
        E.g. ``"emt"`` for ``EMT()``, ``"EMT"`` for ``ase.calculators.emt.EMT()``.
    """
    if isinstance(calculator, CalculatorConfig):
        return str(calculator)
    return type(calculator).__name__


@dataclass(frozen=True, eq=False)
class SuiteReference:
    """The suite labelled with the reference calculator; made by :func:`reference_suite`.

    Picklable; :func:`~assyst_nodes.stages.validate.validate` compares any number of
    calculators with it.

    Parameters
    ----------
    suite : Suite
        What the suite holds.
    reference : str
        The reference calculator's name (see :func:`calculator_name`).
    structures : tuple of ase.Atoms
        The structures on which energies and forces are compared (no calculators); each
        has ``info["group"]`` (e.g. ``"ev:fcc:Cu"``, ``"rattle:fcc:Cu"``, ``"vacancy:Cu"``,
        ``"md:liquid"``),
        ``info["subject"]`` and ``info["domain"]`` (``"near"`` or ``"transfer"``).
    energies : numpy.ndarray
        The reference's energy per atom of each structure (eV/atom); NaN where it failed.
    forces : tuple of numpy.ndarray
        The reference's forces of each structure (eV/Å, atoms x 3); NaN where it failed.
    properties : dict
        The reference's properties: ``"eos"`` (subject to ``{"V0", "E0", "B0"}`` in
        Å^3/atom, eV/atom, GPa), ``"ground_state"`` (element to its cubic phase),
        ``"elastic"`` (element to ``{"C11", "C12", "C44"}`` in GPa), ``"phonons"`` (element
        to the band path and frequencies in THz), ``"vacancy"`` (element to the formation
        energy in eV).
    failures : tuple of tuple of str, optional
        ``(where, message)`` of each reference calculation that failed. Default: none.
    seconds : float, default 0.0
        Wall time :func:`reference_suite` took (s).
    """

    suite: Suite
    reference: str
    structures: tuple[Atoms, ...]
    energies: np.ndarray
    forces: tuple[np.ndarray, ...]
    properties: dict[str, Any]
    failures: tuple[tuple[str, str], ...] = field(default=())
    seconds: float = 0.0

    def __str__(self) -> str:
        groups = len({a.info["group"] for a in self.structures})
        return (f"reference of {self.suite} with {self.reference}: {len(self.structures)} "
                f"structures in {groups} groups, {len(self.failures)} failed, "
                f"{self.seconds:.1f} s")

    def groups(self) -> list[str]:
        """The groups of the structures, in suite order.

        Returns
        -------
        list of str
            E.g. ``["ev:fcc:Cu", ..., "vacancy:Cu", "md:solid", "md:liquid"]``.
        """
        return list(dict.fromkeys(a.info["group"] for a in self.structures))


def _tag(atoms: Atoms, group: str, subject: str, domain: str) -> Atoms:
    atoms = atoms.copy()
    atoms.calc = None
    atoms.info.update({"group": group, "subject": subject, "domain": domain})
    return atoms


def reference_suite(suite: Suite, reference: CalculatorConfig | BaseCalculator) -> SuiteReference:
    """Build the suite's structures and label them, and its properties, with ``reference``.

    For each crystal (:meth:`Suite.subjects`) the equilibrium volume is found with the
    reference (a coarse scan, then a Birch-Murnaghan fit); its E-V structures are
    ``volume_points`` volumes from (1 - ``volume_range``) V0 to (1 + ``volume_range``) V0,
    fitted again for V0 (Å^3/atom), E0 (eV/atom) and B0 (GPa). Each element's ground state
    is its cubic phase of lowest E0; at its V0 come the elastic constants, phonons and
    vacancy (see :class:`Suite`). The MD snapshots (solid and liquid random alloy) are run
    once here, seeded, with the reference.

    Parameters
    ----------
    suite : Suite
        What to compute.
    reference : CalculatorConfig or ase.calculators.calculator.BaseCalculator
        The reference calculator (e.g. ``EMT()``, later DFT).

    Returns
    -------
    SuiteReference
        The structures with the reference's energies and forces, and its properties. A
        calculation that fails is recorded in ``failures`` (and gives NaN), never fatal.

    Raises
    ------
    TypeError
        ``suite`` is not a :class:`Suite` or ``reference`` not a calculator.
    """
    if not isinstance(suite, Suite):
        raise TypeError(f"suite must be Suite(elements=(...), ...), got {suite!r}")
    start = time.perf_counter()
    calculator = get_calculator(reference)
    structures: list[Atoms] = []
    failures: list[tuple[str, str]] = []
    eos: dict[str, dict[str, float]] = {}
    for subject in suite.subjects():
        proto = prototype(subject.structure, subject.symbols)
        volumes, _ = compute.find_equilibrium(
            calculator, proto, volume_guess(subject), suite, at_volume)
        domain = "near" if subject.near else "transfer"
        for volume in volumes:
            structures.append(_tag(at_volume(proto, volume), f"ev:{subject.label}",
                                   subject.label, domain))
        eos[subject.label] = {"V0": math.nan, "E0": math.nan, "B0": math.nan}
    energies, forces = label(calculator, structures, failures)
    for label_ in eos:
        chosen = [i for i, a in enumerate(structures) if a.info["subject"] == label_]
        volumes = np.array([structures[i].get_volume() / len(structures[i]) for i in chosen])
        v0, e0, b0 = compute.fit_eos(volumes, energies[chosen])
        eos[label_] = {"V0": v0, "E0": e0, "B0": b0}
        if not math.isfinite(v0):
            failures.append((f"eos:{label_}", "no equilibrium (Birch-Murnaghan fit failed)"))
    ground = ground_states(suite, eos)
    properties: dict[str, Any] = {"eos": eos, "ground_state": ground, "elastic": {},
                                  "phonons": {}, "vacancy": {}}
    extra: list[Atoms] = []
    if "fcc" in suite.phases:
        for index, element in enumerate(suite.elements):
            v0 = eos[f"fcc:{element}"]["V0"]
            if not math.isfinite(v0):
                continue
            cell = cubic_cell(element, "fcc", v0).repeat(2)
            rng = np.random.default_rng([suite.seed, 3, index])
            for _ in range(suite.rattle_snapshots):
                rattled = cell.copy()
                rattled.positions += rng.normal(0.0, suite.rattle_amplitude, (len(cell), 3))
                extra.append(_tag(rattled, f"rattle:fcc:{element}", f"fcc:{element}", "near"))
    for element, phase in ground.items():
        v0 = eos[f"{phase}:{element}"]["V0"]
        results = element_properties(calculator, suite, element, phase, v0, failures)
        for key in ("elastic", "phonons", "vacancy"):
            if key in results:
                properties[key][element] = results[key]
        subject = f"{phase}:{element}"
        for atoms in results.get("vacancy_cells", ()):
            extra.append(_tag(atoms, f"vacancy:{element}", subject, "transfer"))
    if suite.md_snapshots:
        first = suite.elements[0]
        phase = ground[first]
        volume = float(np.nanmean([eos[f"{ground[e]}:{e}"]["V0"] for e in suite.elements]))
        if math.isfinite(volume):
            start_cell = compute.md_cell(suite, phase, volume)
            for kind, liquid in (("solid", False), ("liquid", True)):
                try:
                    snapshots = compute.md_snapshots(calculator, start_cell, suite, liquid)
                except compute.CalculationError as error:
                    failures.append((f"md:{kind}", str(error)))
                    continue
                extra.extend(_tag(a, f"md:{kind}", f"md:{kind}", "transfer") for a in snapshots)
        else:
            failures.append(("md", "no equilibrium volume of the ground states"))
    more_energies, more_forces = label(calculator, extra, failures)
    return SuiteReference(
        suite=suite,
        reference=calculator_name(reference),
        structures=tuple(structures + extra),
        energies=np.concatenate([energies, more_energies]),
        forces=tuple(forces + more_forces),
        properties=properties,
        failures=tuple(failures),
        seconds=time.perf_counter() - start,
    )


def label(calculator: BaseCalculator, structures: list[Atoms],
          failures: list[tuple[str, str]]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Energies per atom (eV/atom) and forces (eV/Å) of ``structures``; NaN (and an entry in
    ``failures``, ``(group:index, message)``) where a calculation fails."""
    energies = np.full(len(structures), math.nan)
    forces = []
    for i, atoms in enumerate(structures):
        try:
            energies[i], f = compute.single_point(calculator, atoms)
        except compute.CalculationError as error:
            f = np.full((len(atoms), 3), math.nan)
            failures.append((f"{atoms.info.get('group', '')}:{i}", str(error)))
        forces.append(f)
    return energies, forces


def ground_states(suite: Suite, eos: dict[str, dict[str, float]]) -> dict[str, str]:
    """Each element's cubic phase of lowest E0 (eV/atom) out of ``suite.phases``; the first
    cubic phase of the suite where no fit succeeded."""
    out = {}
    cubic = [p for p in suite.phases if p in CUBIC]
    for element in suite.elements:
        energies = [eos[f"{p}:{element}"]["E0"] for p in cubic]
        finite = [e if math.isfinite(e) else math.inf for e in energies]
        out[element] = cubic[int(np.argmin(finite))]
    return out


def element_properties(calculator: BaseCalculator, suite: Suite, element: str, phase: str,
                       volume: float, failures: list[tuple[str, str]]) -> dict[str, Any]:
    """Elastic constants, phonons and vacancy of ``element`` in its ground ``phase`` at
    ``volume`` (Å^3/atom), as the suite asks; a failure is recorded and leaves its key out."""
    results: dict[str, Any] = {}
    subject = f"{phase}:{element}"
    if not math.isfinite(volume):
        failures.append((subject, "no equilibrium volume: no elastic constants, phonons, vacancy"))
        return results
    if suite.elastic:
        try:
            results["elastic"] = compute.elastic_constants(
                calculator, element, phase, volume, suite.elastic_strain)
        except compute.CalculationError as error:
            failures.append((f"elastic:{subject}", str(error)))
    if suite.phonons:
        try:
            results["phonons"] = compute.phonon_bands(calculator, element, phase, volume, suite)
        except compute.CalculationError as error:
            failures.append((f"phonons:{subject}", str(error)))
    if suite.vacancy_repeat:
        try:
            energy, unrelaxed, relaxed = compute.vacancy(calculator, element, phase, volume, suite)
            results["vacancy"] = energy
            results["vacancy_cells"] = (unrelaxed, relaxed)
        except compute.CalculationError as error:
            failures.append((f"vacancy:{subject}", str(error)))
    return results


def overlaps(training_structures: Iterable[Atoms], reference: SuiteReference,
             tolerance: float = 1e-4) -> list[tuple[int, int, str]]:
    """Suite structures equal to a training structure: same atomic numbers in the same order,
    cells within ``tolerance`` and positions within ``tolerance`` (modulo the cell).

    Parameters
    ----------
    training_structures : iterable of ase.Atoms
        The training set.
    reference : SuiteReference
        The labelled suite.
    tolerance : float, default 1e-4
        Largest difference of a cell component or a position (Å).

    Returns
    -------
    list of tuple of (int, int, str)
        ``(training index, suite index, suite group)`` of each equal pair; empty where the
        suite is held out.

    Raises
    ------
    TypeError
        An item of ``training_structures`` is not ``Atoms``.
    """
    training = structure_list(training_structures)
    found = []
    by_size: dict[tuple[int, tuple[int, ...]], list[int]] = {}
    for j, atoms in enumerate(reference.structures):
        by_size.setdefault((len(atoms), tuple(atoms.numbers)), []).append(j)
    for i, atoms in enumerate(training):
        for j in by_size.get((len(atoms), tuple(atoms.numbers)), []):
            other = reference.structures[j]
            if not np.allclose(atoms.cell[:], other.cell[:], atol=tolerance, rtol=0):
                continue
            delta = atoms.get_scaled_positions(wrap=True) - other.get_scaled_positions(wrap=True)
            delta -= np.round(delta)
            if np.abs(delta @ other.cell[:]).max() <= tolerance:
                found.append((i, j, str(other.info["group"])))
    return found
