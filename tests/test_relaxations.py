"""Relaxation: degrees of freedom per class, contract of results, failure isolation, workers."""

from __future__ import annotations

import pickle
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.emt import EMT as AseEMT
from ase.calculators.singlepoint import SinglePointCalculator
from hypothesis import given
from hypothesis import strategies as st

from assyst_nodes.calculators import EMT, Morse
from assyst_nodes.lineage import LINEAGE, RELAX_CONVERGED, SEED, STEP, UUID, update_uuid
from assyst_nodes.reports import StageReport
from assyst_nodes.stages.relax import (
    CellRelax,
    FullRelax,
    Relax,
    RelaxationError,
    SymmetryRelax,
    VolumeRelax,
    relax,
)
from assyst_nodes.stages.sample import detect_spacegroup

CLASSES = [Relax, CellRelax, VolumeRelax, SymmetryRelax, FullRelax]


def cu3ag(a: float = 3.9, strain: float = 0.0, rattle: float = 0.0) -> Atoms:
    """L1_2 Cu3Ag (space group 221), optionally sheared and rattled; labelled with a uuid."""
    atoms = bulk("Cu", "fcc", a=a, cubic=True)
    atoms.symbols[0] = "Ag"
    if strain:
        cell = atoms.cell.array.copy()
        cell[0, 1] += strain * a
        atoms.set_cell(cell, scale_atoms=True)
    if rattle:
        atoms.rattle(rattle, seed=1)
    return update_uuid(atoms, step="pyxtal")


def frac(atoms: Atoms) -> np.ndarray:
    return atoms.get_scaled_positions(wrap=False)


@given(
    st.integers(0, 500),
    st.floats(1e-4, 1.0),
    st.sampled_from(["LBFGS", "BFGS", "FIRE"]),
)
def test_settings_are_hashable_equal_by_value_and_pickle(steps, tolerance, algorithm) -> None:
    for cls in CLASSES:
        settings = cls(max_steps=steps, force_tolerance=tolerance, algorithm=algorithm)
        copy = pickle.loads(pickle.dumps(settings))
        assert copy == settings and hash(copy) == hash(settings)
        assert cls(max_steps=steps + 1) != cls(max_steps=steps)


