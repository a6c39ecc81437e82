"""The validate stage: the suite holds what it says, the reference is computed once and
reproducibly, errors and properties agree with independent computations, failures are
recorded, results round-trip through JSON and the figures are written."""

from __future__ import annotations

import json
import math
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from ase import Atoms, units
from ase.build import bulk
from ase.calculators.emt import EMT as AseEMT
from ase.eos import EquationOfState
from hypothesis import given, settings
from hypothesis import strategies as st

from assyst_nodes.calculators import EMT, Morse
from assyst_nodes.plot.validation import parity, save_validation_figures
from assyst_nodes.stages.validate import (
    ERROR_COLUMNS,
    PHASES,
    PROPERTY_COLUMNS,
    Suite,
    SuiteReference,
    Validation,
    overlaps,
    reference_suite,
    validate,
    validate_against,
)

SMALL = Suite(("Cu", "Ag"), phases=("fcc", "bcc"), compounds=("L1_2",), volume_points=5,
              phonon_points=10, md_snapshots=2, md_steps=20, md_equilibration=40)
"""A reduced suite: two phases, L1_2 both ways, short MD; the vacancy cell keeps 107 atoms."""

TINY = Suite(("Cu", "Ag"), phases=("fcc",), compounds=(), volume_points=5, elastic=False,
             phonons=False, vacancy_repeat=0, md_snapshots=2, md_steps=10, md_equilibration=20)
"""Only fcc E-V curves and a little MD."""

MORSE_SUITE = Suite(("Cu", "Ag"), phases=("fcc",), compounds=("L1_2",), volume_points=5,
                    elastic=False, phonons=False, vacancy_repeat=2, md_snapshots=0)
"""For the Morse potential, whose 7 Å cutoff makes ASE's neighbour list slow."""

SCALE = 1.1


class ScaledEMT(AseEMT):
    """EMT with energies, forces and stress scaled by :data:`SCALE`: the same V0, moduli times
    SCALE, frequencies times sqrt(SCALE)."""

    def calculate(self, atoms=None, properties=("energy",), system_changes=None):
        super().calculate(atoms, properties, system_changes or ["positions"])
        for key in ("energy", "free_energy", "energies", "forces", "stress"):
            if key in self.results:
                self.results[key] = self.results[key] * SCALE


class FailingEMT(AseEMT):
    """EMT that raises on cells of more than 100 atoms (the vacancy) and gives NaN energies on
    four-atom cells with Ag (L1_2, and the conventional fcc Ag cell of the elastic constants)."""

    def calculate(self, atoms=None, properties=("energy",), system_changes=None):
        if len(atoms) > 100:
            raise RuntimeError("too many atoms for this test calculator")
        super().calculate(atoms, properties, system_changes or ["positions"])
        if len(atoms) == 4 and "Ag" in atoms.get_chemical_symbols():
            self.results["energy"] = math.nan


@pytest.fixture(scope="module")
def small_reference() -> SuiteReference:
    return reference_suite(SMALL, EMT())


@pytest.fixture(scope="module")
def emt_validation(small_reference: SuiteReference) -> Validation:
    return validate(EMT(), small_reference)


@pytest.fixture(scope="module")
def failing_validation(small_reference: SuiteReference) -> Validation:
    return validate(FailingEMT(), small_reference)


def _group(reference: SuiteReference, group: str) -> list[Atoms]:
    return [a for a in reference.structures if a.info["group"] == group]


# --------------------------------------------------------------------------------- the suite


