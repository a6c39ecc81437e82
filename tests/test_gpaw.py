"""GPAW plane-wave DFT labels (:mod:`assyst_nodes.calculators.dft`): real SCF runs, cheap settings.

The calculations need GPAW (``apt-get install -y libxc-dev libopenblas-dev``, then
``CC=g++ pip install gpaw gpaw-data``); without it they skip with the reason, except under CI
(``CI=true``), where a missing GPAW fails them. Config validation runs everywhere. Settings are
far below production (200 eV, 1 k-point per Å⁻¹): a one-atom Cu cell takes about 1 s.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import pickle
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.calculator import kptdensity2monkhorstpack
from services import in_ci

from assyst_nodes.calculators.dft import GPAW, INSTALL_HINT, SCF_NOT_CONVERGED, GPAWCalculator
from assyst_nodes.lineage import LINEAGE, UUID, update_uuid
from assyst_nodes.reports import StageReport
from assyst_nodes.stages.isolated import IsolatedAtoms
from assyst_nodes.stages.label import label

CHEAP = GPAW(cutoff=200.0, kpoint_density=1.0)
"""Cu primitive cell: 4x4x4 Γ-centred mesh, 9 SCF iterations, about 1 s on one core."""


def _require_gpaw() -> None:
    """Skip (with the reason, printed) when GPAW or its setups are missing; fail under CI."""
    try:
        importlib.import_module("gpaw")
        CHEAP.check()
    except (ImportError, FileNotFoundError) as error:
        reason = f"GPAW is not usable here ({error}); install it with: {INSTALL_HINT}"
        if in_ci():
            pytest.fail(f"{reason} (CI=true: GPAW is required, not skipped)", pytrace=False)
        print(reason)
        pytest.skip(reason)


def copper(key: int = 0) -> Atoms:
    """One-atom fcc Cu cell (a = 3.61 Å) with a fixture uuid."""
    return update_uuid(bulk("Cu"), "fixture", key)


@pytest.fixture(scope="module")
def labelled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Atoms, Atoms, Path]]:
    """(input, its label with :data:`CHEAP`, the log directory): labelled once per module."""
    _require_gpaw()
    logs = tmp_path_factory.mktemp("gpaw_logs")
    config = dataclasses.replace(CHEAP, txt=str(logs / "{uuid}-{formula}.txt"))
    structure = copper()
    report = StageReport()
    out = label([structure], config, report=report, progress=False, isolated=None)
    assert report.drops == [] and len(out) == 1
    yield structure, out[0], logs


def test_isolated_atom_is_spin_polarised_in_its_box_with_the_label_settings() -> None:
    _require_gpaw()
    (bulk_label, atom) = label([copper()], CHEAP, isolated=IsolatedAtoms(box=7.0), progress=False)
    assert atom.info["config_type"] == "IsolatedAtom" and len(atom) == 1
    assert np.allclose(atom.cell, np.eye(3) * 7.0)
    # GPAW turns spin polarisation on for the Hund's-rule initial moment of 1 μB: the atom's
    # free energy is lower than without it (by ~0.07 eV at these settings, 7 Å, 200 eV)
    unpolarised = IsolatedAtoms(box=7.0, spin_polarized=False)
    (_, flat) = label([copper()], CHEAP, isolated=unpolarised, progress=False)
    assert atom.calc.results["free_energy"] < flat.calc.results["free_energy"] - 0.02
    energies = atom.calc.results
    assert math.isfinite(energies["energy"]) and math.isfinite(energies["free_energy"])
    # the cohesive energy (free energies, eV/atom) is positive and of the right size
    cohesive = energies["free_energy"] - bulk_label.calc.results["free_energy"]
    assert 2.0 < cohesive < 6.0


def test_exported_energy_is_consistent_with_the_forces_under_smearing(tmp_path: Path) -> None:
    """Two single points of a distorted 2-atom cell, atom 0 moved by ±5 mÅ along x: the exported
    energy difference must equal minus the work of the forces (trapezoid rule). GPAW's
    ``energy`` (extrapolated to zero smearing) fails this by ~6e-4 eV, ``free_energy`` meets it
    to ~1e-5 eV (measured with these settings)."""
    from ase.io import read

    from assyst_nodes.io.fitting import write_labelled_extxyz

    _require_gpaw()
    config = GPAW(cutoff=200.0, kpoint_density=0.5, smearing=0.1)
    pair = []
    for key, sign in enumerate((-1, 1)):
        atoms = bulk("Cu", "fcc", a=3.6) * (2, 1, 1)
        atoms.positions[1] += [0.07, -0.04, 0.03]
        atoms.positions[0, 0] += sign * 0.005
        pair.append(update_uuid(atoms, "fixture", 10 + key))
    out = label(pair, config, duplicates=None, isolated=None, progress=False)
    assert len(out) == 2
    forces = [a.calc.results["forces"] for a in out]
    work = -0.01 * (forces[0][0, 0] + forces[1][0, 0]) / 2  # -∫F·dx, eV
    gap = {}
    for kind in ("free_energy", "energy"):
        path = tmp_path / f"{kind}.extxyz"
        write_labelled_extxyz(out, path, energy=kind, weights=None)
        written = [a.info["REF_energy"] for a in read(path, index=":")]
        assert written == [a.calc.results[kind] for a in out]  # as the calculator gave it
        gap[kind] = abs(written[1] - written[0] - work)
    assert gap["free_energy"] < 1e-4 < gap["energy"]
    default = tmp_path / "default.extxyz"
    write_labelled_extxyz(out, default)
    assert [a.info["REF_energy"] for a in read(default, index=":")] == [
        a.calc.results["free_energy"] for a in out
    ]


def test_labels_a_one_atom_copper_cell(labelled: tuple[Atoms, Atoms, Path]) -> None:
    structure, result, logs = labelled
    assert result.info[LINEAGE][-1] == structure.info[UUID]
    energy = result.get_potential_energy()  # eV, relative to GPAW's reference atoms
    assert math.isfinite(energy) and -3.0 < energy < 0.0
    forces = result.get_forces()  # eV/Å
    assert forces.shape == (1, 3) and np.abs(forces).max() < 1e-6  # zero by symmetry
    stress = result.get_stress()  # eV/Å^3, Voigt
    assert stress.shape == (6,) and np.isfinite(stress).all()
    assert np.allclose(stress[:3], stress[0], atol=1e-8) and np.abs(stress[3:]).max() < 1e-8
    log = logs / f"{structure.info[UUID]}-Cu.txt"  # the txt pattern, filled per structure
    assert log.is_file() and log.stat().st_size > 0


def test_kpoint_mesh_follows_the_density_for_a_doubled_cell(
    labelled: tuple[Atoms, Atoms, Path],
) -> None:
    _, primitive_label, _ = labelled
    primitive = bulk("Cu")
    doubled = primitive * (2, 1, 1)
    density = CHEAP.kpoint_density
    assert CHEAP.kpoint_mesh(primitive) == (4, 4, 4)
    assert CHEAP.kpoint_mesh(doubled) == (2, 4, 4)  # halved along the doubled axis
    for atoms in (primitive, doubled):  # ASE's rule (no rounding to even/odd)
        assert CHEAP.kpoint_mesh(atoms) == tuple(kptdensity2monkhorstpack(atoms, density, False))

    calculator = CHEAP.build()
    assert isinstance(calculator, GPAWCalculator)
    doubled.calc = calculator
    energy = doubled.get_potential_energy()
    # the mesh GPAW used: 2 x 4 x 4 points, Γ-centred along the doubled axis
    k_points = calculator.gpaw.get_bz_k_points()  # scaled coordinates
    assert len(k_points) == 2 * 4 * 4
    assert sorted(set(np.round(k_points[:, 0], 8))) == [0.0, 0.5]
    # Γ-centred meshes of a cell and its supercell fold onto each other: same energy per atom
    # (within the real-space grid differences at 200 eV)
    assert abs(energy / 2 - primitive_label.get_potential_energy()) < 5e-3


def test_unconverged_scf_is_dropped_with_its_reason_and_the_rest_is_labelled(
    labelled: tuple[Atoms, Atoms, Path],
) -> None:
    _, copper_label, _ = labelled
    # an isolated Co atom needs about 24 SCF iterations here, the Cu cell 9 (GPAW 26.7)
    config = dataclasses.replace(CHEAP, max_scf_iterations=14)
    cobalt = update_uuid(Atoms("Co", cell=[8.0, 8.0, 8.0], pbc=True), "fixture", 1)
    structure = copper()
    report = StageReport()
    out = label([cobalt, structure], config, report=report, progress=False, isolated=None)

    assert (report.n_in, report.n_out) == (2, 1)
    [drop] = report.drops
    assert drop.label == cobalt.info[UUID] and drop.reason == SCF_NOT_CONVERGED
    assert "max_scf_iterations=14" in drop.detail and "KohnShamConvergenceError" in drop.detail
    [result] = out
    assert result.info[LINEAGE][-1] == structure.info[UUID]
    # a fresh SCF per structure: the failure before it leaves no trace in the Cu label
    assert result.get_potential_energy() == pytest.approx(
        copper_label.get_potential_energy(), abs=1e-9
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"cutoff": -1.0}, ValueError, ["cutoff", "-1.0", "eV"]),
        ({"cutoff": "500"}, TypeError, ["cutoff", "'500'"]),
        ({"kpoint_density": 0.0}, ValueError, ["kpoint_density", "0.0", "Å⁻¹"]),
        ({"smearing": -0.1}, ValueError, ["smearing", "-0.1", "eV"]),
        ({"smearing": math.inf}, ValueError, ["smearing", "inf"]),
        ({"xc": ""}, ValueError, ["xc", "''"]),
        ({"spinpol": 1}, TypeError, ["spinpol", "1"]),
        ({"max_scf_iterations": 0}, ValueError, ["max_scf_iterations", "0"]),
        ({"max_scf_iterations": 2.5}, ValueError, ["max_scf_iterations", "2.5"]),
        ({"energy_tolerance": math.nan}, ValueError, ["energy_tolerance", "nan"]),
        ({"density_tolerance": 0}, ValueError, ["density_tolerance", "0"]),
        ({"force_tolerance": -0.01}, ValueError, ["force_tolerance", "-0.01", "eV/Å"]),
        ({"threads": 0}, ValueError, ["threads", "0"]),
        ({"txt": "{step}.txt"}, ValueError, ["txt", "'{step}.txt'", "{uuid}"]),
    ],
)
def test_config_errors_name_the_bad_value(
    kwargs: dict[str, object], error: type[Exception], words: list[str]
) -> None:
    with pytest.raises(error) as raised:
        GPAW(**kwargs)  # type: ignore[arg-type]
    for word in words:
        assert word in str(raised.value)


def test_config_is_readable_hashable_and_picklable() -> None:
    assert str(GPAW()) == "gpaw(PBE, 500 eV, k 4.0/Å⁻¹, FD 0.1 eV)"
    assert str(CHEAP) == "gpaw(PBE, 200 eV, k 1.0/Å⁻¹, FD 0.1 eV)"
    tuned = GPAW(spinpol=True, max_scf_iterations=40, force_tolerance=0.01)
    assert str(tuned) == "gpaw(PBE, 500 eV, k 4.0/Å⁻¹, FD 0.1 eV, spin, scf <= 40, dF 0.01 eV/Å)"
    for config in (GPAW(), CHEAP, tuned, GPAW(txt="logs/{uuid}.txt")):
        copy = pickle.loads(pickle.dumps(config))
        assert copy == config and hash(copy) == hash(config) and str(copy) == str(config)
    assert GPAW(cutoff=400.0) != GPAW() and GPAW(cutoff=500) == GPAW()
    parameters = CHEAP.gpaw_parameters()
    assert parameters["mode"] == {"name": "pw", "ecut": 200.0}
    assert parameters["kpts"] == {"density": 1.0, "gamma": True}
    assert parameters["occupations"] == {"name": "fermi-dirac", "width": 0.1}
    log = GPAW(txt="logs/{uuid}-{formula}.txt").log_path(copper())
    assert log == f"logs/{copper().info[UUID]}-Cu.txt"


def test_missing_gpaw_is_an_import_error_saying_how_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "gpaw", None)  # makes ``import gpaw`` fail
    for call in (GPAW().check, GPAW().build):
        with pytest.raises(ImportError, match=r"libxc-dev libopenblas-dev.*CC=g\+\+ pip install"):
            call()
    with pytest.raises(ImportError, match="CC=g"):  # before any structure is touched
        label([copper()], GPAW(), progress=False)


def test_check_names_an_unknown_functional_and_missing_setups(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _require_gpaw()
    import gpaw

    with pytest.raises(ValueError, match="'NOT_A_FUNCTIONAL'"):
        GPAW(xc="NOT_A_FUNCTIONAL").check()
    monkeypatch.setattr(gpaw, "setup_paths", [str(tmp_path)])  # no setups there
    with pytest.raises(FileNotFoundError, match=r"'PBE'.*gpaw-data"):
        GPAW().check()