def test_step_names() -> None:
    assert [str(cls()) for cls in CLASSES] == [
        "relax",
        "cell_relax",
        "volume_relax",
        "symmetry_relax",
        "full_relax",
    ]
    assert str(FullRelax(pressure_gpa=1.5)) == "full_relax(pressure_gpa=1.5)"
    assert str(VolumeRelax(pressure_gpa=0.0)) == "volume_relax"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_steps": -1}, "max_steps"),
        ({"force_tolerance": 0.0}, "force_tolerance"),
        ({"force_tolerance": float("nan")}, "force_tolerance"),
        ({"algorithm": "CG"}, "'CG'"),
        ({"pressure_gpa": 2000.0}, "2000.0"),
        ({"pressure_gpa": float("inf")}, "inf"),
    ],
)
def test_invalid_settings_are_named(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        FullRelax(**kwargs)
    with pytest.raises(TypeError, match="calculator"):
        Relax(calculator="emt")  # type: ignore[arg-type]


def test_relax_keeps_the_cell_and_lowers_the_energy() -> None:
    start = cu3ag(rattle=0.1)
    [out] = relax([start], Relax())
    assert np.array_equal(out.cell.array, start.cell.array)
    start.calc = AseEMT()
    assert out.get_potential_energy() < start.get_potential_energy()
    assert out.info[RELAX_CONVERGED]
    assert np.abs(out.get_forces()).max() < 1e-3


def test_volume_relax_keeps_shape_and_fractional_positions() -> None:
    start = cu3ag(a=4.2, strain=0.05, rattle=0.05)
    [out] = relax([start], VolumeRelax())
    assert np.allclose(frac(out), frac(start), atol=1e-10)
    assert np.allclose(out.cell.cellpar()[3:], start.cell.cellpar()[3:])
    ratio = out.cell.lengths() / start.cell.lengths()
    assert np.allclose(ratio, ratio[0])
    assert out.get_volume() < 0.95 * start.get_volume()


def test_cell_relax_keeps_volume_and_fractional_positions() -> None:
    start = cu3ag(strain=0.1, rattle=0.05)
    [out] = relax([start], CellRelax())
    assert np.allclose(frac(out), frac(start), atol=1e-10)
    assert out.get_volume() == pytest.approx(start.get_volume(), rel=1e-6)
    assert not np.allclose(out.cell.array, start.cell.array)


def test_symmetry_relax_keeps_the_space_group_that_a_full_relax_breaks() -> None:
    """Simple cubic Cu (Pm-3m, 221) is unstable under EMT; with its atoms displaced by up to
    2 mÅ (still 221 at FixSymmetry's 0.01 Å) a free relaxation runs off to a close packing,
    while the symmetry-constrained one keeps the cubic group (the forces and tolerance are
    explicit, so a change of the optimiser defaults cannot make the test pass vacuously)."""
    start = bulk("Cu", "sc", a=2.4).repeat(2)
    start.positions += np.random.default_rng(3).uniform(-2e-3, 2e-3, start.positions.shape)
    start = update_uuid(start, step="pyxtal")
    assert detect_spacegroup(start) == 1 and detect_spacegroup(start, symprec=0.01) == 221
    settings = {"max_steps": 300, "force_tolerance": 1e-4}
    [free] = relax([start], FullRelax(**settings))
    [kept] = relax([start], SymmetryRelax(**settings))
    assert detect_spacegroup(free, symprec=0.01) != 221
    assert detect_spacegroup(kept) == 221 and kept.info[RELAX_CONVERGED]
    # the free relaxation left the saddle: far lower in energy and denser
    energy_free = free.get_potential_energy() / len(free)
    assert energy_free < kept.get_potential_energy() / len(kept) - 0.2
    assert free.get_volume() < kept.get_volume()


def test_full_relax_converges_and_pressure_shrinks_the_cell() -> None:
    start = cu3ag(strain=0.05, rattle=0.05)
    [free] = relax([start], FullRelax())
    [squeezed] = relax([start], FullRelax(pressure_gpa=5.0))
    assert free.info[RELAX_CONVERGED] and squeezed.info[RELAX_CONVERGED]
    assert squeezed.get_volume() < free.get_volume()
    [volume] = relax([start], VolumeRelax(pressure_gpa=5.0))
    [volume0] = relax([start], VolumeRelax())
    assert volume.get_volume() < volume0.get_volume()


def test_result_carries_true_forces_and_stress_and_no_constraints() -> None:
    start = cu3ag(rattle=0.05)
    [out] = relax([start], VolumeRelax(max_steps=3))
    assert isinstance(out.calc, SinglePointCalculator)
    assert set(out.calc.results) >= {"energy", "forces", "stress"}
    assert out.constraints == []
    reference = out.copy()
    reference.calc = AseEMT()
    assert np.allclose(out.get_forces(), reference.get_forces())  # not zeroed by FixAtoms
    assert np.abs(out.get_forces()).max() > 1e-3
    assert out.get_potential_energy() == pytest.approx(reference.get_potential_energy())


def test_unconverged_results_are_kept_flagged_and_counted() -> None:
    report = StageReport()
    out = relax([cu3ag(rattle=0.1)], FullRelax(max_steps=1), report=report)
    assert len(out) == 1 and out[0].info[RELAX_CONVERGED] is False
    assert report.flags["not_converged"] == 1 and report.n_out == 1


def test_relax_gives_new_deterministic_uuids_and_extends_the_lineage() -> None:
    start = cu3ag(rattle=0.05)
    before = (start.positions.copy(), start.cell.array.copy(), dict(start.info), start.calc)
    [first] = relax([start], FullRelax(max_steps=5))
    [again] = relax([start], FullRelax(max_steps=5))
    assert first.info[UUID] == again.info[UUID] != start.info[UUID]
    assert first.info[LINEAGE] == [start.info[UUID]]
    assert first.info[SEED] == start.info[UUID]
    assert first.info[STEP] == "full_relax"
    assert np.array_equal(start.positions, before[0])
    assert np.array_equal(start.cell.array, before[1])
    assert start.info == before[2] and start.calc is before[3] and start.info[LINEAGE] == []


class Flaky(Calculator):
    """EMT, except for structures with Ag at the origin (raises) or 5 atoms (NaN energy)."""

    implemented_properties = ("energy", "forces", "stress")

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        if len(atoms) == 5:
            self.results = {
                "energy": float("nan"),
                "forces": np.zeros((5, 3)),
                "stress": np.zeros(6),
            }
            return
        if atoms.get_chemical_symbols().count("Ag") == 2:
            raise RuntimeError("SCF did not converge")
        copy = atoms.copy()
        copy.calc = AseEMT()
        self.results = {
            "energy": copy.get_potential_energy(),
            "forces": copy.get_forces(),
            "stress": copy.get_stress(),
        }


def test_a_failing_calculator_loses_only_its_structures() -> None:
    good = cu3ag(rattle=0.02)
    raising = cu3ag()
    raising.symbols[1] = "Ag"
    raising = update_uuid(raising)
    nan = update_uuid(bulk("Cu", "fcc", a=3.6, cubic=True) + Atoms("Cu", [(1.0, 1.0, 1.0)]))
    report = StageReport()
    out = relax([raising, good, nan], Relax(calculator=Flaky(), max_steps=5), report=report)
    assert [a.info[LINEAGE][-1] for a in out] == [good.info[UUID]]
    assert report.dropped == {"calculator_error": 1, "non_finite": 1}
    labels = {d.reason: d for d in report.drops}
    assert labels["calculator_error"].label == raising.info[UUID]
    assert "SCF did not converge" in labels["calculator_error"].detail
    assert labels["non_finite"].label == nan.info[UUID]
    with pytest.raises(RelaxationError):
        Relax(calculator=Flaky())(raising)


class ScaleOnly(Relax):
    """A custom engine: shrinks the cell by 1 % and reports EMT results, no optimiser."""

    def relax(self, structure: Atoms) -> Atoms:
        structure.set_cell(structure.cell * 0.99, scale_atoms=True)
        structure.calc = AseEMT()
        structure.get_potential_energy()
        structure.info[RELAX_CONVERGED] = False
        return structure


def test_a_custom_engine_overriding_relax_gets_the_same_contract() -> None:
    start = cu3ag()
    report = StageReport()
    [out] = relax([start], ScaleOnly(), report=report)
    assert out.get_volume() == pytest.approx(0.99**3 * start.get_volume())
    assert isinstance(out.calc, SinglePointCalculator)
    assert out.info[LINEAGE] == [start.info[UUID]] and out.info[STEP] == "relax"
    assert report.flags["not_converged"] == 1


def fingerprint(structures: list[Atoms]) -> list[tuple]:
    return [
        (
            a.info[UUID],
            a.positions.tobytes(),
            a.cell.array.tobytes(),
            a.get_potential_energy(),
            a.get_forces().tobytes(),
        )
        for a in structures
    ]


def test_workers_and_executors_give_bit_identical_results() -> None:
    starts = [cu3ag(a=3.8 + 0.05 * i, strain=0.02 * i, rattle=0.03) for i in range(4)]
    starts = [update_uuid(a, key=i) for i, a in enumerate(starts)]
    settings = FullRelax(max_steps=20, calculator=Morse(r0=2.6))
    serial = relax(starts, settings)
    pooled = relax(starts, settings, workers=2, chunksize=1)
    with ProcessPoolExecutor(max_workers=2) as pool:
        executed = relax(starts, settings, executor=pool, chunksize=2)
    assert fingerprint(serial) == fingerprint(pooled) == fingerprint(executed)


def test_bad_arguments_are_named() -> None:
    with pytest.raises(TypeError, match="structure 1 is a str"):
        relax([cu3ag(), "POSCAR"], Relax())  # type: ignore[list-item]
    with pytest.raises(ValueError, match="workers"):
        relax([cu3ag()], Relax(), workers=0)
    with pytest.raises(TypeError, match="settings must be a Relax"):
        relax([cu3ag()], EMT())  # type: ignore[arg-type]


def test_automatic_chunks_balance_over_workers_and_keep_the_order() -> None:
    from assyst_nodes.runtime.fanout import auto_chunksize, map_chunks

    assert auto_chunksize(30, 2, None) == 1  # local pools: about 16 chunks per worker
    assert auto_chunksize(3, 8, None) == 1
    assert auto_chunksize(100, 1, None) == 7
    assert auto_chunksize(1000, 2, None) == 32
    with ThreadPoolExecutor(2) as pool:  # executors: about four tasks per worker
        assert auto_chunksize(30, 1, pool) == 4
        assert auto_chunksize(1000, 1, pool) == 125
    doubled = map_chunks(_double_all, (), list(range(23)), workers=2)
    assert doubled == [2 * i for i in range(23)]
    with pytest.raises(ValueError, match="chunksize must be an int >= 1, got 0"):
        map_chunks(_double_all, (), [1], chunksize=0)


def _double_all(chunk: list[int]) -> list[int]:
    return [2 * i for i in chunk]


def test_labelling_does_not_count_its_parents_unconverged_relaxations() -> None:
    from assyst_nodes.stages.label import label

    parent = cu3ag()
    parent.info[RELAX_CONVERGED] = False  # as left by an unconverged relaxation
    report = StageReport()
    [out, atom_cu, atom_ag] = label([parent], EMT(), report=report)
    assert out.info[RELAX_CONVERGED] is False  # kept on the structure, as provenance
    assert RELAX_CONVERGED not in atom_cu.info and RELAX_CONVERGED not in atom_ag.info
    assert "not_converged" not in report.flags and report.n_out == 3


def test_labels_with_two_workers_are_the_labels_of_one() -> None:
    from assyst_nodes.stages.label import label

    structures = [cu3ag(a=3.8 + 0.05 * k, strain=0.02 * k, rattle=0.05) for k in range(6)]
    one_report, two_report = StageReport(), StageReport()
    one = label(structures, EMT(), workers=1, report=one_report)
    two = label(structures, EMT(), workers=2, chunksize=2, report=two_report)
    assert len(one) == 8 and fingerprint(two) == fingerprint(one)  # and Ag, Cu alone
    for a, b in zip(one, two, strict=True):  # bit for bit, stress included
        assert a.calc.results["stress"].tobytes() == b.calc.results["stress"].tobytes()
    assert (two_report.n_in, two_report.n_out, two_report.drops) == (8, 8, [])
    assert len({a.get_potential_energy() for a in one}) == 8  # eight different labels