def test_the_default_suite_holds_every_phase_and_both_l12_stoichiometries() -> None:
    suite = Suite(["Cu", "Ag"])
    assert suite.elements == ("Cu", "Ag") and suite.phases == PHASES
    labels = [s.label for s in suite.subjects()]
    assert labels[:5] == ["fcc:Cu", "bcc:Cu", "hcp:Cu", "sc:Cu", "diamond:Cu"]
    assert labels[10:] == ["L1_2:Cu3Ag", "L1_2:CuAg3", "L1_0:CuAg", "B2:CuAg"]
    assert [s.label for s in suite.subjects() if s.near] == ["fcc:Cu", "fcc:Ag"]
    assert all(":" in label for label in labels)
    assert len(Suite(("Cu",)).subjects()) == 5  # no compounds for a single element
    assert str(suite).startswith("suite(Cu-Ag: 5 phases")
    assert hash(suite) == hash(Suite(("Cu", "Ag")))
    assert pickle.loads(pickle.dumps(suite)) == suite
    assert Suite.from_dict(json.loads(json.dumps(suite.to_dict()))) == suite


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"elements": ("Cu", "Xx")}, ValueError, "'Xx' is not a chemical symbol"),
    ({"elements": ()}, ValueError, "at least one element"),
    ({"elements": ("Cu", "Cu")}, ValueError, "twice"),
    ({"elements": "Cu"}, TypeError, "'Cu'"),
    ({"phases": ("fcc", "bct")}, ValueError, "'bct'.*valid are"),
    ({"phases": ("hcp",)}, ValueError, "cubic phase.*'hcp'"),
    ({"compounds": ("D0_3",)}, ValueError, "'D0_3'"),
    ({"volume_range": 0.6}, ValueError, "volume_range.*0.6"),
    ({"volume_points": 3}, ValueError, "volume_points.*>= 5.*3"),
    ({"rattle_amplitude": 0.0}, ValueError, "rattle_amplitude.*0.0"),
    ({"md_atoms": 16}, ValueError, "md_atoms.*>= 32.*16"),
    ({"vacancy_repeat": 1}, ValueError, "vacancy_repeat.*1"),
    ({"liquid_temperature": -5.0}, ValueError, "liquid_temperature.*-5.0"),
    ({"seed": -1}, ValueError, "seed.*-1"),
    ({"seed": 1.5}, TypeError, "seed.*1.5"),
    ({"elastic": "yes"}, TypeError, "elastic.*'yes'"),
])
def test_bad_suite_inputs_raise_naming_the_value(
    kwargs: dict, error: type[Exception], match: str
) -> None:
    arguments = {"elements": ("Cu", "Ag"), **kwargs}
    with pytest.raises(error, match=match):
        Suite(**arguments)


@given(st.floats(allow_nan=True, allow_infinity=True))
@settings(max_examples=60, deadline=None)
def test_volume_range_is_accepted_exactly_in_the_open_interval(value: float) -> None:
    if 0 < value < 0.5:
        assert Suite(("Cu",), volume_range=value).volume_range == value
    else:
        with pytest.raises(ValueError, match="volume_range"):
            Suite(("Cu",), volume_range=value)


# ----------------------------------------------------------------------------- the reference


def test_the_reference_suite_holds_what_it_says(small_reference: SuiteReference) -> None:
    ref = small_reference
    assert ref.groups() == [
        "ev:fcc:Cu", "ev:bcc:Cu", "ev:fcc:Ag", "ev:bcc:Ag", "ev:L1_2:Cu3Ag", "ev:L1_2:CuAg3",
        "rattle:fcc:Cu", "rattle:fcc:Ag", "vacancy:Cu", "vacancy:Ag", "md:solid", "md:liquid",
    ]
    assert ref.failures == ()
    for subject, eos in ref.properties["eos"].items():
        cells = _group(ref, f"ev:{subject}")
        volumes = np.array([a.get_volume() / len(a) for a in cells])
        assert len(cells) == SMALL.volume_points
        # a +-10 % window around the reference's own V0 (re-centred to 0.5 %)
        assert volumes.min() / eos["V0"] == pytest.approx(0.9, abs=0.006)
        assert volumes.max() / eos["V0"] == pytest.approx(1.1, abs=0.006)
        assert {a.info["domain"] for a in cells} == {"near" if subject.startswith("fcc") else
                                                       "transfer"}
    assert ref.properties["ground_state"] == {"Cu": "fcc", "Ag": "fcc"}
    a0 = (4 * ref.properties["eos"]["fcc:Cu"]["V0"]) ** (1 / 3)
    assert a0 == pytest.approx(3.59, abs=0.01)
    assert ref.properties["eos"]["fcc:Cu"]["B0"] == pytest.approx(134, abs=2)
    for element in ("Cu", "Ag"):
        rattled = _group(ref, f"rattle:{element}".replace(":", ":fcc:"))
        assert len(rattled) == SMALL.rattle_snapshots and len(rattled[0]) == 32
        assert {a.info["domain"] for a in rattled} == {"near"}
        assert np.abs(ref.forces[ref.structures.index(rattled[0])]).max() > 0.05  # eV/Å
        cells = _group(ref, f"vacancy:{element}")
        assert [len(a) for a in cells] == [107, 107]  # larger than any training cell
    for kind in ("solid", "liquid"):
        cells = _group(ref, f"md:{kind}")
        assert len(cells) == SMALL.md_snapshots
        assert all(len(a) >= 32 for a in cells)
        assert sorted(set(cells[0].get_chemical_symbols())) == ["Ag", "Cu"]
        assert cells[0].get_chemical_symbols().count("Cu") == len(cells[0]) // 2  # equimolar
    assert np.isfinite(ref.energies).all()
    assert pickle.loads(pickle.dumps(ref)).energies.tolist() == ref.energies.tolist()


def test_overlaps_finds_a_suite_structure_in_a_training_set(
    small_reference: SuiteReference,
) -> None:
    training = [bulk("Cu", "fcc", a=3.6), bulk("Ag", "fcc", a=4.1, cubic=True)]
    rattled = bulk("Cu", "fcc", a=3.59, cubic=True).repeat(2)
    rattled.rattle(0.05, seed=1)
    training.append(rattled)
    assert overlaps(training, small_reference) == []
    copy = _group(small_reference, "md:solid")[1].copy()
    copy.positions += copy.cell[0]  # a lattice vector away: the same structure
    index = next(i for i, a in enumerate(small_reference.structures)
                 if a.info["group"] == "md:solid") + 1
    assert overlaps([*training, copy], small_reference) == [(3, index, "md:solid")]
    with pytest.raises(TypeError):
        overlaps([1], small_reference)


def test_md_snapshots_are_bit_reproducible_and_follow_the_seed() -> None:
    first, again = reference_suite(TINY, EMT()), reference_suite(TINY, AseEMT())
    other = reference_suite(Suite(**{**TINY.to_dict(), "seed": 1}), EMT())

    def md(ref: SuiteReference) -> list[np.ndarray]:
        return [a.positions for a in ref.structures if a.info["group"].startswith("md:")]

    assert len(md(first)) == 4
    assert all(np.array_equal(a, b) for a, b in zip(md(first), md(again), strict=True))
    assert not any(np.array_equal(a, b) for a, b in zip(md(first), md(other), strict=True))


# ------------------------------------------------------------------------------- validation


def test_emt_against_itself_gives_zero_errors(emt_validation: Validation) -> None:
    v = emt_validation
    assert list(v.errors.columns) == list(ERROR_COLUMNS)
    assert list(v.properties.columns) == list(PROPERTY_COLUMNS)
    assert v.errors["group"].tolist()[-3:] == ["near", "transfer", "all"]
    assert v.errors.loc[v.errors["group"] == "near", "structures"].item() == 10 + 4
    numbers = v.errors[["energy_rmse", "energy_mae", "force_rmse", "force_mae"]].to_numpy()
    assert np.abs(numbers).max() < 1e-9
    assert (v.errors["failed"] == 0).all()
    assert np.abs(v.properties["error"].to_numpy()).max() < 1e-9
    assert set(v.properties["property"]) == {"V0", "E0", "B0", "C11", "C12", "C44",
                                             "phonon_rmse", "max_frequency", "vacancy_energy"}
    assert v.failures == ()
    summary = v.summary()
    assert summary["energy_rmse_all"] == 0 and summary["failed"] == 0
    assert summary["mae_C11"] < 1e-9


def test_one_ev_groups_rmse_agrees_with_a_computation_by_hand() -> None:
    morse = Morse(epsilon=0.3, r0=2.6, rho0=5.0)
    reference = reference_suite(MORSE_SUITE, EMT())
    v = validate(morse, reference)
    by_hand, forces = [], []
    for atoms in _group(reference, "ev:L1_2:Cu3Ag"):
        a, b = atoms.copy(), atoms.copy()
        a.calc, b.calc = AseEMT(), morse.build()
        by_hand.append(b.get_potential_energy() / len(b) - a.get_potential_energy() / len(a))
    rmse = 1000 * math.sqrt(np.mean(np.square(by_hand)))
    row = v.errors.set_index("group").loc["ev:L1_2:Cu3Ag"]
    assert row["energy_rmse"] == pytest.approx(rmse, rel=1e-9)
    assert row["energy_rmse"] > 100  # meV/atom: a different potential
    for atoms in _group(reference, "vacancy:Cu"):
        a, b = atoms.copy(), atoms.copy()
        a.calc, b.calc = AseEMT(), morse.build()
        forces.append(b.get_forces() - a.get_forces())
    force_rmse = 1000 * math.sqrt(np.mean(np.square(np.concatenate(forces))))
    row = v.errors.set_index("group").loc["vacancy:Cu"]
    assert row["force_rmse"] == pytest.approx(force_rmse, rel=1e-9)
    assert v.summary()["mae_B0"] > 1


def test_a_scaled_emt_gives_the_errors_the_scaling_implies(
    small_reference: SuiteReference,
) -> None:
    v = validate(ScaledEMT(), small_reference)
    frame = v.structures
    expected = 1000 * (SCALE - 1) * np.abs(frame["reference_energy"].to_numpy())
    got = 1000 * np.abs(frame["test_energy"] - frame["reference_energy"]).to_numpy()
    assert got == pytest.approx(expected, rel=1e-9, abs=1e-9)
    props = v.properties.set_index(["property", "subject"])
    for subject in ("fcc:Cu", "fcc:Ag"):
        assert props.loc[("V0", subject), "error"] == pytest.approx(0, abs=1e-6)
        for name in ("B0", "C11", "C12", "C44"):
            reference, test = props.loc[(name, subject), ["reference", "test"]]
            assert test == pytest.approx(SCALE * reference, rel=1e-6)
        reference, test = props.loc[("max_frequency", subject), ["reference", "test"]]
        assert test == pytest.approx(math.sqrt(SCALE) * reference, rel=1e-6)
        reference, test = props.loc[("vacancy_energy", subject), ["reference", "test"]]
        assert test == pytest.approx(SCALE * reference, rel=1e-3)


def test_emt_cu_moduli_agree_with_an_independent_stress_strain_route(
    small_reference: SuiteReference,
) -> None:
    # V0 and B0 from ASE's EquationOfState on another grid (nine conventional cells)
    cells = [bulk("Cu", "fcc", a=a, cubic=True) for a in np.linspace(3.50, 3.68, 9)]
    energies = []
    for atoms in cells:
        atoms.calc = AseEMT()
        energies.append(atoms.get_potential_energy())
    v0, _, b0 = EquationOfState([a.get_volume() for a in cells], energies, eos="sj").fit()
    eos = small_reference.properties["eos"]["fcc:Cu"]
    assert eos["V0"] == pytest.approx(v0 / 4, rel=1e-3)
    assert eos["B0"] == pytest.approx(b0 / units.GPa, rel=0.01)
    # C11, C12, C44 from stresses of small strains at that lattice constant
    atoms0 = bulk("Cu", "fcc", a=v0 ** (1 / 3), cubic=True)
    delta = 1e-3

    def stress(strain: np.ndarray) -> np.ndarray:
        atoms = atoms0.copy()
        atoms.set_cell(atoms0.cell[:] @ (np.eye(3) + strain), scale_atoms=True)
        atoms.calc = AseEMT()
        return atoms.get_stress() / units.GPa

    xx = np.zeros((3, 3))
    xx[0, 0] = delta
    yz = np.zeros((3, 3))
    yz[1, 2] = yz[2, 1] = delta / 2
    d_xx = (stress(xx) - stress(-xx)) / (2 * delta)
    d_yz = (stress(yz) - stress(-yz)) / (2 * delta)
    elastic = small_reference.properties["elastic"]["Cu"]
    assert elastic["C11"] == pytest.approx(d_xx[0], rel=0.02)
    assert elastic["C12"] == pytest.approx(d_xx[1], rel=0.02)
    assert elastic["C44"] == pytest.approx(d_yz[3], rel=0.02)


def test_a_failing_calculator_is_recorded_not_fatal(failing_validation: Validation) -> None:
    v = failing_validation
    rows = v.errors.set_index("group")
    assert rows.loc["vacancy:Cu", "failed"] == 2 and rows.loc["vacancy:Ag", "failed"] == 2
    assert math.isnan(rows.loc["vacancy:Cu", "energy_rmse"])
    assert rows.loc["ev:L1_2:Cu3Ag", "failed"] == SMALL.volume_points
    assert rows.loc["ev:L1_2:CuAg3", "failed"] == SMALL.volume_points
    assert rows.loc["all", "failed"] == 4 + 2 * SMALL.volume_points
    others = [g for g in rows.index if not g.startswith(("vacancy", "ev:L1_2"))]
    assert (rows.loc[others, "energy_rmse"].abs() < 1e-9).all()  # the rest is compared
    props = v.properties.set_index(["property", "subject"])
    assert math.isnan(props.loc[("vacancy_energy", "fcc:Cu"), "test"])
    assert math.isnan(props.loc[("C11", "fcc:Ag"), "test"])
    assert props.loc[("C11", "fcc:Cu"), "error"] == pytest.approx(0, abs=1e-9)
    assert any(where.startswith("vacancy:fcc:Cu") for where, _ in v.failures)
    assert any("too many atoms" in message for _, message in v.failures)
    assert v.summary()["failed"] == 4 + 2 * SMALL.volume_points
    # properties the calculator could not give are counted, not silently left out of the means
    missing = int((props["reference"].notna() & props["test"].isna()).sum())
    assert missing >= 2 and v.summary()["properties_failed"] == missing


def test_a_validation_round_trips_through_json_and_pickle(
    failing_validation: Validation,
) -> None:
    v = failing_validation
    back = Validation.from_dict(json.loads(json.dumps(v.to_dict(), allow_nan=False)))
    pd.testing.assert_frame_equal(back.errors, v.errors)
    pd.testing.assert_frame_equal(back.properties, v.properties)
    plain = [c for c in v.structures.columns if not c.endswith("_forces")]
    pd.testing.assert_frame_equal(back.structures[plain], v.structures[plain])
    for column in ("reference_forces", "test_forces"):
        for a, b in zip(back.structures[column], v.structures[column], strict=True):
            np.testing.assert_array_equal(a, b)
    for subject, bands in v.phonons.items():
        np.testing.assert_array_equal(back.phonons[subject]["test"], bands["test"])
    assert back.suite == v.suite and back.failures == v.failures
    assert json.dumps(back.summary()) == json.dumps(v.summary())
    again = pickle.loads(pickle.dumps(v))
    pd.testing.assert_frame_equal(again.errors, v.errors)


def test_validate_against_is_reference_suite_then_validate() -> None:
    v = validate_against(EMT(), AseEMT(), TINY)
    assert v.calculator == "emt" and v.reference == "EMT"
    assert v.errors.set_index("group").loc["all", "energy_rmse"] == 0
    assert v.phonons == {} and "C11" not in set(v.properties["property"])
    with pytest.raises(TypeError, match="SuiteReference"):
        validate(EMT(), TINY)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------- figures


def test_the_figures_are_written(emt_validation: Validation, tmp_path: Path) -> None:
    written = save_validation_figures(emt_validation, tmp_path / "figures")
    assert [p.name for p in written] == ["parity.png", "ev_curves.png", "phonon_bands.png"]
    for path in written:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000
    from matplotlib.figure import Figure

    fig = Figure()
    axes = fig.subplots(1, 2)
    assert parity(emt_validation, ax=axes) is fig
    assert "eV/atom" in axes[0].get_xlabel() and "eV/Å" in axes[1].get_xlabel()
    with pytest.raises(ValueError, match="two axes"):
        parity(emt_validation, ax=[axes[0]])
